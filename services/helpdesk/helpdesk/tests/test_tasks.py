"""Test the Celery wiring: task names, routes, durable queues and eager runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from config.celery_app import app
from django.conf import settings
from django.db import OperationalError

from helpdesk import tasks
from helpdesk.models import ExternalEmployee, HDTSUser, ProcessedEvent

from .conftest import employee_payload, envelope, user_payload

QUEUES = ("hdts.user.sync", "hdts.employee.sync")


def test_tasks_are_named_after_queues_and_routed() -> None:
    assert tasks.sync_hdts_user.name == "hdts.user.sync"
    assert tasks.sync_hdts_employee.name == "hdts.employee.sync"
    for name in QUEUES:
        assert name in app.tasks
        assert app.tasks[name].acks_late is True
        assert settings.CELERY_TASK_ROUTES[name] == {"queue": name}
    queues = {queue.name: queue for queue in settings.CELERY_TASK_QUEUES}
    assert set(queues) == set(QUEUES)
    assert all(queue.durable for queue in queues.values())


def test_settings_follow_the_contract() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 16
    assert app.conf.broker_connection_retry_on_startup is True
    assert app.main == "helpdesk"


@pytest.fixture
def eager() -> Iterator[None]:
    """Run tasks in the test process for the duration of a test."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


@pytest.mark.django_db
@pytest.mark.usefixtures("eager")
def test_eager_tasks_apply_events() -> None:
    user_event = envelope("hdts.user.sync", "create", user_payload(4))
    assert tasks.sync_hdts_user.delay(user_event).get() == "applied"
    assert tasks.sync_hdts_user.delay(user_event).get() == "duplicate"
    employee_event = envelope("hdts.employee.sync", "create", employee_payload(4))
    assert tasks.sync_hdts_employee.delay(employee_event).get() == "applied"
    assert HDTSUser.objects.count() == 1
    assert ExternalEmployee.objects.count() == 1


def test_tasks_survive_worker_loss_and_retry_transient_errors() -> None:
    for name in QUEUES:
        task = app.tasks[name]
        assert task.reject_on_worker_lost is True
        assert task.autoretry_for == (OperationalError,)
        assert task.max_retries == 10
        assert task.retry_backoff_max <= 10
    assert app.conf.task_ignore_result is True


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
    event = envelope("hdts.employee.sync", "create", employee_payload(1))
    result = tasks.sync_hdts_employee.apply(args=[event], task_id=event["id"])
    assert result.get() == "applied"
    assert len(calls) == 3


def test_retries_stop_after_max_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "handle_event", flaky_handler(100, calls))
    event = envelope("hdts.user.sync", "create", user_payload(1))
    result = tasks.sync_hdts_user.apply(args=[event])
    with pytest.raises(OperationalError):
        result.get()
    assert len(calls) == 11  # the first run and 10 retries


@pytest.mark.django_db
def test_invalid_event_is_logged_and_acknowledged(caplog: pytest.LogCaptureFixture) -> None:
    event = envelope("hdts.employee.sync", "create", employee_payload(1, email=42))
    with caplog.at_level(logging.ERROR, logger="helpdesk.tasks"):
        result = tasks.sync_hdts_employee.apply(args=[event])
    assert result.get() == "invalid"
    assert not ProcessedEvent.objects.exists()
    assert not ExternalEmployee.objects.exists()
    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert event["id"] in caplog.text
