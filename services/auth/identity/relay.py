"""Publish pending outbox events to RabbitMQ as Celery task messages.

Each batch runs in one database transaction: select the oldest pending events
(rows locked with SKIP LOCKED on PostgreSQL; SQLite's IMMEDIATE transaction
serializes relays), publish them pipelined on a channel in confirm mode, wait
until the broker confirmed every message, then mark them delivered. A nack, a
missing confirm, a lost connection or a hard kill rolls the transaction back,
so the batch stays pending and is published again later (consumers drop
duplicates by event id).

Messages follow Celery's task protocol 2: task name = queue name, args =
[envelope], task id = event id, routed to the durable queue of the same name in
this checkout's namespace (``settings.SYNC_NAMESPACE``, see ``on_broker``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import amqp
from celery.utils.nodenames import anon_nodename
from config.celery_app import app as celery_app
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone
from kombu import Connection, Exchange
from kombu import Queue as KombuQueue
from kombu.serialization import dumps
from kombu.transport.pyamqp import Transport as AmqpTransport

from . import outbox
from .errors import RelayError
from .models import OutboxEvent

BATCH = 500
CONFIRM_TIMEOUT = 15.0
CONNECT_TIMEOUT = 5.0
RETRY_PAUSE = 2.0
PERSISTENT = 2


DEAD_LETTER_SUFFIX = ".dead"


def dead_lettering(name: str) -> dict[str, str]:
    """Return the arguments of sync queue `name`: messages its consumer rejects go to `<name>.dead`."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": name + DEAD_LETTER_SUFFIX}


def on_broker(name: str) -> str:
    """Return the name sync queue ``name`` has on the broker in this checkout's namespace."""
    return f"{settings.SYNC_NAMESPACE}.{name}" if settings.SYNC_NAMESPACE else name


def sync_queues() -> list[KombuQueue]:
    """Return the four sync queues, declared exactly as the consumers (and the runner) declare them.

    RabbitMQ refuses a declaration whose arguments differ from the queue's (PRECONDITION_FAILED),
    so the exchange, durability and dead-letter arguments must match the consumers' settings.
    """
    return [
        KombuQueue(
            name,
            Exchange(name, type="direct", durable=True),
            routing_key=name,
            durable=True,
            queue_arguments=dead_lettering(name),
        )
        for name in map(on_broker, outbox.QUEUES)
    ]


def dead_letter_queues() -> list[KombuQueue]:
    """Return the durable `<queue>.dead` queues, reached through the default exchange."""
    return [KombuQueue(on_broker(name) + DEAD_LETTER_SUFFIX, durable=True) for name in outbox.QUEUES]


def declare_queues(channel: Any) -> None:
    """Declare each dead-letter queue, then the sync queues (a dead letter never lacks its queue).

    A sync queue declared earlier without dead-lettering fails with a RelayError that says how
    to replace it; the runner replaces it itself before it starts the relay.
    """
    for queue in dead_letter_queues():
        queue(channel).declare()
    for queue in sync_queues():
        try:
            queue(channel).declare()
        except amqp.exceptions.PreconditionFailed as exc:
            raise RelayError(
                f"RabbitMQ holds the queue {queue.name} with other arguments than the dead-lettering "
                f"ones ({exc.reply_text}); let the runner replace it ('inv workers.start' or "
                "'inv sync --via broker'), or stop its consumers and run "
                f"'rabbitmqctl delete_queue {queue.name}'."
            ) from exc


def masked(url: str) -> str:
    """Return the broker URL with its password masked."""
    try:
        return str(Connection(url).as_uri())
    except Exception:  # an unparsable URL: show nothing secret
        return "<unparsable broker URL>"


@functools.cache
def origin() -> str:
    """Return the `origin` header Celery gives messages sent by this process."""
    return str(anon_nodename())


def task_message(envelope: dict[str, Any]) -> amqp.Message:
    """Build the Celery protocol-2 message that runs task `<queue>(envelope)`.

    Only the headers a worker reads without a default are set, with the few that name and
    trace the task (`root_id`, `retries`, `argsrepr`, `origin`); Celery's other protocol-2
    headers would all carry their defaults (None, 0, empty), and encoding them cost most of
    the relay's time. The display-only `argsrepr` is a plain truncated repr.
    """
    task_id = str(envelope["id"])
    args = (envelope,)
    argsrepr = repr(args)
    maxsize = celery_app.amqp.argsrepr_maxsize
    if len(argsrepr) > maxsize:
        argsrepr = argsrepr[: maxsize - 3] + "..."
    headers = {
        "lang": "py",
        "task": envelope["queue"],
        "id": task_id,
        "root_id": task_id,
        "retries": 0,
        "argsrepr": argsrepr,
        "origin": origin(),
    }
    body = (args, {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    content_type, content_encoding, data = dumps(body, serializer="json")
    return amqp.Message(
        data.encode(content_encoding) if isinstance(data, str) else data,
        content_type=content_type,
        content_encoding=content_encoding,
        application_headers=headers,
        delivery_mode=PERSISTENT,
        correlation_id=task_id,
        reply_to="",
    )


@dataclass
class Confirms:
    """Track the publisher confirms of the messages published on one channel."""

    next_tag: int = 1
    outstanding: set[int] = field(default_factory=set)
    nacked: int = 0

    def published(self) -> None:
        """Remember the delivery tag of a message just published."""
        self.outstanding.add(self.next_tag)
        self.next_tag += 1

    def settle(self, delivery_tag: int, multiple: bool) -> int:
        """Forget the tags a confirm covers; return how many it covered."""
        if multiple:
            covered = {tag for tag in self.outstanding if tag <= delivery_tag}
        else:
            covered = {delivery_tag} & self.outstanding
        self.outstanding -= covered
        return len(covered)

    def ack(self, delivery_tag: int, multiple: bool) -> None:
        """Record a basic.ack from the broker."""
        self.settle(delivery_tag, multiple)

    def nack(self, delivery_tag: int, multiple: bool) -> None:
        """Record a basic.nack from the broker."""
        self.nacked += self.settle(delivery_tag, multiple)


class Publisher:
    """Publish batches of envelopes on one confirm-mode channel."""

    def __init__(self, url: str, confirm_timeout: float = CONFIRM_TIMEOUT) -> None:
        """Remember the broker URL; connect only in open()."""
        self.url = url
        self.confirm_timeout = confirm_timeout
        self.connection: Connection | None = None
        self.channel: Any = None
        self.confirms = Confirms()

    def __enter__(self) -> Publisher:
        """Open the connection."""
        self.open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Close the connection."""
        self.close()

    @property
    def is_open(self) -> bool:
        """Tell whether a channel is ready."""
        return self.channel is not None

    def reason(self, exc: BaseException) -> str:
        """Describe an error in a few words, never showing the password."""
        text = f"{type(exc).__name__}: {exc}".strip().rstrip(".")
        password = Connection(self.url).password if self.url else None
        return text.replace(password, "**") if password else text

    def open(self) -> None:
        """Connect, declare the sync queues and put a channel in confirm mode."""
        try:
            connection = Connection(self.url, connect_timeout=CONNECT_TIMEOUT, heartbeat=0)
            transport_ok = isinstance(connection.transport, AmqpTransport)
        except Exception as exc:
            raise RelayError(
                f"CELERY_BROKER_URL {masked(self.url)} is not a usable broker URL ({self.reason(exc)}); "
                "set it to amqp://user:password@host:5672/vhost."
            ) from exc
        if not transport_ok:
            raise RelayError(
                f"CELERY_BROKER_URL {masked(self.url)} is not an amqp:// URL; the relay needs RabbitMQ, "
                "so set it to amqp://user:password@host:5672/vhost."
            )
        errors = (
            OSError,
            amqp.exceptions.AMQPError,
            *connection.connection_errors,
            *connection.channel_errors,
        )
        try:
            # One attempt: the relay reports a broker problem at once instead of retrying.
            connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
            channel = connection.channel()
            declare_queues(channel)
            channel.confirm_select()
        except RelayError:
            self._release(connection)
            raise
        except errors as exc:
            self._release(connection)
            raise RelayError(
                f"Cannot connect to the broker at {masked(self.url)} ({self.reason(exc)}); start RabbitMQ "
                "or fix CELERY_BROKER_URL (host, port, user, password, virtual host)."
            ) from exc
        self.confirms = Confirms()
        channel.events["basic_ack"].add(self.confirms.ack)
        channel.events["basic_nack"].add(self.confirms.nack)
        self.connection, self.channel = connection, channel

    def close(self) -> None:
        """Close the connection, ignoring errors of a connection already broken."""
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            self._release(connection)

    @staticmethod
    def _release(connection: Connection) -> None:
        """Release a connection quietly (it may be half open or broken)."""
        with contextlib.suppress(Exception):
            connection.release()

    def publish(self, envelopes: Sequence[dict[str, Any]]) -> None:
        """Publish the envelopes without waiting, then wait until all are confirmed."""
        if self.channel is None or self.connection is None:
            raise RelayError("The relay is not connected to the broker; open the publisher first.")
        errors = (OSError, amqp.exceptions.AMQPError, *self.connection.connection_errors)
        try:
            for envelope in envelopes:
                name = on_broker(envelope["queue"])
                self.channel.basic_publish(task_message(envelope), exchange=name, routing_key=name)
                self.confirms.published()
            self.wait_for_confirms(len(envelopes))
        except RelayError:
            self.close()
            raise
        except errors as exc:
            self.close()
            raise RelayError(
                f"Lost the broker at {masked(self.url)} while publishing ({self.reason(exc)}); "
                "the batch stays pending, so run the relay again."
            ) from exc

    def wait_for_confirms(self, count: int) -> None:
        """Drain broker frames until every published message is confirmed (raise RelayError)."""
        assert self.connection is not None
        deadline = time.monotonic() + self.confirm_timeout
        while self.confirms.outstanding and not self.confirms.nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RelayError(
                    f"The broker did not confirm {len(self.confirms.outstanding)} of {count} messages "
                    f"within {self.confirm_timeout:g} s; the batch stays pending, so run the relay again."
                )
            try:
                self.connection.drain_events(timeout=remaining)
            except TimeoutError:  # socket.timeout: no frame arrived in time
                continue
        if self.confirms.nacked:
            raise RelayError(
                f"The broker refused (nacked) {self.confirms.nacked} of {count} messages; "
                "the batch stays pending, so check RabbitMQ's logs and run the relay again."
            )


@dataclass
class RelayReport:
    """Report what a relay run published."""

    published: int = 0
    ids: dict[str, list[str]] = field(default_factory=lambda: {queue: [] for queue in outbox.QUEUES})
    seconds: float = 0.0

    def add(self, envelopes: Sequence[dict[str, Any]]) -> None:
        """Count a delivered batch."""
        self.published += len(envelopes)
        for envelope in envelopes:
            self.ids.setdefault(envelope["queue"], []).append(envelope["id"])

    def as_json(self) -> dict[str, Any]:
        """Return the JSON report of `relay_events --json`."""
        return {"published": self.published, "ids": self.ids, "seconds": round(self.seconds, 3)}


def relay_batch(publisher: Publisher, size: int) -> list[dict[str, Any]]:
    """Publish the oldest pending events (at most `size`) and mark them delivered; return them.

    Selecting, publishing and marking share one transaction: if anything fails the
    events stay pending, and a concurrent relay skips (PostgreSQL) or waits for
    (SQLite) the rows this one holds.
    """
    with transaction.atomic():
        events = list(
            OutboxEvent.objects.select_for_update(skip_locked=True)
            .filter(delivered_at__isnull=True)
            .order_by("seq")[:size]
        )
        if not events:
            return []
        envelopes = [outbox.envelope(event) for event in events]
        publisher.publish(envelopes)
        now = timezone.now()
        for seqs in outbox.chunked([event.seq for event in events]):
            OutboxEvent.objects.filter(seq__in=seqs).update(delivered_at=now)
    return envelopes


def relay_once(
    url: str,
    batch: int = BATCH,
    limit: int | None = None,
    confirm_timeout: float = CONFIRM_TIMEOUT,
) -> RelayReport:
    """Publish pending events batch by batch until none is left (or `limit` are published)."""
    report = RelayReport()
    started = time.perf_counter()
    with Publisher(url, confirm_timeout) as publisher:
        while limit is None or report.published < limit:
            size = batch if limit is None else min(batch, limit - report.published)
            envelopes = relay_batch(publisher, size)
            if not envelopes:
                break
            report.add(envelopes)
    report.seconds = time.perf_counter() - started
    return report


def relay_loop(
    url: str,
    stop: threading.Event,
    batch: int = BATCH,
    interval: float = 0.5,
    confirm_timeout: float = CONFIRM_TIMEOUT,
    on_batch: Callable[[Sequence[dict[str, Any]]], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> RelayReport:
    """Relay until `stop` is set, polling the outbox every `interval` seconds when idle.

    The first connection must succeed (RelayError otherwise, so a wrong URL fails
    fast); later broker or database errors are reported through `on_error` and
    retried after a pause. `stop` is checked between batches, never inside one.
    """
    report = RelayReport()
    started = time.perf_counter()
    publisher = Publisher(url, confirm_timeout)
    publisher.open()
    try:
        while not stop.is_set():
            try:
                if not publisher.is_open:
                    publisher.open()
                envelopes = relay_batch(publisher, batch)
            except (RelayError, DatabaseError) as exc:
                publisher.close()
                close_old_connections()
                if on_error is not None:
                    on_error(str(exc))
                stop.wait(max(interval, RETRY_PAUSE))
                continue
            if envelopes:
                report.add(envelopes)
                if on_batch is not None:
                    on_batch(envelopes)
            else:
                stop.wait(interval)
    finally:
        publisher.close()
    report.seconds = time.perf_counter() - started
    return report
