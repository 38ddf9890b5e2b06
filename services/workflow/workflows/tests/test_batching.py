"""The batching strategy in process: batches, acknowledgements after the commit, the one-task fallback.

The worker's parts the batcher talks to (its timer, its connection, Celery's own handling of a
message) are recorded here; tests/test_worker.py runs the same code in real workers. helpdesk's
test_batching.py tests every path of the batcher (batching.py is the same file in both services);
these tests are about workflow's events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection

from workflows import batching
from workflows.models import DeferredEvent, ProcessedEvent, Role, RoleUser

from .factories import link_event, role_event

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


def pending(log: Log, event: dict[str, Any]) -> batching.Pending:
    message = Message(event)
    return batching.Pending(event, message, log.ack(message), log.fallback, None, log.fallback)


def test_links_before_their_role_in_one_batch_are_parked_then_applied_with_it() -> None:
    consumer, log = Consumer(), Log()
    batcher = batching.Batcher(consumer, size=3)
    events = [link_event(5, 2), link_event(6, 2), role_event(2, "Admin")]
    for event in events:
        batcher.add(pending(log, event))
    assert log.lines == [("ack", event["id"]) for event in events]
    assert Role.objects.count() == 1 and RoleUser.objects.count() == 2
    assert not DeferredEvent.objects.exists()


def test_a_conflict_in_a_batch_sends_each_of_its_messages_to_celery() -> None:
    consumer, log = Consumer(), Log()
    batcher = batching.Batcher(consumer, size=3)
    events = [role_event(2, "Admin"), role_event(3, "Admin"), role_event(4, "Agent")]  # 3 wants 2's name
    for event in events:
        batcher.add(pending(log, event))
    # Celery's one-task handling applies 2 and 4 and retries 3 (the rename of 2 may be on its way).
    assert log.lines == [("alone", event["id"]) for event in events]
    assert not Role.objects.exists() and not ProcessedEvent.objects.exists()
