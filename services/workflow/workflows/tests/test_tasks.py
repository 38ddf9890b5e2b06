"""Test the Celery wiring of the sync consumer (eager mode, no broker)."""

import logging
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from celery.exceptions import Ignore, Reject
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
    queues = {queue.name: queue for queue in celery_app.conf.task_queues}
    assert set(queues) == {"tts.role.sync", "tts.user_system_role.sync"}
    assert all(queue.durable for queue in queues.values())
    assert all(queue.routing_key == name for name, queue in queues.items())


def test_queues_dead_letter_to_their_dead_queue() -> None:
    """Rejected messages go to <queue>.dead through the default exchange (relay and runner agree)."""
    for queue in celery_app.conf.task_queues:
        assert queue.queue_arguments == {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{queue.name}.dead",
        }
        assert queue.exchange.name == queue.name


def test_declaring_a_queue_declares_its_dead_queue_first() -> None:
    """A worker that declares its queues also declares where their dead letters go."""
    channel = mock.Mock()
    channel.prepare_queue_arguments.side_effect = lambda arguments, **_: arguments
    queue = celery_app.conf.task_queues[0]
    queue(channel).declare()
    declared = [c.kwargs["queue"] for c in channel.queue_declare.call_args_list]
    assert declared == [f"{queue.name}.dead", queue.name]
    dead, main = channel.queue_declare.call_args_list
    assert dead.kwargs["durable"] is True and not dead.kwargs["arguments"]
    assert main.kwargs["arguments"] == queue.queue_arguments


def test_tasks_survive_worker_loss_and_retry_transient_errors() -> None:
    celery_app.loader.import_default_modules()
    for name in ("tts.role.sync", "tts.user_system_role.sync"):
        task = celery_app.tasks[name]
        assert task.reject_on_worker_lost is True
        assert task.autoretry_for == (OperationalError, EventConflict)
        assert task.max_retries == 10
        assert task.acks_on_failure is False  # an unexpected failure is dead-lettered, never acked
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


@pytest.mark.django_db
def test_operational_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "handle_event", flaky_handler(2, calls))
    event = role_event(2, "Admin")
    result = tasks.role_sync.apply(args=[event], task_id=event["id"])
    assert result.get() == "applied"
    assert len(calls) == 3


@pytest.mark.django_db
def test_an_event_still_failing_after_its_retries_is_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks, "handle_event", flaky_handler(100, calls))
    event = link_event(5, 2)
    with caplog.at_level(logging.ERROR, logger="workflows.tasks"):
        result = tasks.user_system_role_sync.apply(args=[event])
    assert len(calls) == 11  # the first run and 10 retries
    assert result.state == "REJECTED"  # a worker rejects it without requeue: RabbitMQ dead-letters it
    assert isinstance(result.result, Reject) and result.result.requeue is False
    assert result.result.reason == "OperationalError: database is locked (still failing after 10 retries)"
    assert event["id"] in caplog.text and "Dead-lettering" in caplog.text


@pytest.mark.django_db
def test_a_conflict_that_outlasts_its_retries_is_dead_lettered(monkeypatch: pytest.MonkeyPatch) -> None:
    def conflict(event: dict[str, Any]) -> str:
        raise EventConflict("role name 'Admin' is held by role 3")

    monkeypatch.setattr(tasks, "handle_event", conflict)
    result = tasks.role_sync.apply(args=[role_event(2, "Admin")])
    assert result.state == "REJECTED"
    assert result.result.reason.startswith("EventConflict: role name 'Admin' is held by role 3")


@pytest.mark.django_db
def test_invalid_event_is_logged_and_dead_lettered(caplog: pytest.LogCaptureFixture) -> None:
    event = {**role_event(2, "Admin"), "action": "upsert"}
    with caplog.at_level(logging.ERROR, logger="workflows.tasks"):
        result = tasks.role_sync.apply(args=[event])
    assert result.state == "REJECTED"
    assert result.result.reason.startswith("InvalidEvent: ")
    assert not ProcessedEvent.objects.exists()
    assert not Role.objects.exists()
    assert any(
        record.levelno == logging.ERROR and event["id"] in record.getMessage() for record in caplog.records
    )


@pytest.mark.django_db
def test_an_unexpected_error_is_dead_lettered_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def broken(event: dict[str, Any]) -> str:
        calls.append(event)
        raise KeyError("payload")

    monkeypatch.setattr(tasks, "handle_event", broken)
    result = tasks.role_sync.apply(args=[role_event(2, "Admin")])
    assert result.state == "REJECTED" and result.result.reason == "KeyError: 'payload'"
    assert len(calls) == 1


def test_a_worker_sends_the_event_on_with_its_reason_then_rejects_that_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, Any]] = []
    task = tasks.role_sync._get_current_object()
    headers = {"x-death": [{"reason": "rejected"}], "x-last-death-queue": "q", "mine": 1}

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
