"""A stack people use stays right: the real ``inv`` after ordinary use, in a copy of the repo.

People add users in auth, delete and edit tickets, reset one service, or ask for fewer rows.
After each, ``inv seed-all`` heals what it can and ``inv verify`` passes, or the runner refuses
with one sentence before writing anything. No RabbitMQ is needed: seed-all runs ``--offline``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from devstack.venvs import venv_python
from tests.conftest import seeded_copy
from tests.test_integration import counts, inv, ok, use_broker

pytestmark = [pytest.mark.integration]

NEW_PEOPLE = (
    "from identity.models import Employee, Role, System, User, UserSystemRole\n"
    "hdts = System.objects.get(slug='hdts')\n"
    "user = User.objects.create_user(email='new.user@example.com', username='new.user',"
    " first_name='New', last_name='User', company_id='MA0998', department='IT Department',"
    " status='Approved')\n"
    "UserSystemRole.objects.create(user=user, system=hdts,"
    " role=Role.objects.get(system=hdts, name='Ticket Coordinator'))\n"
    "Employee.objects.create(email='new.employee@example.com', username='new.employee',"
    " first_name='New', last_name='Employee', company_id='MA0997', department='IT Department',"
    " status='Approved')\n"
)


def django(repo: Path, service: str, code: str) -> None:
    """Run ``code`` in a service's Django shell, as a person using its admin or ORM would."""
    folder = repo / "services" / service
    done = subprocess.run(
        [str(venv_python(folder / ".venv")), "manage.py", "shell", "-c", code],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def helpdesk_db(repo: Path) -> Path:
    return repo / "services" / "helpdesk" / "db.sqlite3"


def sql(repo: Path, statement: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(helpdesk_db(repo)) as db:
        return list(db.execute(statement))


def seed_all(repo: Path, *args: str) -> dict[str, object]:
    ok(repo, "seed-all", "--offline", "--report", "report.json", *args)
    report: dict[str, object] = json.loads((repo / "report.json").read_text(encoding="utf-8"))
    return report


def ran(report: dict[str, object]) -> set[str]:
    return {s["step"] for s in report["steps"] if s["status"] == "ran"}  # type: ignore[attr-defined, index]


#: No broker listens here: these tests run offline and never meet a developer's RabbitMQ.
NO_BROKER = "amqp://guest:guest@127.0.0.1:9/none"


@pytest.fixture
def repo(tmp_path: Path, seeded_template: Path) -> Path:
    """A seeded stack: a copy of the run's seeded template (see tests/conftest.py), seed-all run."""
    copy = seeded_copy(seeded_template, tmp_path / "repo")
    use_broker(copy, NO_BROKER)
    seed_all(copy)
    return copy


def test_people_added_in_auth_reach_the_mirrors_and_verify_passes(repo: Path) -> None:
    django(repo, "auth", NEW_PEOPLE)
    assert inv(repo, "verify").returncode == 6  # pending events: not synced yet
    report = seed_all(repo)
    assert {"sync", "verify"} <= ran(report)
    done = ok(repo, "verify")
    assert "made by people, kept" in done.stdout
    after = counts(repo)
    assert after["helpdesk"]["ExternalEmployee"] == after["auth"]["Employee"] == 9
    assert after["helpdesk"]["HDTSUser"] == 7
    assert seed_all(repo)["changed"] is False


def test_deleted_tickets_come_back(repo: Path) -> None:
    sql(repo, "DELETE FROM helpdesk_ticket WHERE id IN (SELECT id FROM helpdesk_ticket LIMIT 2)")
    failed = inv(repo, "verify")
    assert failed.returncode == 6 and "2 of 20 seeded Ticket rows are missing" in failed.stderr
    report = seed_all(repo)
    assert "seed.helpdesk" in ran(report)
    assert counts(repo)["helpdesk"]["Ticket"] == 20
    ok(repo, "verify")


def test_a_delete_with_size_and_mtime_restored_is_noticed(repo: Path) -> None:
    database = helpdesk_db(repo)
    before = database.stat()
    sql(repo, "PRAGMA wal_checkpoint(TRUNCATE)")
    sql(repo, "DELETE FROM helpdesk_ticket WHERE id IN (SELECT id FROM helpdesk_ticket LIMIT 1)")
    sql(repo, "PRAGMA wal_checkpoint(TRUNCATE)")
    os.utime(database, ns=(before.st_atime_ns, before.st_mtime_ns))
    report = seed_all(repo)
    assert "seed.helpdesk" in ran(report)
    assert counts(repo)["helpdesk"]["Ticket"] == 20


def test_verify_and_an_idle_sync_trust_only_unchanged_files(repo: Path) -> None:
    django(repo, "auth", NEW_PEOPLE)
    seed_all(repo)  # verified, with people's rows: the record keeps what verify said of them
    fast = ok(repo, "verify")
    assert "databases unchanged since the run verified at" in fast.stdout
    assert "made by people, kept" in fast.stdout  # said again without reading the databases
    idle = ok(repo, "sync")
    assert "SKIP sync, reconcile: nothing changed since the run verified at" in idle.stdout
    recorded = json.loads(ok(repo, "status", "--json").stdout)["services"]  # from the record
    record = repo / ".devstack" / "verified.json"
    kept = record.read_bytes()
    record.unlink()
    assert json.loads(ok(repo, "status", "--json").stdout)["services"] == recorded  # read afresh
    record.write_bytes(kept)
    database = helpdesk_db(repo)
    before = database.stat()
    sql(repo, "PRAGMA wal_checkpoint(TRUNCATE)")
    sql(repo, "DELETE FROM helpdesk_ticket WHERE id IN (SELECT id FROM helpdesk_ticket LIMIT 1)")
    sql(repo, "PRAGMA wal_checkpoint(TRUNCATE)")
    os.utime(database, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -d` would
    failed = inv(repo, "verify")
    assert failed.returncode == 6 and "1 of 20 seeded Ticket rows are missing" in failed.stderr
    assert "unchanged since" not in failed.stdout


def test_people_edits_are_kept_and_repair_restores_them(repo: Path) -> None:
    number, subject = sql(repo, "SELECT ticket_number, subject FROM helpdesk_ticket LIMIT 1")[0]
    sql(repo, f"UPDATE helpdesk_ticket SET subject = 'changed by a person' WHERE ticket_number = '{number}'")
    seed_all(repo)
    ok(repo, "verify")
    assert sql(repo, f"SELECT subject FROM helpdesk_ticket WHERE ticket_number = '{number}'")[0][0] == (
        "changed by a person"
    )
    seed_all(repo, "--repair")
    assert sql(repo, f"SELECT subject FROM helpdesk_ticket WHERE ticket_number = '{number}'")[0][0] == subject


def test_reset_auth_then_seed_all_leaves_no_stale_mirror_rows(repo: Path) -> None:
    seed_all(repo, "--auth-employees", "25")
    assert counts(repo)["helpdesk"]["ExternalEmployee"] == 33
    ok(repo, "reset.auth", "--no-backup")
    seed_all(repo, "--auth-employees", "0")
    after = counts(repo)
    assert after["auth"]["Employee"] == after["helpdesk"]["ExternalEmployee"] == 8
    ok(repo, "verify")


def test_a_lower_count_is_refused_with_nothing_written(repo: Path) -> None:
    digest = hashlib.sha256(helpdesk_db(repo).read_bytes()).hexdigest()
    for args in (("seed.helpdesk", "--employees", "10"), ("seed-all", "--offline", "--tickets", "5")):
        done = inv(repo, *args)
        assert done.returncode == 2, done.stderr
        assert "would leave" in done.stderr and "inv reset.helpdesk" in done.stderr
        assert done.stderr.count("\n") == 1
    assert hashlib.sha256(helpdesk_db(repo).read_bytes()).hexdigest() == digest


def test_a_service_seeded_with_its_own_seed_stays_valid(repo: Path) -> None:
    ok(repo, "seed.helpdesk", "--seed", "3")
    seed_all(repo)
    ok(repo, "verify")
    facts = json.loads(ok(repo, "verify", "--json").stdout)
    assert facts["ok"] is True and facts["options"]["seeds"]["helpdesk"] == 3
    assert facts["options"]["seeds"]["auth"] == 7


def seed_command(proc: psutil.Process) -> bool:
    """A service's seed command: a process of its own, or a fork of a warm server (see devstack.warm)."""
    try:
        if "seed" in " ".join(proc.cmdline()):
            return True
        parent = proc.parent()
        return parent is not None and "warm_server.py" in " ".join(parent.cmdline())
    except psutil.NoSuchProcess:
        return False


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a hard kill on Windows")
def test_sigterm_during_a_large_seed_leaves_no_process_and_no_change(repo: Path) -> None:
    before = counts(repo)
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "seed.helpdesk", "--tickets", "300000"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until the seed command itself is running
        if line.startswith("-> seed.helpdesk"):
            break
    seeding = psutil.Process(proc.pid)
    deadline = time.monotonic() + 30
    while not any(seed_command(c) for c in seeding.children(recursive=True)):
        assert time.monotonic() < deadline, "the seed command did not start"
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Stopped by SIGTERM" in err and "rolled back" in err
    left = [p for p in psutil.process_iter(["cwd"]) if str(repo) in (p.info["cwd"] or "")]
    assert left == []
    assert counts(repo) == before


def test_password_and_manage_give_working_admin_logins(repo: Path) -> None:
    printed = ok(repo, "password").stdout.splitlines()
    secret = printed[-1]
    assert secret and secret == (repo / ".devstack" / "seed-password").read_text(encoding="utf-8").strip()
    assert all(secret not in line for line in ok(repo, "status").stdout.splitlines())
    check = (
        "from django.contrib.auth import authenticate; import os; "
        "u = authenticate(username='admin@example.com', password=os.environ['PW']); "
        "assert u is not None and u.is_superuser, u"
    )
    for service in ("auth", "workflow", "helpdesk"):
        done = subprocess.run(
            [sys.executable, "-m", "invoke", "manage", service, "--", "shell", "-c", check],
            cwd=repo,
            env={**os.environ, "PW": secret, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, (service, done.stdout, done.stderr)
    failed = inv(repo, "manage", "helpdesk", "--", "nosuchcommand")
    assert failed.returncode != 0
    assert inv(repo, "manage", "billing", "--", "check").returncode == 2
