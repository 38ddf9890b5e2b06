"""Compare each consumer's mirrors with the publisher's current state, and repair them.

Events can be lost between the publisher and a consumer (a queue purged, a consumer that gave
up, a worker killed, the publisher reset). Rather than trusting a delivery record, the runner
asks the publisher for a snapshot of what it holds now (``export_events --snapshot``) and each
consumer to reconcile its mirrors with it (``reconcile``): rows created or updated to match,
rows whose source is gone deleted. ``--check`` computes the same report without writing, which
is what ``verify`` uses. Rows a consumer synced after the snapshot was taken are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from devstack import registry
from devstack.commands import manage, manage_json
from devstack.config import Settings

CHANGES = ("created", "updated", "deleted")


@dataclass
class MirrorReport:
    """One consumer's reconcile report: per queue, rows created, updated, deleted, unchanged."""

    service: str
    queues: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> MirrorReport:
        queues = {
            str(q): {k: int(v) for k, v in dict(numbers).items()}
            for q, numbers in dict(document.get("queues") or {}).items()
        }
        return cls(str(document.get("service", "")), queues, [str(p) for p in document.get("problems") or []])

    def differences(self) -> dict[str, int]:
        """Rows out of step with the publisher, by kind (created/updated/deleted would fix them)."""
        return {kind: sum(q.get(kind, 0) for q in self.queues.values()) for kind in CHANGES}

    @property
    def in_step(self) -> bool:
        return not any(self.differences().values()) and not self.problems

    def describe(self, done: bool) -> str:
        """Say what was repaired (``done``) or what is out of step."""
        numbers = self.differences()
        if not any(numbers.values()):
            return f"{self.service} matches {registry.PUBLISHER}"
        if done:
            parts = [f"{n} {kind}" for kind, n in numbers.items() if n]
            return f"{self.service} repaired: " + ", ".join(parts)
        labels = {"created": "missing", "updated": "different", "deleted": "whose source is gone"}
        parts = [f"{n} {labels[kind]}" for kind, n in numbers.items() if n]
        return f"{self.service}: mirror rows out of step with {registry.PUBLISHER}: " + ", ".join(parts)


def snapshot(settings: Settings) -> list[str]:
    """Return the publisher's current state as JSON lines (each says when the snapshot began)."""
    done = manage(settings, registry.publisher(), "export_events", "--snapshot")
    return [line for line in done.stdout.splitlines() if line.strip()]


def reconcile(
    settings: Settings,
    consumers: Iterable[registry.Service],
    check: bool,
    before_write: Callable[[registry.Service], None] | None = None,
) -> dict[str, MirrorReport]:
    """Reconcile (or, with ``check``, compare) each consumer's mirrors with the publisher."""
    chosen = tuple(consumers)
    if not chosen:
        return {}
    lines = snapshot(settings)
    if before_write and not check:
        for consumer in chosen:
            before_write(consumer)

    def run(consumer: registry.Service) -> MirrorReport:
        mine = [line for line in lines if json.loads(line).get("queue") in consumer.consumes]
        args = ["reconcile", "-", *(["--check"] if check else [])]
        document = manage_json(settings, consumer, *args, stdin="\n".join(mine) + "\n")
        return MirrorReport.from_json({"service": consumer.name, **document})

    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        return dict(zip((c.name for c in chosen), pool.map(run, chosen), strict=True))
