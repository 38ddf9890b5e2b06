"""Test the Celery wiring of the sync consumer (eager mode, no broker)."""

import logging
from collections.abc import Callable
from typing import Any

import pytest
from config.celery_app import app as celery_app
from django.conf import settings
from django.db import OperationalError

from workflows import tasks
from workflows.handlers import EventConflict
from workflows.models import ProcessedEvent, Role, RoleUser

from .factories import link_event, role_event


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_tasks_call_the_handler() -> None:
    role = role_event(2, "Admin")
    assert tasks.role_sync.delay(role).get() == "applied"
    assert tasks.role_sync.delay(role).get() == "duplicate"
    link = link_event(5, 2)
    assert tasks.user_system_role_sync.delay(link).get() == "applied"
    assert RoleUser.objects.filter(role_id=2, user_id=5).exists()


def test_tasks_are_named_routed_and_acked_late() -> None:
    celery_app.loader.import_default_modules()
    for task, queue in (
        (tasks.role_sync, "tts.role.sync"),
        (tasks.user_system_role_sync, "tts.user_system_role.sync"),
    ):
        registered = celery_app.tasks[queue]
        assert task.name == registered.name == queue
        assert registered.acks_late is True
        assert settings.CELERY_TASK_ROUTES[queue] == {"queue": queue}
    queues = {queue.name: queue for queue in settings.CELERY_TASK_QUEUES}
    assert set(queues) == {"tts.role.sync", "tts.user_system_role.sync"}
    assert all(queue.durable for queue in queues.values())
    assert all(queue.routing_key == name for name, queue in queues.items())


def test_tasks_survive_worker_loss_and_retry_transient_errors() -> None:
    celery_app.loader.import_default_modules()
    for name in ("tts.role.sync", "tts.user_system_role.sync"):
        task = celery_app.tasks[name]
        assert task.reject_on_worker_lost is True
        assert task.autoretry_for == (OperationalError, EventConflict)
        assert task.max_retries == 10
        assert task.retry_backoff_max <= 10
    assert celery_app.conf.task_ignore_result is True


def flaky_handler(failures: int, calls: list[dict[str, Any]]) -> Callable[[dict[str, Any]], str]:
    """Return a handler that raises OperationalError ``failures`` times, then applies."""

    def handle(event: dict[str, Any]) -> str:
        calls.append(event)
        if len(calls) <= failures:
            raise OperationalError("database is locked")
        return "applied"

    return handle


def test_operational_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "handle_event", flaky_handler(2, calls))
    event = role_event(2, "Admin")
    result = tasks.role_sync.apply(args=[event], task_id=event["id"])
    assert result.get() == "applied"
    assert len(calls) == 3


def test_retries_stop_after_max_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "handle_event", flaky_handler(100, calls))
    result = tasks.user_system_role_sync.apply(args=[link_event(5, 2)])
    with pytest.raises(OperationalError):
        result.get()
    assert len(calls) == 11  # the first run and 10 retries


@pytest.mark.django_db
def test_invalid_event_is_logged_and_acknowledged(caplog: pytest.LogCaptureFixture) -> None:
    event = {**role_event(2, "Admin"), "action": "upsert"}
    with caplog.at_level(logging.ERROR, logger="workflows.tasks"):
        result = tasks.role_sync.apply(args=[event])
    assert result.get() == "invalid"
    assert not ProcessedEvent.objects.exists()
    assert not Role.objects.exists()
    assert any(
        record.levelno == logging.ERROR and event["id"] in record.getMessage() for record in caplog.records
    )
