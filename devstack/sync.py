"""Move auth's pending sync events to the services that consume them (local transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack import registry
from devstack.commands import manage, manage_json
from devstack.config import Settings


@dataclass
class SyncReport:
    """What one sync moved: events exported, applied per consumer, marked delivered."""

    exported: int = 0
    applied: dict[str, dict[str, int]] = field(default_factory=dict)
    delivered: int = 0

    def summary(self) -> str:
        if not self.exported:
            return "no pending events"
        parts = [
            f"{name} applied {r.get('applied', 0)}, duplicate {r.get('duplicate', 0)}, "
            f"deferred {r.get('deferred', 0)}"
            for name, r in self.applied.items()
        ]
        return f"{self.exported} events; " + "; ".join(parts) + f"; {self.delivered} marked delivered"


def sync_local(
    settings: Settings, before_write: Callable[[registry.Service], None] | None = None
) -> SyncReport:
    """Export auth's outbox, apply each event where it is consumed, then mark it delivered.

    An event is marked delivered only when every consumer of its queue has received it, so a
    failure part-way leaves it pending for the next run (consumers ignore duplicates).
    """
    auth = registry.get("auth")
    lines = [line for line in manage(settings, auth, "export_events").stdout.splitlines() if line.strip()]
    report = SyncReport(exported=len(lines))
    if not lines:
        return report
    events = [json.loads(line) for line in lines]
    received: dict[str, set[str]] = {}
    for consumer in registry.consumers():
        batch = [
            line for line, event in zip(lines, events, strict=True) if event["queue"] in consumer.consumes
        ]
        if not batch:
            continue
        if before_write:
            before_write(consumer)
        result = manage_json(settings, consumer, "apply_events", "-", stdin="\n".join(batch) + "\n")
        report.applied[consumer.name] = {k: int(v) for k, v in result.items() if k != "ids"}
        received[consumer.name] = set(result.get("ids", []))
    done = [
        event["id"]
        for event in events
        if all(
            event["id"] in received.get(c.name, set())
            for c in registry.consumers()
            if event["queue"] in c.consumes
        )
    ]
    if done:
        if before_write:
            before_write(auth)
        marked = manage_json(settings, auth, "mark_delivered", "-", stdin="\n".join(done) + "\n")
        report.delivered = int(marked.get("marked", 0))
    return report
