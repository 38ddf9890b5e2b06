"""Run manage.py in subprocesses on fresh SQLite files, as the task runner does."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SERVICE_DIR = Path(__file__).resolve().parents[2]


def manage(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` with the given SQLite file and return the finished process."""
    environ = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "SEED_PASSWORD_FILE": str(db.with_suffix(".password")),
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
        **(env or {}),
    }
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=SERVICE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def dump(db: Path) -> list[Any]:
    """Return every seeded row by natural key, without password hashes or clock times."""
    with sqlite3.connect(db) as connection:
        employees = connection.execute(
            "SELECT company_id, first_name, last_name, email, department, role, status "
            "FROM helpdesk_employee ORDER BY company_id"
        ).fetchall()
        tickets = connection.execute(
            "SELECT t.ticket_number, e.company_id, t.subject, t.category, t.sub_category, t.priority, "
            "t.department, t.status, t.requested_budget, t.submitted_at "
            "FROM helpdesk_ticket t JOIN helpdesk_employee e ON e.id = t.employee_id ORDER BY t.ticket_number"
        ).fetchall()
    return [employees, tickets]


@pytest.fixture
def fresh_db(tmp_path: Path) -> Path:
    """Return a path for a new SQLite database."""
    return tmp_path / "db.sqlite3"


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a migrated, empty SQLite database to copy from."""
    db = tmp_path_factory.mktemp("template") / "db.sqlite3"
    result = manage(db, "migrate", "-v", "0")
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture
def migrated_db(migrated_template: Path, tmp_path: Path) -> Path:
    """Return a private copy of the migrated, empty database."""
    db = tmp_path / "db.sqlite3"
    with sqlite3.connect(migrated_template) as source, sqlite3.connect(db) as target:
        source.backup(target)
    return db


def test_same_seed_gives_identical_rows_on_two_fresh_databases(tmp_path: Path) -> None:
    dumps = []
    for name in ("one", "two"):
        db = tmp_path / f"{name}.sqlite3"
        assert manage(db, "migrate", "-v", "0").returncode == 0
        seeded = manage(db, "seed", "--seed", "11", "--json")
        assert seeded.returncode == 0, seeded.stderr
        assert json.loads(seeded.stdout)["changed"] is True
        again = manage(db, "seed", "--seed", "11", "--json")
        assert json.loads(again.stdout)["changed"] is False
        dumps.append(dump(db))
    assert dumps[0] == dumps[1]
    assert len(dumps[0][0]) == 50 and len(dumps[0][1]) == 20


def test_stack_state_on_a_missing_database_creates_nothing(fresh_db: Path) -> None:
    result = manage(fresh_db, "stack_state", "--json")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["counts"] is None
    assert state["last_seed"] is None
    assert "helpdesk.0001_initial" in state["migrations"]["pending"]
    assert state["database"] == {"vendor": "sqlite", "name": str(fresh_db)}
    assert not fresh_db.exists()


@pytest.mark.parametrize(
    "args",
    [["--employees", "abc"], ["--employees", "-1"], ["--employees", "10000"], ["--tickets", "x"]],
)
def test_bad_counts_exit_1_with_one_line(migrated_db: Path, args: list[str]) -> None:
    result = manage(migrated_db, "seed", *args, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("CommandError: ")
    with sqlite3.connect(migrated_db) as connection:
        assert connection.execute("SELECT COUNT(*) FROM helpdesk_employee").fetchone() == (0,)


def test_smaller_count_exits_1_with_the_fix_and_writes_nothing(migrated_db: Path) -> None:
    first = manage(migrated_db, "seed", "--employees", "5", "--tickets", "3", "--json")
    assert first.returncode == 0, first.stderr
    before = dump(migrated_db)
    result = manage(migrated_db, "seed", "--employees", "2", "--tickets", "3", "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "CommandError: helpdesk holds 5 seeded employees; --employees 2 would leave 3 behind: "
        "run 'inv reset.helpdesk' first, or pass the same or a larger count."
    ]
    assert dump(migrated_db) == before
    state = json.loads(manage(migrated_db, "stack_state", "--json").stdout)
    assert state["last_seed"] == {"employees": 5, "tickets": 3, "seed": 7}
    assert state["seeded"] == {
        "Employee": {"expected": 5, "missing": 0, "extra": 0},
        "Ticket": {"expected": 3, "missing": 0, "extra": 0},
    }
