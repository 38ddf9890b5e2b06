"""The batching strategy in process: batches, acknowledgements after the commit, the one-task fallback.

The worker's parts the batcher talks to (its timer, its connection, Celery's own handling of a
message) are recorded here; tests/test_worker.py runs the same code in real workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection

from helpdesk import batching
from helpdesk.models import ExternalEmployee, ProcessedEvent

from .conftest import employee_payload, envelope

EMP_Q = "hdts.employee.sync"

pytestmark = pytest.mark.django_db(transaction=True)  # the batch's commit is a real one


@dataclass
class Entry:
    """A timer entry: what it calls, and whether it was cancelled."""

    fun: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Consumer:
    """The worker's consumer as the batcher sees it: a timer, a connection and its errors."""

    entries: list[Entry] = field(default_factory=list)
    connection: object = field(default_factory=object)
    connection_errors: tuple[type[Exception], ...] = ()

    @property
    def timer(self) -> Consumer:
        return self

    def call_after(self, seconds: float, fun: Callable[[], None]) -> Entry:
        self.entries.append(Entry(fun))
        return self.entries[-1]

    def fire(self) -> None:
        """Run the timer entries that were not cancelled."""
        for entry in self.entries:
            if not entry.cancelled:
                entry.fun()


@dataclass
class Message:
    """A Celery protocol-2 message of one event."""

    event: dict[str, Any]
    headers: dict[str, Any] = field(default_factory=dict)

    def decode(self) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
        return [self.event], {}, {}


@dataclass
class Log:
    """What happened to each message, in order: acknowledged (with the transaction state) or handled alone."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def ack(self, message: Message) -> Callable[..., None]:
        def ack(*_args: Any) -> None:
            # Acknowledged only once the events are committed: no transaction is open any more.
            assert not connection.in_atomic_block
            assert ProcessedEvent.objects.filter(pk=message.event["id"]).exists()
            self.lines.append(("ack", message.event["id"]))

        return ack

    def fallback(self, message: Message, *_args: Any) -> None:
        self.lines.append(("alone", message.event["id"]))


def pending(log: Log, event: dict[str, Any], **headers: Any) -> tuple[Message, batching.Pending]:
    message = Message(event, headers)
    return message, batching.Pending(event, message, log.ack(message), log.fallback, None, log.fallback)


def employee(number: int, **changes: Any) -> dict[str, Any]:
    return envelope(EMP_Q, "create", employee_payload(number, **changes))


def test_a_full_batch_is_applied_at_once_then_each_message_acknowledged() -> None:
    consumer, log = Consumer(), Log()
    batcher = batching.Batcher(consumer, size=3)
    events = [employee(n) for n in (1, 2, 3)]
    for event in events:
        batcher.add(pending(log, event)[1])
    assert log.lines == [("ack", event["id"]) for event in events]
    assert ExternalEmployee.objects.count() == 3
    assert all(entry.cancelled for entry in consumer.entries)  # the timer has nothing left to do


def test_a_batch_that_is_not_full_is_applied_when_its_timer_fires() -> None:
    consumer, log = Consumer(), Log()
    batcher = batching.Batcher(consumer, size=10)
    events = [employee(n) for n in (1, 2)]
    for event in events:
        batcher.add(pending(log, event)[1])
    assert log.lines == [] and len(consumer.entries) == 1  # one timer for the batch
    assert not ExternalEmployee.objects.exists()
    consumer.fire()
    assert log.lines == [("ack", event["id"]) for event in events]


def test_a_failing_batch_keeps_nothing_and_hands_each_message_to_celery_in_order() -> None:
    consumer, log = Consumer(), Log()
    batcher = batching.Batcher(consumer, size=3)
    events = [employee(1), employee(2, email=42), employee(3)]  # the second is malformed
    for event in events:
        batcher.add(pending(log, event)[1])
    # Celery's one-task handling retries or dead-letters the bad one and applies the others.
    assert log.lines == [("alone", event["id"]) for event in events]
    assert not ProcessedEvent.objects.exists()
    assert not ExternalEmployee.objects.exists()


def test_a_duplicate_in_a_batch_changes_nothing() -> None:
    consumer, log = Consumer(), Log()
    batcher = batching.Batcher(consumer, size=2)
    first = employee(1)
    again = {**first, "payload": employee_payload(1, first_name="Changed")}
    batcher.add(pending(log, first)[1])
    batcher.add(pending(log, again)[1])
    assert log.lines == [("ack", first["id"])] * 2
    assert list(ExternalEmployee.objects.values_list("first_name", flat=True)) == ["Ben"]


@pytest.mark.parametrize(
    "headers",
    [{"eta": "2026-01-01T00:00:00+00:00"}, {batching.FAILURE_HEADER: "InvalidEvent: bad"}],
    ids=["retry", "dead-letter copy"],
)
def test_a_message_that_is_no_first_delivery_goes_alone_after_the_batch_before_it(
    headers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer, log = Consumer(), Log()
    monkeypatch.setattr(batching, "default", lambda *_args, **_kw: log.fallback)  # Celery's handling
    on_message = batching.strategy(None, None, consumer)  # type: ignore[arg-type]
    first, second = employee(1), employee(2)
    for message in (Message(first), Message(second, headers)):
        on_message(message, None, log.ack(message), log.fallback, None)
    assert log.lines == [("ack", first["id"]), ("alone", second["id"])]


def test_a_reconnected_consumer_gets_a_new_batcher_and_drops_the_old_one() -> None:
    consumer, log = Consumer(), Log()
    old = batching.batcher_of(consumer)
    assert batching.batcher_of(consumer) is old
    old.add(pending(log, employee(1))[1])
    consumer.connection = object()  # the worker reconnected: the old channel's messages come again
    new = batching.batcher_of(consumer)
    assert new is not old and new.pending == []
    assert consumer.entries[0].cancelled
