"""Share fixtures of the workflow tests."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from config.celery_app import app as celery_app
from django.conf import settings

from workflows.handlers import handle_event

from .broker import broker, migrated_template, worker_db, workers  # noqa: F401 - shared fixtures
from .factories import default_auth_events


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep a SQLite test database in a file, so connections of other threads see its commits."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test_settings = database.setdefault("TEST", {})
        test_settings["NAME"] = str(tmp_path_factory.mktemp("testdb") / "test.sqlite3")


@pytest.fixture(autouse=True)
def seed_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Path:
    """Keep the generated seed password in a temporary file, never in the checkout; hash fast."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    path = tmp_path / "seed-password"
    monkeypatch.setenv("SEED_PASSWORD_FILE", str(path))
    monkeypatch.delenv("SEED_USER_PASSWORD", raising=False)
    return path


@pytest.fixture
def synced_auth(db: None) -> list[dict[str, Any]]:
    """Apply the events of a default auth seed (4 roles, 9 role users)."""
    events = default_auth_events()
    for event in events:
        assert handle_event(event) == "applied"
    return events


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run Celery tasks in process for the test, then restore the setting."""
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous
