"""Apply the sync tasks' messages in batches: many events per transaction, acknowledged after it.

The sync tasks name this module as their Celery ``Strategy``: the worker hands every message
of a sync queue here instead of running one task for it. Messages are collected in the order
they arrive (all sync queues of the worker together) until ``settings.SYNC_BATCH_SIZE`` of them
wait or ``SYNC_BATCH_WAIT`` seconds passed since the first; then every event is applied with the same
``handle_event`` as ``apply_events``, in one transaction, and each message is acknowledged
after the commit. The worker's prefetch (see ``config/settings.py``) lets the broker send the
next batch while one is applied.

Every guarantee of the one-task-per-message path holds, because that path is still there:

- a message is acknowledged only after the commit of the transaction that recorded its event
  (ProcessedEvent), so a worker that dies mid-batch gets the whole batch again, and a message
  redelivered after the commit is a duplicate that changes nothing;
- when the batch fails (a malformed event, a database error, a conflict), it is rolled back
  and each of its messages goes, in order, through Celery's own handling of the task: retries
  with backoff, then dead-lettering with the ``x-sync-failure`` header (see ``tasks.py``). A
  bad message is thus retried and dead-lettered alone, and the others are applied;
- messages that are not first deliveries of a sync task (a retry waiting for its ETA, a copy
  carrying its failure to the dead-letter queue, anything not decodable) skip the batch: the
  pending batch is applied first, then the message goes to Celery's handling.

This file is shared by the consumers: workflows/batching.py and helpdesk/batching.py must
stay byte-identical (tests/test_shared_copies.py at the repo root checks it); edit both or
neither.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from celery.worker.strategy import default
from django.conf import settings
from django.db import connection, transaction

from .handlers import handle_event

logger = logging.getLogger(__name__)

#: Seconds a batch waits for more messages after its first one before it is applied.
BATCH_WAIT = float(os.environ.get("SYNC_BATCH_WAIT", "0.05"))
#: The header that carries why a message is dead-lettered (see tasks.py).
FAILURE_HEADER = "x-sync-failure"

Handler = Callable[..., Any]


def apply_all(envelopes: Sequence[dict[str, Any]]) -> list[str]:
    """Apply the events in one transaction (each in its savepoint); return their outcomes.

    Any error rolls every event back: nothing of the batch is recorded.
    """
    with transaction.atomic():
        return [handle_event(envelope) for envelope in envelopes]


@dataclass
class Pending:
    """One message waiting in a batch, with what Celery's own handling of it needs."""

    envelope: dict[str, Any]
    message: Any
    ack: Handler
    reject: Handler
    callbacks: Any
    fallback: Handler

    def handle_alone(self) -> None:
        """Hand the message to Celery's one-task handling: retries, then dead-lettering."""
        self.fallback(self.message, None, self.ack, self.reject, self.callbacks)


class Batcher:
    """Collect a worker's sync messages and apply them batch by batch (see the module's doc).

    One per consumer connection: the strategies of all sync tasks share it. The lock matters
    where the worker's timer runs in a thread of its own (Windows); elsewhere the timer runs in
    the worker's event loop and the lock is never contended.
    """

    def __init__(self, consumer: Any, size: int, wait: float = BATCH_WAIT) -> None:
        """Remember the consumer (its timer and connection) and the batch limits."""
        self.consumer = consumer
        self.connection = consumer.connection
        self.size = size
        self.wait = wait
        self.pending: list[Pending] = []
        self.timer_entry: Any = None
        self.lock = threading.RLock()

    def add(self, item: Pending) -> None:
        """Queue one message; apply the batch when it is full, else make sure a timer will."""
        with self.lock:
            self.pending.append(item)
            if len(self.pending) >= self.size:
                self.flush()
            elif self.timer_entry is None:
                self.timer_entry = self.consumer.timer.call_after(self.wait, self.flush)

    def flush(self) -> None:
        """Apply the waiting messages' events in one transaction, then acknowledge each message.

        When that fails, nothing of it is kept and each message is handled alone, in order.
        """
        with self.lock:
            entry, self.timer_entry = self.timer_entry, None
            if entry is not None:
                entry.cancel()
            batch, self.pending = self.pending, []
            if not batch:
                return
            try:
                apply_all([item.envelope for item in batch])
            except Exception as error:
                logger.warning(
                    "A batch of %d sync events failed (%s: %s); applying each event alone.",
                    len(batch),
                    type(error).__name__,
                    error,
                )
                connection.close_if_unusable_or_obsolete()
                for item in batch:
                    item.handle_alone()
                return
            errors = self.consumer.connection_errors
            for item in batch:
                item.ack(logger, errors)  # Celery's acknowledgement, as a task's after it returns


def batcher_of(consumer: Any) -> Batcher:
    """The consumer's batcher, a new one after the consumer reconnected.

    Messages still waiting in the old one belong to a closed channel: the broker delivers them
    again, so they are dropped unacknowledged.
    """
    batcher: Batcher | None = getattr(consumer, "sync_batcher", None)
    if batcher is None or batcher.connection is not consumer.connection:
        if batcher is not None and batcher.timer_entry is not None:
            batcher.timer_entry.cancel()
        batcher = Batcher(consumer, settings.SYNC_BATCH_SIZE)
        consumer.sync_batcher = batcher
    return batcher


def first_delivery(message: Any) -> dict[str, Any] | None:
    """The event of a message that may join a batch, or None for one that goes to Celery alone."""
    headers = message.headers or {}
    if headers.get("eta") or headers.get("expires") or headers.get(FAILURE_HEADER):
        return None
    try:
        args, _kwargs, _embed = message.decode()
        envelope = args[0]
    except Exception:  # Celery's handling says what is wrong with it
        return None
    return envelope if isinstance(envelope, dict) else None


def strategy(task: Task, app: Celery, consumer: Any, **options: Any) -> Handler:
    """The Celery strategy of a sync task: batch first deliveries, hand the rest to Celery's own."""
    fallback: Handler = default(task, app, consumer, **options)
    batcher = batcher_of(consumer)

    def on_message(message: Any, body: Any, ack: Handler, reject: Handler, callbacks: Any, **kw: Any) -> Any:
        envelope = first_delivery(message)
        if envelope is None or kw:
            batcher.flush()  # what arrived before it is applied first
            return fallback(message, body, ack, reject, callbacks, **kw)
        batcher.add(Pending(envelope, message, ack, reject, callbacks, fallback))
        return None

    return on_message
