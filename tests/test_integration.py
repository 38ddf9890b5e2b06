"""The real ``inv`` in a temporary copy of the repo, against real services and RabbitMQ."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import registry
from devstack.venvs import venv_python
from devstack.workspace import copy_checkout
from tests.conftest import inv_env, seeded_copy
from tests.test_dead_letters import private_vhost

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

REPO = Path(__file__).resolve().parents[1]
EXPECTED = registry.expected_counts()


def inv(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = inv_env()
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def ok(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = inv(repo, *args)
    assert done.returncode == 0, f"inv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def counts(repo: Path) -> dict[str, Any]:
    status = json.loads(ok(repo, "status", "--json").stdout)
    return {name: info["counts"] for name, info in status["services"].items()}


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    """A virtual host of this module only: a developer's stack on the same broker never meets it."""
    with private_vhost() as url:
        yield url


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, vhost: str, seeded_template: Path) -> Path:
    """A copy of the run's seeded template (see tests/conftest.py).

    Its ``first.json`` is the report of the template's first seed-all: a real one, in a fresh
    checkout, offline (nox's seeded_integration sessions run the first seed-all online).
    """
    copy = seeded_copy(seeded_template, tmp_path_factory.mktemp("checkout") / "repo")
    use_broker(copy, vhost)
    return copy


def use_broker(repo: Path, url: str) -> None:
    """Point the copy's runner (and so its services) at ``url``."""
    (repo / "invoke.yaml").write_text(f"devstack:\n  broker_url: {url}\n", encoding="utf-8")


def test_seed_all_reaches_the_expected_state(repo: Path) -> None:
    first = json.loads((repo / "first.json").read_text(encoding="utf-8"))
    assert first["ok"] is True and first["changed"] is True
    assert counts(repo) == EXPECTED
    ok(repo, "verify")


def test_second_seed_all_skips_everything(repo: Path) -> None:
    done = ok(repo, "seed-all", "--report", "second.json")
    second = json.loads((repo / "second.json").read_text(encoding="utf-8"))
    assert second["changed"] is False
    ran = {s["step"] for s in second["steps"] if s["status"] == "ran"}
    assert ran == {"check-rabbit"}
    skipped = {s["step"]: s["detail"] for s in second["steps"] if s["status"] == "skipped"}
    assert skipped["install"] == "virtualenvs match their requirements"
    assert skipped["verify"].startswith("nothing changed since the run verified at")
    assert "Summary" in done.stdout
    assert second["counts"] == EXPECTED


def test_without_the_verified_record_each_step_finds_its_own_reason(repo: Path) -> None:
    (repo / ".devstack" / "verified.json").unlink()
    ok(repo, "seed-all", "--report", "third.json")
    third = json.loads((repo / "third.json").read_text(encoding="utf-8"))
    assert third["changed"] is False
    skipped = {s["step"]: s["detail"] for s in third["steps"] if s["status"] == "skipped"}
    assert skipped["migrate.helpdesk"] == "no pending migrations"
    assert skipped["seed.helpdesk"] == "already seeded with employees=50, tickets=20, seed=7"
    assert skipped["sync"] == "no pending events"
    assert {s["step"] for s in third["steps"] if s["status"] == "ran"} == {"check-rabbit", "verify"}
    assert (repo / ".devstack" / "verified.json").exists()


def test_seed_helpdesk_with_employees(repo: Path) -> None:
    ok(repo, "seed.helpdesk", "--employees", "50")
    assert counts(repo)["helpdesk"]["Employee"] == 50
    ok(repo, "seed.helpdesk", "--employees", "60", "--tickets", "25")
    assert counts(repo)["helpdesk"] == {**EXPECTED["helpdesk"], "Employee": 60, "Ticket": 25}
    ok(repo, "verify")  # expectations follow the options the database was seeded with
    failed = inv(repo, "verify", "--tickets", "20")
    assert failed.returncode == 6
    assert "helpdesk: seeded with --tickets=25, not --tickets=20." in failed.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("seed-all", "--employees", "-1"), 2, "--employees must be 0 or more, got -1."),
        (("seed-all", "--tickets", "abc"), 2, "--tickets must be a whole number, got 'abc'."),
        (("seed.helpdesk", "--employees", "10000"), 2, "--employees can be at most 9,999"),
        (("install", "--service", "billing"), 2, "--service must be one of auth, workflow, helpdesk"),
    ],
)
def test_bad_input_fails_in_one_sentence(repo: Path, args: tuple[str, ...], code: int, message: str) -> None:
    before = counts(repo)
    done = inv(repo, *args)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert counts(repo) == before


def test_bad_input_stops_before_any_pre_task(tmp_path: Path) -> None:
    fresh = copy_checkout(REPO, tmp_path / "repo")
    done = inv(fresh, "seed.helpdesk", "--employees", "-1")
    assert done.returncode == 2
    assert done.stderr.strip() == "ERROR --employees must be 0 or more, got -1."
    assert not (fresh / "services" / "helpdesk" / ".venv").exists()
    assert not list(fresh.rglob("db.sqlite3"))


def test_unknown_task_is_refused(repo: Path) -> None:
    done = inv(repo, "seed.billing")
    assert done.returncode != 0
    assert "No idea what 'seed.billing' is!" in done.stderr


@pytest.fixture
def runserver(repo: Path) -> Iterator[subprocess.Popen[bytes]]:
    folder = repo / "services" / "helpdesk"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(venv_python(folder / ".venv")), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "runserver did not start"
            time.sleep(0.05)
    yield proc
    proc.kill()
    proc.wait()


def test_runserver_makes_seeding_refuse_then_stop_servers_ends_it(
    repo: Path, runserver: subprocess.Popen[bytes]
) -> None:
    before = counts(repo)
    done = inv(repo, "seed.helpdesk", "--tickets", "40")
    assert done.returncode == 3
    assert f"PID {runserver.pid}" in done.stderr and "--stop-servers" in done.stderr
    assert counts(repo) == before
    ok(repo, "seed.helpdesk", "--tickets", "40", "--stop-servers")
    assert runserver.wait(timeout=15) is not None
    assert counts(repo)["helpdesk"]["Ticket"] == 40


def test_reset_backs_up_and_seed_all_rebuilds(repo: Path) -> None:
    done = ok(repo, "reset.helpdesk")
    assert "backup at backups" in done.stdout
    assert list((repo / "backups").glob("helpdesk-*.sqlite3"))
    assert not (repo / "services" / "helpdesk" / "db.sqlite3").exists()
    ok(repo, "seed-all", "--employees", "50", "--tickets", "20")
    assert counts(repo) == EXPECTED
