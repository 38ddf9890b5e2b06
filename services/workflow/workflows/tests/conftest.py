"""Share fixtures of the workflow tests."""

from collections.abc import Iterator
from typing import Any

import pytest
from config.celery_app import app as celery_app

from workflows.handlers import handle_event

from .factories import default_auth_events


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
