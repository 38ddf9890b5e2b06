"""Faults a user can cause, run through the real ``inv`` in a copy of the seeded template.

Each ends with one sentence saying what is wrong and what to do, a non-zero exit code of its
family, no traceback, and the data as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import seeded_copy
from tests.test_integration import inv

pytestmark = pytest.mark.integration

DATABASE = Path("services/helpdesk/db.sqlite3")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path) -> Path:
    return seeded_copy(seeded_template, tmp_path_factory.mktemp("faults") / "repo")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of the helpdesk folder's databases, with a digest of its content."""
    found = {}
    for path in sorted(folder.glob("db.sqlite3*")):
        found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "(folder)"
    return found


@contextmanager
def broken(repo: Path, kind: str) -> Iterator[Path]:
    """helpdesk's database replaced by one of ``kind``; the good one put back after."""
    database = repo / DATABASE
    keep = database.with_name("good.sqlite3")
    shutil.copy2(database, keep)
    database.unlink()
    if kind == "random":
        database.write_bytes(os.urandom(50_000))
    elif kind == "empty":
        database.write_bytes(b"")
    elif kind == "folder":
        database.mkdir()
        (database / "notes.txt").write_text("mine", encoding="utf-8")
    elif kind == "truncated":
        shutil.copy2(keep, database)
        with database.open("r+b") as file:
            file.truncate(database.stat().st_size // 2)
    try:
        yield database
    finally:
        if database.is_dir():
            shutil.rmtree(database)
        for path in database.parent.glob("db.sqlite3*"):
            path.unlink()
        shutil.move(keep, database)


CAUSES = {
    "random": "is not a SQLite database (file is not a database); move it aside with 'inv reset.helpdesk' "
    "or restore a backup.",
    "empty": "is an empty file (0 bytes), not a SQLite database; remove it with 'inv reset.helpdesk' "
    "(it holds no data) or restore a backup.",
    "folder": "is a folder, not a SQLite file; move that folder away yourself (the runner never deletes "
    "a folder), then rerun.",
    "truncated": "is damaged (database disk image is malformed); move it aside with 'inv reset.helpdesk' "
    "or restore a backup.",
}
TASKS = (
    ("status",),
    ("verify",),
    ("seed-all", "--offline"),
    ("seed.helpdesk",),
    ("migrate.helpdesk",),
    ("migrate",),
)


@pytest.mark.parametrize("kind", list(CAUSES))
def test_an_unusable_database_is_one_sentence_and_stays_as_it_was(repo: Path, kind: str) -> None:
    with broken(repo, kind) as database:
        before = snapshot(database.parent)
        for args in TASKS:
            done = inv(repo, *args)
            said = done.stderr.strip().splitlines()[-1]
            assert done.returncode == 3, (args, done.stdout, done.stderr)
            assert said == f"ERROR helpdesk's database {DATABASE.as_posix()} {CAUSES[kind]}", args
            assert "Traceback" not in done.stdout + done.stderr
            assert snapshot(database.parent) == before, args


@pytest.mark.parametrize("kind", ["random", "truncated"])
def test_reset_moves_a_corrupt_database_aside_and_seed_all_rebuilds(repo: Path, kind: str) -> None:
    with broken(repo, kind) as database:
        content = database.read_bytes()
        done = inv(repo, "reset.helpdesk")
        assert done.returncode == 0, done.stderr
        assert "moved db.sqlite3 aside to backups/helpdesk-corrupt-" in done.stdout
        moved = sorted((repo / "backups").glob("helpdesk-corrupt-*.sqlite3"))[-1]
        assert moved.read_bytes() == content and not database.exists()
        done = inv(repo, "seed-all", "--offline")
        assert done.returncode == 0, done.stdout + done.stderr


def test_reset_refuses_a_folder_where_the_database_belongs(repo: Path) -> None:
    with broken(repo, "folder") as database:
        done = inv(repo, "reset.helpdesk")
        assert done.returncode == 3
        assert "is a folder, not a SQLite file; reset removes files only" in done.stderr
        assert (database / "notes.txt").read_text(encoding="utf-8") == "mine"
