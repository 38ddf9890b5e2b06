"""Test stack_state, the health endpoint and seed passwords."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client

from identity.models import Employee, User
from identity.passwords import read_or_create_password

SERVICE_DIR = Path(__file__).resolve().parents[2]
QUEUES = ["tts.role.sync", "tts.user_system_role.sync", "hdts.user.sync", "hdts.employee.sync"]
Run = Callable[..., tuple[str, str]]


@pytest.mark.django_db
def test_stack_state_on_empty_migrated_database(run: Run) -> None:
    """A migrated, empty database reports zero counts and no pending work."""
    out, _ = run("stack_state", "--json")
    state = json.loads(out)
    assert state["service"] == "auth"
    assert state["database"]["vendor"] in {"sqlite", "postgresql"}
    assert state["migrations"] == {"pending": []}
    assert state["counts"] == {"System": 0, "Role": 0, "User": 0, "UserSystemRole": 0, "Employee": 0}
    assert state["pending_events"] == dict.fromkeys(QUEUES, 0)
    assert list(state["pending_events"]) == QUEUES
    assert (state["processed_events"], state["deferred_events"]) == (0, 0)
    assert state["last_seed"] is None
    assert state["integrity"] == {"ok": True, "problems": []}


@pytest.mark.django_db
def test_stack_state_after_seeding(run: Run, tmp_path: Path) -> None:
    """After a seed the report shows counts, pending events per queue and the seed options."""
    run("seed", "--employees", "3")
    state = json.loads(run("stack_state", "--json")[0])
    assert state["counts"] == {"System": 4, "Role": 8, "User": 14, "UserSystemRole": 13, "Employee": 11}
    assert state["pending_events"] == {
        "tts.role.sync": 4,
        "tts.user_system_role.sync": 9,
        "hdts.user.sync": 6,
        "hdts.employee.sync": 11,
    }
    assert state["last_seed"] == {"employees": 3, "seed": 7}
    assert state["integrity"]["ok"] is True
    assert state["delivered_events"] == 0
    exported = tmp_path / "events.jsonl"
    exported.write_text(run("export_events")[0], encoding="utf-8")
    run("mark_delivered", str(exported))
    assert json.loads(run("stack_state", "--json")[0])["delivered_events"] == 30


@pytest.mark.django_db
def test_stack_state_reports_unrecorded_changes(run: Run) -> None:
    """A change made behind the outbox's back shows up as an integrity problem."""
    run("seed")
    Employee.objects.filter(company_id="MA0001").update(first_name="Hidden")
    state = json.loads(run("stack_state", "--json")[0])
    assert state["integrity"]["ok"] is False
    assert state["integrity"]["problems"] == ["1 synced rows differ from their last outbox event."]


def test_stack_state_on_missing_database_file(tmp_path: Path) -> None:
    """A database file that does not exist is reported as unmigrated, and not created."""
    target = tmp_path / "absent.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{target}"}
    result = subprocess.run(
        [sys.executable, "manage.py", "stack_state", "--json"],
        cwd=SERVICE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    state = json.loads(result.stdout)
    assert state["counts"] is None
    assert state["last_seed"] is None
    assert "identity.0001_initial" in state["migrations"]["pending"]
    assert state["pending_events"] == dict.fromkeys(QUEUES, 0)
    assert not target.exists()


@pytest.mark.django_db
def test_health_returns_json(client: Client) -> None:
    """/health/ answers JSON with the database state."""
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"service": "auth", "database": "ok", "migrations_pending": False}


@pytest.mark.django_db
def test_seed_user_password_is_honoured(
    run: Run, monkeypatch: pytest.MonkeyPatch, isolated_passwords: Path
) -> None:
    """SEED_USER_PASSWORD sets the seeded passwords, no file is written, nothing prints it."""
    monkeypatch.setenv("SEED_USER_PASSWORD", "correct-horse-battery")
    out, err = run("seed", "--employees", "2")
    assert User.objects.get(email="admintts@example.com").check_password("correct-horse-battery")
    assert "correct-horse-battery" not in out + err
    assert not isolated_passwords.exists()
    hashes = set(User.objects.values_list("password", flat=True))
    assert len(hashes) == 1
    assert set(Employee.objects.values_list("password", flat=True)) == hashes


@pytest.mark.django_db
def test_generated_password_file(run: Run, isolated_passwords: Path) -> None:
    """Without SEED_USER_PASSWORD a password is generated once into a 0600 file and reused."""
    out, err = run("seed", "--json")
    password = isolated_passwords.read_text().strip()
    assert stat.S_IMODE(isolated_passwords.stat().st_mode) == 0o600
    assert password not in out + err
    assert str(isolated_passwords) in err
    assert User.objects.get(email="adminhdts@example.com").check_password(password)
    assert read_or_create_password(isolated_passwords) == (password, False)

    before = set(User.objects.values_list("password", flat=True))
    out, err = run("seed", "--employees", "1")
    assert isolated_passwords.read_text().strip() == password
    assert set(User.objects.values_list("password", flat=True)) == before
    assert check_password(password, Employee.objects.get(company_id="MA0009").password)
    assert password not in out + err


@pytest.mark.django_db
def test_no_op_reseed_does_not_touch_password_file(run: Run, isolated_passwords: Path) -> None:
    """A re-run with nothing new does not even read the password file."""
    run("seed")
    isolated_passwords.unlink()
    out, _ = run("seed")
    assert "Nothing to do" in out
    assert not isolated_passwords.exists()
