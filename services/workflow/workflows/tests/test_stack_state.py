"""Test the stack_state report and the health endpoint."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client

from workflows.models import Workflow

KEYS = {
    "service",
    "database",
    "migrations",
    "counts",
    "pending_events",
    "processed_events",
    "deferred_events",
    "last_seed",
    "seeded",
    "integrity",
}


def _state() -> dict[str, Any]:
    out = StringIO()
    call_command("stack_state", "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


@pytest.mark.django_db
def test_empty_migrated_database() -> None:
    state = _state()
    assert set(state) == KEYS
    assert state["service"] == "workflow"
    assert state["database"]["vendor"] == "sqlite"
    assert state["migrations"] == {"pending": []}
    assert state["counts"] == {"Role": 0, "RoleUser": 0, "Workflow": 0, "Step": 0, "Transition": 0}
    assert state["pending_events"] == {}
    assert (state["processed_events"], state["deferred_events"]) == (0, 0)
    assert state["last_seed"] is None
    assert state["seeded"] is None
    assert state["integrity"] == {"ok": True, "problems": []}


@pytest.mark.django_db
def test_after_seeding(synced_auth: object) -> None:
    call_command("seed", stdout=StringIO())
    state = _state()
    assert state["counts"] == {"Role": 4, "RoleUser": 9, "Workflow": 5, "Step": 11, "Transition": 9}
    assert state["processed_events"] == 13
    assert state["last_seed"] == {"seed": 7}
    assert state["integrity"] == {"ok": True, "problems": []}


@pytest.mark.django_db
def test_integrity_reports_uninitialized_workflows(synced_auth: object) -> None:
    call_command("seed", stdout=StringIO())
    Workflow.objects.filter(name="Asset Check In Workflow").update(status="draft")
    workflow = Workflow.objects.get(name="Asset Check Out Workflow")
    workflow.transitions.filter(name="Submit").delete()
    problems = _state()["integrity"]["problems"]
    assert len(problems) == 2
    assert problems[0].startswith("Workflow 'Asset Check In Workflow' is ready but its status")
    assert problems[1].startswith("Workflow 'Asset Check Out Workflow' is not initialized")


def test_unmigrated_database_is_reported_without_creating_it(tmp_path: Path) -> None:
    database = tmp_path / "fresh.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}
    result = subprocess.run(
        [sys.executable, "manage.py", "stack_state", "--json"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    state = json.loads(result.stdout)
    assert state["counts"] is None
    assert "workflows.0001_initial" in state["migrations"]["pending"]
    assert state["last_seed"] is None
    assert not database.exists()


@pytest.mark.django_db
def test_health_ok() -> None:
    response = Client().get("/health/")
    assert response.status_code == 200
    assert response.json() == {"service": "workflow", "database": "ok", "migrations_pending": False}


@pytest.mark.django_db
def test_health_database_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OperationalError("database is down")

    monkeypatch.setattr("workflows.views.connection.cursor", broken)
    response = Client().get("/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "error"
