"""Test the Celery wiring: task names, routes, durable dead-lettered queues and eager runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
from celery.exceptions import Ignore, Reject
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
    queues = {queue.name: queue for queue in app.conf.task_queues}
    assert set(queues) == set(QUEUES)
    assert all(queue.durable for queue in queues.values())


def test_queues_dead_letter_to_their_dead_queue() -> None:
    """Rejected messages go to <queue>.dead through the default exchange (relay and runner agree)."""
    for queue in app.conf.task_queues:
        assert queue.queue_arguments == {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{queue.name}.dead",
        }
        assert queue.exchange.name == queue.routing_key == queue.name


def test_declaring_a_queue_declares_its_dead_queue_first() -> None:
    """A worker that declares its queues also declares where their dead letters go."""
    channel = mock.Mock()
    channel.prepare_queue_arguments.side_effect = lambda arguments, **_: arguments
    queue = app.conf.task_queues[0]
    queue(channel).declare()
    declared = [c.kwargs["queue"] for c in channel.queue_declare.call_args_list]
    assert declared == [f"{queue.name}.dead", queue.name]
    dead, main = channel.queue_declare.call_args_list
    assert dead.kwargs["durable"] is True and not dead.kwargs["arguments"]
    assert main.kwargs["arguments"] == queue.queue_arguments


def test_settings_follow_the_contract() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    # A solo worker prefetches two batches: one applied while the broker sends the next.
    assert app.conf.worker_prefetch_multiplier == 2 * settings.SYNC_BATCH_SIZE
    assert all(app.tasks[name].Strategy == "helpdesk.batching:strategy" for name in QUEUES)
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
        assert task.acks_on_failure is False  # an unexpected failure is dead-lettered, never acked
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


@pytest.mark.django_db
def test_operational_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "handle_event", flaky_handler(2, calls))
    event = envelope("hdts.employee.sync", "create", employee_payload(1))
    result = tasks.sync_hdts_employee.apply(args=[event], task_id=event["id"])
    assert result.get() == "applied"
    assert len(calls) == 3


@pytest.mark.django_db
def test_an_event_still_failing_after_its_retries_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "handle_event", flaky_handler(100, calls))
    event = envelope("hdts.user.sync", "create", user_payload(1))
    with caplog.at_level(logging.ERROR, logger="helpdesk.tasks"):
        result = tasks.sync_hdts_user.apply(args=[event])
    assert len(calls) == 11  # the first run and 10 retries
    assert result.state == "REJECTED"  # a worker rejects it without requeue: RabbitMQ dead-letters it
    assert isinstance(result.result, Reject) and result.result.requeue is False
    assert result.result.reason == "OperationalError: database is locked (still failing after 10 retries)"
    assert event["id"] in caplog.text and "Dead-lettering" in caplog.text


@pytest.mark.django_db
def test_invalid_event_is_logged_and_dead_lettered(caplog: pytest.LogCaptureFixture) -> None:
    event = envelope("hdts.employee.sync", "create", employee_payload(1, email=42))
    with caplog.at_level(logging.ERROR, logger="helpdesk.tasks"):
        result = tasks.sync_hdts_employee.apply(args=[event])
    assert result.state == "REJECTED"
    assert result.result.reason.startswith("InvalidEvent: ")
    assert not ProcessedEvent.objects.exists()
    assert not ExternalEmployee.objects.exists()
    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert event["id"] in caplog.text


@pytest.mark.django_db
def test_an_unexpected_error_is_dead_lettered_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def broken(event: dict[str, Any]) -> str:
        calls.append(event)
        raise KeyError("payload")

    monkeypatch.setattr(tasks, "handle_event", broken)
    result = tasks.sync_hdts_user.apply(args=[envelope("hdts.user.sync", "create", user_payload(1))])
    assert result.state == "REJECTED" and result.result.reason == "KeyError: 'payload'"
    assert len(calls) == 1


def test_a_worker_sends_the_event_on_with_its_reason_then_rejects_that_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, Any]] = []
    task = tasks.sync_hdts_user._get_current_object()
    headers = {"x-death": [{"reason": "rejected"}], "x-first-death-queue": "q", "mine": 1}

    def signature_from_request(request: Any, **options: Any) -> Any:
        sent.append(options["headers"])
        return mock.Mock()

    monkeypatch.setattr(task, "signature_from_request", signature_from_request)
    task.push_request(headers=headers, retries=3, called_directly=False, is_eager=False)
    try:
        outcome = tasks.dead_letter(task, {"id": "e1"}, "InvalidEvent: bad")
    finally:
        task.pop_request()
    assert isinstance(outcome, Ignore)  # this delivery is acknowledged: the copy goes on
    assert sent == [{"mine": 1, tasks.FAILURE_HEADER: "InvalidEvent: bad"}]

    task.push_request(headers=sent[0], called_directly=False)
    try:
        with pytest.raises(Reject) as rejected:
            tasks.consume(task, {"id": "e1"})
    finally:
        task.pop_request()
    assert rejected.value.requeue is False and rejected.value.reason == "InvalidEvent: bad"
