"""Sync over RabbitMQ: workers consume, auth's outbox is relayed with confirms, then drained.

A worker that gives up on an event (retries used up, malformed event) rejects it, and RabbitMQ
dead-letters it to ``<queue>.dead``, with the reason in its ``x-death`` header (and the worker's
in ``x-sync-failure``). Each broker sync first moves the dead letters back to their queues and
waits for them with the rest, so they are applied once their cause is gone. While it waits, it
watches the workers and the dead-letter queues, and stops at once when a worker dies or an event
is dead-lettered again, instead of waiting out its timeout.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
import psutil

from devstack import rabbit, registry, workers
from devstack.commands import child_env, failure_sentence, manage_command, manage_json, write_log
from devstack.config import Settings
from devstack.errors import StepError
from devstack.processes import gone
from devstack.state import ServiceState
from devstack.sync import rebuild_from_snapshot
from devstack.urls import mask_text

#: The header in which a worker writes why it dead-letters a message (see the services' tasks.py).
FAILURE_HEADER = "x-sync-failure"
#: The headers RabbitMQ adds when it dead-letters a message; a re-delivered copy drops them.
DEATH_HEADERS = ("x-death", "x-first-death-", "x-last-death-")
#: Seconds between two looks at the workers a drain waits for, and at the dead-letter queues.
POLL = 0.5


@dataclass
class BrokerReport:
    """What one broker sync did."""

    relayed: int = 0
    redelivered: int = 0
    rebuilt: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    applied: dict[str, int] = field(default_factory=dict)
    stopping: workers.Stopping = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{self.relayed} event(s) relayed with confirms"]
        if self.relayed and self.seconds:
            rate = self.relayed / self.seconds
            parts[0] += f", all applied {self.seconds:.1f} s after the workers started ({rate:,.0f} events/s)"
        if self.redelivered:
            parts.append(f"{self.redelivered} dead-lettered event(s) re-delivered")
        parts += [f"{name} applied {n}" for name, n in self.applied.items()]
        if self.rebuilt:
            parts.append("rebuilt from a snapshot: " + ", ".join(self.rebuilt))
        return "; ".join(parts)


def sync_broker(
    settings: Settings,
    states: Mapping[str, ServiceState],
    timeout: float,
    keep_workers: bool,
    before_write: Callable[[registry.Service], None],
    say: Callable[[str], None],
) -> BrokerReport:
    """Re-deliver dead letters, start the workers, relay auth's outbox, wait until every event is applied."""
    report = BrokerReport(rebuilt=rebuild_from_snapshot(settings, states, before_write))
    workers.declare_queues(settings, say=say)
    redelivered = redeliver(settings)
    report.redelivered = sum(map(len, redelivered.values()))
    if report.redelivered:
        say(f"moved {report.redelivered} dead-lettered event(s) back to their queues")
    # Counted before any event is relayed: a worker may dead-letter one before the drain begins.
    dead_before = dead_baseline(settings, registry.QUEUE_NAMES)
    publisher = states[registry.PUBLISHER]
    if not publisher.pending_event_total and not report.redelivered:
        return report
    for consumer in registry.consumers():
        before_write(consumer)
    began = time.perf_counter()
    pending = {**publisher.pending_events}
    for queue, moved in redelivered.items():
        pending[queue] = pending.get(queue, 0) + len(moved)
    needed = workers_for(pending)
    started, baseline = workers.start_missing(settings, include_relay=False, say=say, only=needed)
    report.started = list(started)
    try:
        ids: dict[str, list[str]] = {queue: list(moved) for queue, moved in redelivered.items()}
        if publisher.pending_event_total:
            before_write(registry.publisher())
            # The relay runs while the workers boot: the queues are durable, nothing waits on it.
            relayed = manage_json(settings, registry.publisher(), "relay_events")
            for queue, batch in relayed.get("ids", {}).items():
                ids.setdefault(queue, []).extend(batch)
            report.relayed = int(relayed.get("published", 0))
        workers.wait_consuming(settings, started, baseline, timeout)
        report.applied = drain(settings, ids, timeout, watched(settings, needed, started), dead_before)
        report.seconds = time.perf_counter() - began
    except BaseException:
        if not keep_workers:
            workers.stop_all(settings, workers.named(started), settings.stop_grace)
        raise
    if not keep_workers:
        # Idle workers finish their warm shutdown while the run goes on; the caller waits.
        report.stopping = workers.begin_stopping(settings, workers.named(started))
    return report


def watched(
    settings: Settings, needed: list[workers.Worker], started: Mapping[str, psutil.Process]
) -> dict[str, psutil.Process]:
    """The process of each worker a drain relies on: those just started and those already running."""
    procs: dict[str, psutil.Process] = {}
    for worker in needed:
        proc = started.get(worker.name) or workers.running(settings, worker)
        if proc is not None:
            procs[worker.name] = proc
    return procs


def workers_for(pending: Mapping[str, int]) -> list[workers.Worker]:
    """The consumers that have pending events on their queues (all, when that is unknown)."""
    if not set(pending) <= set(registry.QUEUE_NAMES):
        return workers.consumers()
    return [w for w in workers.consumers() if any(pending.get(q) for q in w.queues)]


def drain(
    settings: Settings,
    ids: Mapping[str, list[str]],
    timeout: float,
    watch: Mapping[str, psutil.Process] | None = None,
    dead_before: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Wait until each consumer has recorded every given event of its queues as applied.

    One ``manage.py wait_events`` per consumer waits up to ``timeout`` seconds. Meanwhile, every
    ``POLL`` seconds, the worker processes in ``watch`` (by worker name) are looked at, and the
    dead-letter queues: when a worker dies, or an event is dead-lettered, before its events are
    all applied, the waits are ended and StepError says so at once. ``dead_before`` is how many
    dead letters each queue held before the events were sent (counted here when not given).
    """
    todo = {c.name: [i for q in c.consumes for i in ids.get(q, [])] for c in registry.consumers()}
    todo = {name: batch for name, batch in todo.items() if batch}
    if not todo:
        return {}
    queues = [q for name in todo for q in registry.get(name).consumes if ids.get(q)]
    if dead_before is None:
        dead_before = dead_baseline(settings, queues)
    waits = {name: start_wait(settings, registry.get(name), timeout) for name in todo}
    with ThreadPoolExecutor(max_workers=len(waits)) as pool:
        futures = {
            name: pool.submit(proc.communicate, "\n".join(todo[name]) + "\n") for name, proc in waits.items()
        }
        try:
            watch_waits(settings, futures, watch or {}, queues, dead_before)
        except BaseException:
            for proc in waits.values():
                proc.kill()  # wait_events only reads: nothing is left half done
            raise
    for name, future in futures.items():
        out, err = future.result()
        proc = waits[name]
        if proc.returncode != 0:
            service = registry.get(name)
            done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            log = write_log(settings, service, "wait_events", done)
            raise StepError(
                f"{name}: {mask_text(failure_sentence(err))} (full output: {log})\n{backlog(settings)}"
            )
    return {name: len(batch) for name, batch in todo.items()}


def start_wait(settings: Settings, service: registry.Service, timeout: float) -> subprocess.Popen[str]:
    """Start ``manage.py wait_events - --json`` of ``service``; the event ids go to its stdin."""
    return subprocess.Popen(
        manage_command(settings, service, "wait_events", "-", "--timeout", f"{timeout:g}", "--json"),
        cwd=service.folder(settings.root),
        env=child_env(settings, service),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )


def watch_waits(
    settings: Settings,
    futures: Mapping[str, Future[tuple[str, str]]],
    watch: Mapping[str, psutil.Process],
    queues: list[str],
    dead_before: Mapping[str, int] | None,
) -> None:
    """Return when every wait has ended; raise StepError when a watched worker or an event dies first."""
    by_name = {w.name: w for w in workers.consumers()}
    while True:
        wait(list(futures.values()), timeout=POLL, return_when=FIRST_COMPLETED)
        waiting = {name for name, future in futures.items() if not future.done()}
        if not waiting:
            return
        for name, proc in watch.items():
            worker = by_name.get(name)
            if worker is not None and worker.service.name in waiting and gone(proc):
                raise StepError(
                    workers.death_sentence(settings, worker, proc, "while the sync waited for its events")
                    + "\nIts events not yet applied stay in RabbitMQ: run 'inv sync --via broker' again."
                )
        if dead_before is None:
            continue
        try:
            counts = dead_counts(settings, queues)
        except StepError:
            continue  # the broker did not answer this time: the waits go on
        for queue in queues:
            new = counts.get(queue, 0) - dead_before.get(queue, 0)
            consumer = next(c for c in registry.consumers() if queue in c.consumes)
            if new > 0 and consumer.name in waiting:
                raise StepError(dead_letter_sentence(settings, queue, new, consumer.name))


def dead_letter_sentence(settings: Settings, queue: str, new: int, consumer: str) -> str:
    """Say that ``new`` events of ``queue`` were dead-lettered, why, and what to do."""
    dead = workers.dead_queue(settings.queue(queue))
    purge = workers.rabbitmqctl(rabbit.parse(settings.broker_url), "purge_queue", dead)
    try:
        reason = dead_letters(settings, [queue])[queue]["reason"] or "no reason given"
    except StepError:
        reason = "reason unknown"
    return (
        f"{new} event(s) of {settings.queue(queue)} were dead-lettered by {consumer}'s worker ({reason}); "
        f"they wait in "
        f"{dead}: remove the cause, then run 'inv sync --via broker' again to re-deliver them "
        f"(or drop them: {purge})."
    )


def backlog(settings: Settings) -> str:
    """Describe what is still queued per queue and how each worker's log ends."""
    lines = []
    try:
        info = queue_states(settings)
        dead = dead_counts(settings, registry.QUEUE_NAMES)
        for queue, entry in info.items():
            state = "missing" if entry is None else f"{entry.messages} ready, {entry.consumers} consumer(s)"
            if dead.get(queue):
                state += f", {dead[queue]} dead-lettered in {workers.dead_queue(settings.queue(queue))}"
            lines.append(f"  {settings.queue(queue)}: {state}")
    except StepError as exc:
        lines.append(f"  queues unknown: {exc}")
    for worker in workers.consumers():
        lines.append(f"--- {worker.name} log:\n{workers.tail(workers.log_file(settings, worker))}")
    lines.append("Undelivered events stay in RabbitMQ and are applied by the next run.")
    return "\n".join(lines)


def status(settings: Settings) -> dict[str, Any]:
    """Workers (PID, queues), the broker's view of each queue and the dead letters of each.

    Queues are keyed by base name; ``namespace`` says what their names on the broker start with.
    """
    rows: dict[str, Any] = {}
    for worker in [*workers.consumers(), workers.relay()]:
        proc = workers.running(settings, worker)
        rows[worker.name] = {"pid": proc.pid if proc else None, "queues": list(worker.queues)}
    dead: dict[str, Any]
    try:
        info = queue_states(settings)
        queues = {
            q: (None if i is None else {"ready": i.messages, "consumers": i.consumers})
            for q, i in info.items()
        }
        dead = dead_letters(settings)
    except StepError as exc:
        queues = {"error": str(exc)}  # type: ignore[dict-item]
        dead = {"error": str(exc)}
    return {"namespace": settings.namespace(), "workers": rows, "queues": queues, "dead_letters": dead}


def queue_states(
    settings: Settings, queues: Iterable[str] = registry.QUEUE_NAMES
) -> dict[str, workers.QueueInfo | None]:
    """The broker's view of each sync queue (by base name) in this checkout's namespace."""
    names = list(queues)
    info = workers.queue_info(rabbit.parse(settings.broker_url), map(settings.queue, names))
    return {q: info[settings.queue(q)] for q in names}


def dead_baseline(settings: Settings, queues: Iterable[str]) -> dict[str, int] | None:
    """The dead letters of each queue now, or None when the broker does not answer (then only
    the workers are watched)."""
    try:
        return dead_counts(settings, queues)
    except StepError:
        return None


def dead_counts(settings: Settings, queues: Iterable[str]) -> dict[str, int]:
    """The messages waiting in each sync queue's ``<queue>.dead`` (0 when it does not exist)."""
    broker = rabbit.parse(settings.broker_url)
    dead = {q: workers.dead_queue(settings.queue(q)) for q in queues}
    info = workers.queue_info(broker, dead.values())
    return {q: (i.messages if (i := info[name]) else 0) for q, name in dead.items()}


def dead_letters(
    settings: Settings, queues: Iterable[str] = registry.QUEUE_NAMES
) -> dict[str, dict[str, Any]]:
    """Per sync queue, how many of its messages were dead-lettered and why the first one was.

    The reason is RabbitMQ's (``x-death``: "rejected" when a worker gave up on it) followed by
    the worker's (its ``x-sync-failure`` header), e.g. "rejected: InvalidEvent: ...". The first
    message is read without being taken: it is returned to its place at once.
    """
    broker = rabbit.parse(settings.broker_url)
    result: dict[str, dict[str, Any]] = {}
    with workers.connected(broker) as connection:
        for queue in queues:
            dead = workers.dead_queue(settings.queue(queue))
            channel = connection.channel()
            try:
                count = channel.queue_declare(queue=dead, passive=True).method.message_count
            except pika.exceptions.ChannelClosedByBroker:
                result[queue] = {"count": 0, "reason": ""}  # not declared yet: nothing died
                continue
            reason = ""
            if count:
                method, properties, _ = channel.basic_get(queue=dead, auto_ack=False)
                if method is not None:
                    reason = death_reason(properties.headers or {})
                    channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
            channel.close()
            result[queue] = {"count": count, "reason": reason}
    return result


def death_reason(headers: Mapping[str, Any]) -> str:
    """Why a dead letter died: RabbitMQ's reason ("rejected", "expired"...) and the worker's, if any."""
    deaths = headers.get("x-death") or []
    first = deaths[0] if deaths and isinstance(deaths[0], Mapping) else {}
    why = text(first.get("reason") or headers.get("x-first-death-reason") or "dead-lettered")
    failure = headers.get(FAILURE_HEADER)
    return f"{why}: {text(failure)}" if failure else why


def text(value: object) -> str:
    """A header value as text (AMQP strings may come as bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def redeliver_dead(settings: Settings) -> int:
    """Move every message of each ``<queue>.dead`` back to its queue; return how many were moved."""
    return sum(map(len, redeliver(settings).values()))


def redeliver(settings: Settings) -> dict[str, list[str]]:
    """Move the dead letters of each sync queue back to it, as new deliveries; return their event ids.

    Each copy is published to the queue's exchange with a publisher confirm before the dead
    letter is acknowledged (see ``workers.move``). It loses the headers of its death and of the
    worker's failure, and its retry count starts again from 0: it gets every retry a new event
    gets. The queues must be declared (``workers.declare_queues``).
    """
    broker = rabbit.parse(settings.broker_url)
    moved: dict[str, list[str]] = {}
    with workers.connected(broker) as connection:
        for queue in registry.QUEUE_NAMES:
            name = settings.queue(queue)
            try:
                ids = workers.move(connection, workers.dead_queue(name), name, name, rewrite=as_new)
            except pika.exceptions.ChannelClosedByBroker:
                continue  # no dead-letter queue yet: nothing to move
            except pika.exceptions.AMQPError as exc:
                raise StepError(
                    f"Could not move the dead letters of {name} back to it ({type(exc).__name__}: {exc}); "
                    "they stay where they are: run the sync again."
                ) from None
            if ids:
                moved[queue] = ids
    return moved


def as_new(properties: pika.BasicProperties) -> pika.BasicProperties:
    """The properties of a dead letter made a fresh delivery: no death headers, no failure, no retries."""
    headers = {
        key: value
        for key, value in (properties.headers or {}).items()
        if key != FAILURE_HEADER and not key.startswith(DEATH_HEADERS)
    }
    if "retries" in headers:
        headers["retries"] = 0
    properties.headers = headers
    return properties


def dead_letter_total(settings: Settings) -> int:
    """How many dead letters wait in all the ``<queue>.dead`` queues (0 when the broker does not answer)."""
    try:
        return sum(dead_counts(settings, registry.QUEUE_NAMES).values())
    except StepError:
        return 0
