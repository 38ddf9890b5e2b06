"""Share fixtures: a private password file, a fast hasher and event builders."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from .broker import broker, migrated_template, worker_db, workers  # noqa: F401 - shared fixtures

EventFactory = Callable[..., dict[str, Any]]
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep a SQLite test database in a file, so connections of other threads see its commits."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test_settings = database.setdefault("TEST", {})
        test_settings["NAME"] = str(tmp_path_factory.mktemp("testdb") / "test.sqlite3")


@pytest.fixture(autouse=True)
def seed_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the generated seed password in a temporary file, never in the service folder."""
    path = tmp_path / "seed-password"
    monkeypatch.setenv("SEED_PASSWORD_FILE", str(path))
    monkeypatch.delenv("SEED_USER_PASSWORD", raising=False)
    return path


@pytest.fixture(autouse=True)
def fast_hasher() -> Any:
    """Hash passwords with a fast hasher in tests."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def user_payload(user_id: int = 1, **changes: Any) -> dict[str, Any]:
    """Return an hdts.user.sync payload."""
    payload: dict[str, Any] = {
        "user_id": user_id,
        "email": f"user{user_id}@example.com",
        "username": f"user{user_id}",
        "first_name": "Ana",
        "last_name": "Reyes",
        "company_id": f"MA{user_id:04d}",
        "department": "IT Department",
        "role": "Ticket Coordinator",
        "status": "Approved",
    }
    payload.update(changes)
    return payload


def employee_payload(employee_id: int = 1, **changes: Any) -> dict[str, Any]:
    """Return an hdts.employee.sync payload."""
    payload: dict[str, Any] = {
        "employee_id": employee_id,
        "email": f"employee{employee_id}@example.com",
        "username": f"employee{employee_id}",
        "first_name": "Ben",
        "last_name": "Okafor",
        "company_id": f"MA{employee_id:04d}",
        "department": "Asset Department",
        "status": "Approved",
    }
    payload.update(changes)
    return payload


def envelope(
    queue: str, action: str, payload: dict[str, Any], minutes: int = 0, event_id: str | None = None
) -> dict[str, Any]:
    """Return an event envelope that occurred ``minutes`` after a fixed time."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "queue": queue,
        "action": action,
        "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "payload": payload,
    }
