"""Reconcile the HDTSUser and ExternalEmployee mirrors with auth's snapshot.

Input: auth's ``export_events --snapshot`` JSON lines (one ``update`` envelope per
current entity, possibly of every queue; lines of queues not reconciled here are
skipped). For each reconciled queue:

* a snapshot entity whose mirror row already holds its values is ``unchanged``;
* one whose row was written by an event later than the snapshot's is left alone
  (``newer``);
* any other is written by ``handlers.apply_upsert``, the code that applies an
  update event (same validation and email-clash rule): ``created`` or ``updated``;
* a mirror row whose key is not in the snapshot is deleted by
  ``handlers.apply_delete`` as if a delete event had occurred at ``taken_at``:
  only rows synced at or before ``taken_at`` go (``deleted``), rows synced later
  came from newer events and stay (``newer``). Deletes run before upserts, so a
  deleted row's email is free for the entity that holds it now.

``taken_at`` is, first found: the caller's value (``--taken-at``), the latest
``taken_at`` of the input lines (auth writes the snapshot's start time on every
line), the latest ``occurred_at`` of the input lines, or now (empty input: every
row synced until now is deleted).

Snapshot events are not recorded in ProcessedEvent: their ids are fresh and
nobody waits for them, so duplicate detection and ``wait_events`` see only real
events. Writing runs in one transaction. ``check`` computes the same report
without writing: from reads alone, or, when an email clash makes the outcome
depend on the order of writes, by writing in a transaction that is rolled back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from .handlers import (
    QUEUES,
    SPECS,
    Event,
    InvalidEvent,
    MirrorSpec,
    apply_delete,
    apply_upsert,
    parse_envelope,
    payload_key,
    payload_values,
)

SERVICE = "helpdesk"
SHOWN_KEYS = 10


class SnapshotError(ValueError):
    """Report snapshot input or an option that cannot be used (one sentence)."""


def parse_moment(value: object, where: str) -> datetime:
    """Parse an ISO 8601 time (a time without zone is UTC); raise SnapshotError otherwise."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    raise SnapshotError(f"{where} {value!r} is not an ISO 8601 time; give one such as 2025-01-31T12:00:00Z.")


def iso(moment: datetime) -> str:
    """Format a time as the envelopes do (ISO 8601, UTC, ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Entity:
    """Hold one snapshot entity: its event and its mirror values in ``spec.fields`` order."""

    event: Event
    key: int
    values: tuple[Any, ...]


@dataclass
class Snapshot:
    """Hold the snapshot entities per reconciled queue, the time it was taken and input problems."""

    taken_at: datetime
    entities: dict[str, dict[int, Entity]]
    problems: list[str] = field(default_factory=list)


def read_snapshot(
    lines: Iterable[str], queues: Iterable[str] = QUEUES, taken_at: datetime | None = None
) -> Snapshot:
    """Parse snapshot JSON lines; keep the entities of ``queues``; raise SnapshotError on bad input."""
    entities: dict[str, dict[int, Entity]] = {queue: {} for queue in queues}
    problems: list[str] = []
    latest_taken: datetime | None = None
    latest_event: datetime | None = None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            envelope = json.loads(text)
        except json.JSONDecodeError as error:
            message = f"Line {number} is not valid JSON ({error.msg}); give auth's snapshot as JSON lines."
            raise SnapshotError(message) from None
        if not isinstance(envelope, dict):
            raise SnapshotError(f"Line {number} is not a JSON object; give auth's snapshot envelopes.")
        if "taken_at" in envelope:
            moment = parse_moment(envelope["taken_at"], f"Line {number} has taken_at")
            latest_taken = moment if latest_taken is None else max(latest_taken, moment)
        queue = envelope.get("queue")
        if not isinstance(queue, str) or queue not in entities:
            try:  # another service's line: only its time matters here
                moment = parse_moment(envelope.get("occurred_at"), "occurred_at")
            except SnapshotError:
                continue
            latest_event = moment if latest_event is None else max(latest_event, moment)
            continue
        spec = SPECS[queue]
        try:
            event = parse_envelope(envelope)
            key = payload_key(spec, event)
            values = payload_values(spec, event)
        except InvalidEvent as error:
            raise SnapshotError(f"Line {number}: {error}") from None
        if event.action == "delete":
            raise SnapshotError(
                f"Line {number} is a delete event; a snapshot lists current entities only "
                "(give the output of export_events --snapshot)."
            )
        latest_event = event.occurred_at if latest_event is None else max(latest_event, event.occurred_at)
        if key in entities[queue]:
            problems.append(
                f"Line {number} repeats {spec.payload_key} {key} of {queue}; the later line was used."
            )
        entities[queue][key] = Entity(event, key, tuple(values[name] for name in spec.fields))
    moment = taken_at or latest_taken or latest_event or timezone.now()
    return Snapshot(taken_at=moment, entities=entities, problems=problems)


@dataclass
class QueueCounts:
    """Count what reconciling did (or would do) to one queue's mirror."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    newer: int = 0

    @property
    def changed(self) -> bool:
        """Tell whether any row was created, updated or deleted."""
        return bool(self.created or self.updated or self.deleted)


@dataclass
class Report:
    """Describe one reconciliation: counts per queue and problems (one sentence each)."""

    taken_at: datetime
    queues: dict[str, QueueCounts]
    problems: list[str] = field(default_factory=list)
    service: str = SERVICE

    @property
    def changed(self) -> bool:
        """Tell whether any mirror row was (or would be) created, updated or deleted."""
        return any(counts.changed for counts in self.queues.values())

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON report."""
        return {
            "service": self.service,
            "changed": self.changed,
            "queues": {queue: asdict(counts) for queue, counts in self.queues.items()},
            "problems": list(self.problems),
            "taken_at": iso(self.taken_at),
        }


@dataclass(frozen=True)
class MirrorRow:
    """Hold a mirror row's values (in ``spec.fields`` order) and its synced_at."""

    values: tuple[Any, ...]
    synced_at: datetime


def mirror_rows(spec: MirrorSpec) -> dict[int, MirrorRow]:
    """Return every row of the spec's mirror by key, in one query."""
    rows = spec.model._default_manager.order_by().values_list(spec.key_field, *spec.fields, "synced_at")
    return {row[0]: MirrorRow(tuple(row[1:-1]), row[-1]) for row in rows.iterator(chunk_size=2000)}


@dataclass
class QueuePlan:
    """List what a queue's mirror needs: entities to write, keys to delete, rows left alone."""

    queue: str
    upserts: list[Entity] = field(default_factory=list)
    creates: int = 0
    deletes: list[int] = field(default_factory=list)
    unchanged: int = 0
    newer: int = 0
    email_clash: bool = False  # an entity's email is held by a row that stays

    @property
    def has_work(self) -> bool:
        """Tell whether anything would be written."""
        return bool(self.upserts or self.deletes)

    def counts(self) -> QueueCounts:
        """Return the counts writing the plan gives (an email clash changes no count)."""
        return QueueCounts(
            created=self.creates,
            updated=len(self.upserts) - self.creates,
            deleted=len(self.deletes),
            unchanged=self.unchanged,
            newer=self.newer,
        )


def plan_queue(queue: str, entities: dict[int, Entity], taken_at: datetime) -> QueuePlan:
    """Compare the snapshot entities of a queue with its mirror rows (reads only)."""
    rows = mirror_rows(SPECS[queue])
    plan = QueuePlan(queue)
    for key, entity in entities.items():
        row = rows.get(key)
        if row is not None and row.values == entity.values:
            plan.unchanged += 1
        elif row is not None and row.synced_at > entity.event.occurred_at:
            plan.newer += 1
        else:
            plan.upserts.append(entity)
            plan.creates += row is None
    for key, row in rows.items():
        if key in entities:
            continue
        if row.synced_at <= taken_at:
            plan.deletes.append(key)
        else:
            plan.newer += 1
    if plan.upserts:
        email = SPECS[queue].fields.index("email")
        deleted = set(plan.deletes)
        holders = {row.values[email]: key for key, row in rows.items() if key not in deleted}
        plan.email_clash = any(
            holders.get(entity.values[email], entity.key) != entity.key for entity in plan.upserts
        )
    return plan


def plan_all(snapshot: Snapshot) -> dict[str, QueuePlan]:
    """Plan every reconciled queue of the snapshot."""
    return {
        queue: plan_queue(queue, entities, snapshot.taken_at) for queue, entities in snapshot.entities.items()
    }


def shown(keys: list[int]) -> str:
    """List at most SHOWN_KEYS keys, then how many more."""
    text = ", ".join(str(key) for key in keys[:SHOWN_KEYS])
    return text + (f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else "")


def apply_plan(plan: QueuePlan, snapshot: Snapshot) -> tuple[QueueCounts, list[str]]:
    """Write a queue's plan through the event handlers; return the counts and problems."""
    spec = SPECS[plan.queue]
    counts = QueueCounts(unchanged=plan.unchanged, newer=plan.newer)
    gone = Event(uuid.uuid4(), plan.queue, "delete", snapshot.taken_at, {})
    for key in plan.deletes:
        outcome = apply_delete(spec, gone, key)
        if outcome == "deleted":
            counts.deleted += 1
        elif outcome == "stale":
            counts.newer += 1
    for entity in plan.upserts:
        outcome = apply_upsert(spec, entity.event, entity.key)
        if outcome == "created":
            counts.created += 1
        elif outcome == "updated":
            counts.updated += 1
        else:
            counts.newer += 1
    problems: list[str] = []
    if plan.upserts:
        rows = mirror_rows(spec)
        differ = [
            entity.key
            for entity in plan.upserts
            if (row := rows.get(entity.key)) is None
            or (row.values != entity.values and row.synced_at <= entity.event.occurred_at)
        ]
        if differ:
            problems.append(
                f"{len(differ)} {plan.queue} row(s) still differ from auth ({spec.key_field} "
                f"{shown(sorted(differ))}): a row synced later holds the same email, so they keep a "
                "placeholder email until auth sends them again."
            )
    return counts, problems


def apply_all(snapshot: Snapshot) -> Report:
    """Plan and write every queue (call inside a transaction)."""
    report = Report(taken_at=snapshot.taken_at, queues={}, problems=list(snapshot.problems))
    for queue, plan in plan_all(snapshot).items():
        counts, problems = apply_plan(plan, snapshot)
        report.queues[queue] = counts
        report.problems += problems
    return report


def reconcile(snapshot: Snapshot, *, check: bool = False) -> Report:
    """Make the mirrors equal the snapshot in one transaction; with ``check``, write nothing.

    A check reports the plan's counts from reads alone. Only when an entity's email
    is held by a row that stays (the handler then releases one of the two emails)
    does it run the writes and roll them back, to report the emails that would
    still differ.
    """
    if not check:
        with transaction.atomic():
            return apply_all(snapshot)
    plans = plan_all(snapshot)
    if not any(plan.email_clash for plan in plans.values()):
        queues = {queue: plan.counts() for queue, plan in plans.items()}
        return Report(taken_at=snapshot.taken_at, queues=queues, problems=list(snapshot.problems))
    with transaction.atomic():
        report = apply_all(snapshot)
        transaction.set_rollback(True)
    return report
