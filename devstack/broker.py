"""Sync over RabbitMQ: workers consume, auth's outbox is relayed with confirms, then drained."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from devstack import rabbit, registry, workers
from devstack.commands import manage_json
from devstack.config import Settings
from devstack.errors import StepError
from devstack.state import ServiceState
from devstack.sync import rebuild_from_snapshot


@dataclass
class BrokerReport:
    """What one broker sync did."""

    relayed: int = 0
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
    """Start the workers, relay auth's outbox, wait until every relayed event is applied."""
    report = BrokerReport(rebuilt=rebuild_from_snapshot(settings, states, before_write))
    if not states[registry.PUBLISHER].pending_event_total:
        return report
    for consumer in registry.consumers():
        before_write(consumer)
    began = time.perf_counter()
    needed = workers_for(states[registry.PUBLISHER].pending_events)
    started, baseline = workers.start_missing(settings, include_relay=False, say=say, only=needed)
    report.started = list(started)
    try:
        before_write(registry.publisher())
        # The relay runs while the workers boot: the queues are durable, nothing waits on it.
        relayed = manage_json(settings, registry.publisher(), "relay_events")
        ids: dict[str, list[str]] = relayed.get("ids", {})
        report.relayed = int(relayed.get("published", 0))
        workers.wait_consuming(settings, started, baseline, timeout)
        report.applied = drain(settings, ids, timeout)
        report.seconds = time.perf_counter() - began
    except BaseException:
        if not keep_workers:
            workers.stop_all(settings, workers.named(started), settings.stop_grace)
        raise
    if not keep_workers:
        # Idle workers finish their warm shutdown while the run goes on; the caller waits.
        report.stopping = workers.begin_stopping(settings, workers.named(started))
    return report


def workers_for(pending: Mapping[str, int]) -> list[workers.Worker]:
    """The consumers that have pending events on their queues (all, when that is unknown)."""
    if not set(pending) <= set(registry.QUEUE_NAMES):
        return workers.consumers()
    return [w for w in workers.consumers() if any(pending.get(q) for q in w.queues)]


def drain(settings: Settings, ids: Mapping[str, list[str]], timeout: float) -> dict[str, int]:
    """Wait until each consumer has recorded every relayed event of its queues as applied."""
    todo = {c.name: [i for q in c.consumes for i in ids.get(q, [])] for c in registry.consumers()}
    todo = {name: batch for name, batch in todo.items() if batch}

    def wait(name: str) -> int:
        batch = todo[name]
        manage_json(
            settings, registry.get(name), "wait_events", "-", "--timeout", f"{timeout:g}",
            stdin="\n".join(batch) + "\n",
        )  # fmt: skip
        return len(batch)

    try:
        with ThreadPoolExecutor(max_workers=len(todo) or 1) as pool:
            return dict(zip(todo, pool.map(wait, todo), strict=True))
    except StepError as exc:
        raise StepError(f"{exc}\n{backlog(settings)}") from None


def backlog(settings: Settings) -> str:
    """Describe what is still queued per queue and how each worker's log ends."""
    lines = []
    try:
        info = workers.queue_info(rabbit.parse(settings.broker_url), registry.QUEUE_NAMES)
        for queue, entry in info.items():
            state = "missing" if entry is None else f"{entry.messages} ready, {entry.consumers} consumer(s)"
            lines.append(f"  {queue}: {state}")
    except StepError as exc:
        lines.append(f"  queues unknown: {exc}")
    for worker in workers.consumers():
        lines.append(f"--- {worker.name} log:\n{workers.tail(workers.log_file(settings, worker))}")
    lines.append("Undelivered events stay in RabbitMQ and are applied by the next run.")
    return "\n".join(lines)


def status(settings: Settings) -> dict[str, Any]:
    """Workers (PID, queues) and the broker's view of each queue."""
    rows: dict[str, Any] = {}
    for worker in [*workers.consumers(), workers.relay()]:
        proc = workers.running(settings, worker)
        rows[worker.name] = {"pid": proc.pid if proc else None, "queues": list(worker.queues)}
    try:
        info = workers.queue_info(rabbit.parse(settings.broker_url), registry.QUEUE_NAMES)
        queues = {
            q: (None if i is None else {"ready": i.messages, "consumers": i.consumers})
            for q, i in info.items()
        }
    except StepError as exc:
        queues = {"error": str(exc)}  # type: ignore[dict-item]
    return {"workers": rows, "queues": queues}
