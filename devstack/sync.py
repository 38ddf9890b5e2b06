"""Move the publisher's sync events to the services that consume them (local transport)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from devstack import registry
from devstack.commands import manage, manage_json
from devstack.config import Settings
from devstack.state import ServiceState


@dataclass
class SyncReport:
    """What one sync moved: events exported, applied per consumer, marked delivered."""

    exported: int = 0
    applied: dict[str, dict[str, int]] = field(default_factory=dict)
    rebuilt: list[str] = field(default_factory=list)
    delivered: int = 0

    def summary(self) -> str:
        parts = [
            f"{name} applied {r.get('applied', 0)}, duplicate {r.get('duplicate', 0)}, "
            f"deferred {r.get('deferred', 0)}"
            + (" (rebuilt from a snapshot)" if name in self.rebuilt else "")
            for name, r in self.applied.items()
        ]
        head = f"{self.exported} pending event(s)"
        return "; ".join([head, *parts, f"{self.delivered} marked delivered"])


def needs_rebuild(publisher: ServiceState, consumer: ServiceState) -> bool:
    """Tell whether a consumer lost its mirror (a new or reset database) after the publisher delivered.

    Before the publisher delivered anything, its pending events are its whole history: no
    snapshot needed.
    """
    return publisher.delivered_events > 0 and consumer.exists and consumer.processed_events == 0


def needs_sync(states: Mapping[str, ServiceState]) -> bool:
    publisher = states[registry.PUBLISHER]
    return bool(publisher.pending_event_total) or any(
        needs_rebuild(publisher, states[c.name]) for c in registry.consumers()
    )


def sync_local(
    settings: Settings,
    states: Mapping[str, ServiceState],
    before_write: Callable[[registry.Service], None] | None = None,
) -> SyncReport:
    """Export the publisher's outbox, apply each event where it is consumed, then mark it delivered.

    A consumer whose mirror is empty (a new or reset database) gets the publisher's current state as a
    snapshot instead, which covers every pending event of its queues. An event is marked
    delivered only when every consumer of its queue has it, so a failure part-way leaves it
    pending for the next run (consumers ignore duplicates).
    """
    auth = registry.publisher()
    lines = _lines(manage(settings, auth, "export_events").stdout)
    events = [json.loads(line) for line in lines]
    report = SyncReport(exported=len(lines))
    rebuild = [c for c in registry.consumers() if needs_rebuild(states[auth.name], states[c.name])]
    snapshot = _lines(manage(settings, auth, "export_events", "--snapshot").stdout) if rebuild else []
    batches: dict[str, list[str]] = {}
    for consumer in registry.consumers():
        source = snapshot if consumer in rebuild else lines
        batches[consumer.name] = [line for line in source if json.loads(line)["queue"] in consumer.consumes]
    results = apply_batches(settings, batches, before_write)
    received: dict[str, set[str]] = {}
    for consumer in registry.consumers():
        mine = {e["id"] for e in events if e["queue"] in consumer.consumes}
        result = results.get(consumer.name, {})
        if result:
            report.applied[consumer.name] = {k: int(v) for k, v in result.items() if k != "ids"}
        if consumer in rebuild:
            report.rebuilt.append(consumer.name)
            received[consumer.name] = mine
        else:
            received[consumer.name] = set(result.get("ids", []))
    done = [
        event["id"]
        for event in events
        if all(event["id"] in received[c.name] for c in registry.consumers() if event["queue"] in c.consumes)
    ]
    if done:
        if before_write:
            before_write(auth)
        marked = manage_json(settings, auth, "mark_delivered", "-", stdin="\n".join(done) + "\n")
        report.delivered = int(marked.get("marked", 0))
    return report


def rebuild_from_snapshot(
    settings: Settings,
    states: Mapping[str, ServiceState],
    before_write: Callable[[registry.Service], None] | None = None,
) -> list[str]:
    """Apply the publisher's current state to every consumer whose mirror is empty; return their names."""
    auth = registry.publisher()
    rebuild = [c for c in registry.consumers() if needs_rebuild(states[auth.name], states[c.name])]
    if not rebuild:
        return []
    snapshot = _lines(manage(settings, auth, "export_events", "--snapshot").stdout)
    batches = {
        c.name: [line for line in snapshot if json.loads(line)["queue"] in c.consumes] for c in rebuild
    }
    apply_batches(settings, batches, before_write)
    return [c.name for c in rebuild]


def apply_batches(
    settings: Settings,
    batches: Mapping[str, list[str]],
    before_write: Callable[[registry.Service], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Apply each consumer's events (JSON lines), consumers in parallel; return their reports."""
    todo = {name: batch for name, batch in batches.items() if batch}
    if before_write:
        for name in todo:
            before_write(registry.get(name))
    with ThreadPoolExecutor(max_workers=len(todo) or 1) as pool:
        reports = pool.map(lambda item: _apply(settings, *item), todo.items())
        return dict(zip(todo, reports, strict=True))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _apply(settings: Settings, consumer: str, batch: list[str]) -> dict[str, Any]:
    service = registry.get(consumer)
    result: dict[str, Any] = manage_json(
        settings, service, "apply_events", "-", stdin="\n".join(batch) + "\n"
    )
    return result
