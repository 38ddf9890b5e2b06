"""A read-only checkout and a full disk, made for real with mounts (root on Linux; skipped elsewhere).

``chmod`` proves nothing as root, who writes anyway: a read-only bind mount and a small tmpfs
are what a user meets (a checkout on a read-only volume, a disk that fills up mid-seed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from devstack import registry
from tests.conftest import seeded_copy
from tests.test_integration import inv

pytestmark = pytest.mark.integration


def mount_refused() -> str | None:
    """Why this machine cannot mount for the tests, or None when it can."""
    if sys.platform != "linux" or shutil.which("mount") is None:
        return "mounting a read-only or small file system is done with Linux's mount"
    if os.geteuid() != 0:
        return "mount needs root; as another user chmod would show these faults (root ignores it)"
    probe = Path(f"/tmp/devstack-mount-probe-{uuid.uuid4().hex[:8]}")
    probe.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        )
        if done.returncode != 0:
            return f"this machine does not allow mounting ({done.stderr.decode(errors='replace').strip()})"
        subprocess.run(["umount", str(probe)], check=True)
        return None
    finally:
        probe.rmdir()


@pytest.fixture(scope="module")
def can_mount() -> None:
    """Skip, saying why, where this machine does not let the tests mount (checked when first needed)."""
    reason = mount_refused()
    if reason is not None:
        pytest.skip(reason)


@contextmanager
def mounted(*args: str) -> Iterator[None]:
    """``mount *args``, unmounted afterwards (lazily if a process still holds it)."""
    target = args[-1]
    subprocess.run(["mount", *args], check=True, capture_output=True)
    try:
        yield
    finally:
        if subprocess.run(["umount", target], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", target], capture_output=True)


def tree(root: Path) -> dict[str, str]:
    """Every file of the checkout but the virtualenv links, with a digest of its content."""
    found = {}
    for path in sorted(root.rglob("*")):
        if ".venv" in path.parts or not path.is_file():
            continue
        found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def counts(repo: Path) -> dict[str, object]:
    done = inv(repo, "status", "--json")
    assert done.returncode == 0, done.stderr
    return {name: info["counts"] for name, info in json.loads(done.stdout)["services"].items()}


@pytest.mark.usefixtures("can_mount")
def test_status_and_verify_work_on_a_read_only_checkout(tmp_path: Path, seeded_template: Path) -> None:
    source = seeded_copy(seeded_template, tmp_path / "repo")
    before = tree(source)
    view = tmp_path / "read-only"
    view.mkdir()
    with mounted("--bind", str(source), str(view)), mounted("-o", "remount,bind,ro", str(view)):
        assert subprocess.run(["touch", str(view / "x")], capture_output=True).returncode != 0
        assert counts(view) == registry.expected_counts()
        done = inv(view, "verify")
        assert done.returncode == 0, done.stdout + done.stderr
        done = inv(view, "seed.helpdesk", "--tickets", "30")
        said = done.stderr.strip().splitlines()[-1]
        assert done.returncode == 1, done.stdout + done.stderr
        assert said.endswith(
            "is on a read-only file system; run it in a writable checkout (or remount this one), then rerun "
            "(nothing was changed that a rerun does not finish)."
        )
        assert "Traceback" not in done.stderr
    assert tree(source) == before


@contextmanager
def full_disk(folder: Path) -> Iterator[Path]:
    """Fill the file system of ``folder`` to the last byte; the filler is removed afterwards."""
    filler = folder / "filler"
    with suppress(OSError), filler.open("wb") as file:
        while True:
            file.write(b"\0" * 4096)
            file.flush()
    try:
        yield filler
    finally:
        filler.unlink(missing_ok=True)


@pytest.mark.usefixtures("can_mount")
def test_a_full_disk_while_seeding_or_resetting_is_one_sentence_and_keeps_the_data(
    tmp_path: Path, seeded_template: Path
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)):
        repo = seeded_copy(seeded_template, disk / "repo")
        before = counts(repo)
        database = repo / "services" / "helpdesk" / "db.sqlite3"
        content = hashlib.sha256(database.read_bytes()).hexdigest()
        (repo / ".devstack" / "run.lock").touch()
        (repo / "logs").mkdir(exist_ok=True)
        with full_disk(disk):
            for args in (
                ("seed.helpdesk", "--tickets", "20000"),
                ("seed-all", "--offline", "--tickets", "30"),
            ):
                done = inv(repo, *args)
                said = done.stderr.strip().splitlines()[-1]
                assert done.returncode == 5, done.stdout + done.stderr
                assert re.fullmatch(
                    r"ERROR \w+'s database services/\w+/db\.sqlite3 could not be used: the disk holding it "
                    r"is full \((disk I/O error|database or disk is full)\); nothing was committed: free "
                    r"space, then rerun \(its full output could not be kept: No space left on device\)\.",
                    said,
                ), said
                assert "Traceback" not in done.stderr
            done = inv(repo, "reset.helpdesk")
            said = done.stderr.strip().splitlines()[-1]
            assert done.returncode == 3, done.stdout + done.stderr
            assert said.startswith(
                "ERROR helpdesk: could not keep a copy of services/helpdesk/db.sqlite3 in backups "
                "(the disk is full: "
            ), said
            assert "so nothing was removed" in said
            assert not list(repo.glob("backups/helpdesk-*"))  # no partial copy left
        assert hashlib.sha256(database.read_bytes()).hexdigest() == content
        assert counts(repo) == before
