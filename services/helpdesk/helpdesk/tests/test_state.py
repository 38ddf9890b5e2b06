"""Test stack_state and the health endpoint."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from helpdesk.handlers import handle_event
from helpdesk.models import Employee, Ticket

from .conftest import envelope, user_payload

pytestmark = pytest.mark.django_db


def stack_state() -> dict[str, Any]:
    """Run ``stack_state --json`` and return its document."""
    out = StringIO()
    call_command("stack_state", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_empty_migrated_database() -> None:
    state = stack_state()
    assert state["service"] == "helpdesk"
    assert state["database"]["vendor"] in {"sqlite", "postgresql"}
    assert state["migrations"] == {"pending": []}
    assert state["counts"] == {"Employee": 0, "Ticket": 0, "HDTSUser": 0, "ExternalEmployee": 0}
    assert state["pending_events"] == {}
    assert state["processed_events"] == 0
    assert state["deferred_events"] == 0
    assert state["last_seed"] is None
    assert state["integrity"] == {"ok": True, "problems": []}
    assert set(state) == {
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
    assert state["seeded"] is None


def test_after_seeding_and_events() -> None:
    call_command("seed", stdout=StringIO())
    handle_event(envelope("hdts.user.sync", "create", user_payload(1)))
    state = stack_state()
    assert state["counts"] == {"Employee": 50, "Ticket": 20, "HDTSUser": 1, "ExternalEmployee": 0}
    assert state["last_seed"] == {"employees": 50, "tickets": 20, "seed": 7}
    assert state["processed_events"] == 1
    assert state["integrity"]["ok"] is True


def test_domain_problems_are_reported() -> None:
    call_command("seed", "--employees", "2", "--tickets", "5", stdout=StringIO())
    Ticket.objects.exclude(status=Ticket.Status.NEW).update(priority=None)
    state = stack_state()
    assert state["integrity"]["ok"] is False
    assert any("priority" in problem for problem in state["integrity"]["problems"])
    assert Employee.objects.count() == 2


def test_health_returns_json(client: Client) -> None:
    response = client.get("/health/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"service": "helpdesk", "database": "ok", "migrations_pending": False}


def test_health_returns_503_when_the_database_fails(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import OperationalError

    from helpdesk import views

    class BrokenConnection:
        def cursor(self) -> None:
            raise OperationalError("database is down")

    monkeypatch.setattr(views, "connection", BrokenConnection())
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {"service": "helpdesk", "database": "error", "migrations_pending": True}
