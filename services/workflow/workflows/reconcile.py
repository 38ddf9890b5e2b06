"""Reconcile the Role and RoleUser mirrors with auth's snapshot.

Input: auth's ``export_events --snapshot`` JSON lines (one ``update`` envelope per
current entity, possibly of every queue; lines of queues not reconciled here are
skipped). For each reconciled queue:

* a snapshot entity whose mirror row already holds its values is ``unchanged``;
* one whose row was written by an event later than the snapshot's is left alone
  (``newer``);
* any other is written by the code that applies an update event (``handlers``:
  same validation, same name-clash refusal, parked links replayed when their role
  arrives): ``created`` or ``updated``;
* a mirror row whose key is not in the snapshot is deleted by the delete-event
  code as if a delete event had occurred at ``taken_at``: only rows synced at or
  before ``taken_at`` go (``deleted``), rows synced later came from newer events
  and stay (``newer``). A role that workflow steps still use is kept, as the
  delete event keeps it, and reported as a problem; deleting a role deletes its
  links (counted as deleted links).

Order: parked link events that occurred at or before ``taken_at`` are superseded
(the snapshot holds their links' state): their DeferredEvent goes and their
ProcessedEvent becomes ``applied`` / ``superseded-by-snapshot``, so ``wait_events``
stops waiting for them (``deferred_superseded`` in the report). Then stale links
and roles are deleted (freeing role names), roles are written (a role refused
because another role holds its name is retried once the others are written) and
links last (a link whose role is missing is reported, never parked).

``taken_at`` is, first found: the caller's value (``--taken-at``), the latest
``taken_at`` of the input lines (auth writes the snapshot's start time on every
line), the latest ``occurred_at`` of the input lines, or now (empty input: every
row synced until now is deleted).

Snapshot events are not recorded in ProcessedEvent: their ids are fresh and
nobody waits for them, so duplicate detection and ``wait_events`` see only real
events. Writing runs in one transaction. ``check`` computes the same report
without writing: from reads alone when no role needs writing (so no name clash,
protected role or parked link can change the outcome), otherwise by writing in a
transaction that is rolled back.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from .handlers import (
    CONSUMED_QUEUES,
    LINK_QUEUE,
    ROLE_QUEUE,
    Event,
    EventConflict,
    InvalidEvent,
    apply_role,
    parse_event,
    write_link,
)
from .models import DeferredEvent, ProcessedEvent, Role, RoleUser

SERVICE = "workflow"
SHOWN_KEYS = 10
SUPERSEDED = "superseded-by-snapshot"

Key = int | tuple[int, int]  # role_id, or (role_id, user_id) of a link


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


def entity_key(event: Event) -> Key:
    """Return the mirror key of an event: role_id for a role, (role_id, user_id) for a link."""
    if event.queue == ROLE_QUEUE:
        role_id: int = event.payload["role_id"]
        return role_id
    return event.payload["role_id"], event.payload["user_id"]


def entity_values(event: Event) -> tuple[Any, ...]:
    """Return the mirrored values of an update event, in the order mirror_rows reads them."""
    payload = event.payload
    if event.queue == ROLE_QUEUE:
        return payload["name"], payload["system"]
    return payload["user_full_name"], payload["is_active"], payload["settings"]


@dataclass(frozen=True)
class Entity:
    """Hold one snapshot entity: its event, mirror key and mirrored values."""

    event: Event
    key: Key
    values: tuple[Any, ...]


@dataclass
class Snapshot:
    """Hold the snapshot entities per reconciled queue, the time it was taken and input problems."""

    taken_at: datetime
    entities: dict[str, dict[Key, Entity]]
    problems: list[str] = field(default_factory=list)


def read_snapshot(
    lines: Iterable[str], queues: Iterable[str] = CONSUMED_QUEUES, taken_at: datetime | None = None
) -> Snapshot:
    """Parse snapshot JSON lines; keep the entities of ``queues``; raise SnapshotError on bad input."""
    wanted = set(queues)
    entities: dict[str, dict[Key, Entity]] = {queue: {} for queue in CONSUMED_QUEUES if queue in wanted}
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
        try:
            event = parse_event(envelope)
        except InvalidEvent as error:
            raise SnapshotError(f"Line {number}: {error}") from None
        if event.is_delete:
            raise SnapshotError(
                f"Line {number} is a delete event; a snapshot lists current entities only "
                "(give the output of export_events --snapshot)."
            )
        latest_event = event.occurred_at if latest_event is None else max(latest_event, event.occurred_at)
        key = entity_key(event)
        if key in entities[queue]:
            problems.append(f"Line {number} repeats {describe_key(queue, key)}; the later line was used.")
        entities[queue][key] = Entity(event, key, entity_values(event))
    moment = taken_at or latest_taken or latest_event or timezone.now()
    return Snapshot(taken_at=moment, entities=entities, problems=problems)


def describe_key(queue: str, key: Key) -> str:
    """Name an entity in a sentence."""
    if isinstance(key, tuple):
        return f"the link of user {key[1]} to role {key[0]}"
    return f"role {key}"


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
    """Describe one reconciliation: counts per queue, superseded parked events and problems."""

    taken_at: datetime
    queues: dict[str, QueueCounts]
    deferred_superseded: int = 0
    problems: list[str] = field(default_factory=list)
    service: str = SERVICE

    @property
    def changed(self) -> bool:
        """Tell whether anything was (or would be) written."""
        return self.deferred_superseded > 0 or any(counts.changed for counts in self.queues.values())

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON report."""
        return {
            "service": self.service,
            "changed": self.changed,
            "queues": {queue: asdict(counts) for queue, counts in self.queues.items()},
            "problems": list(self.problems),
            "taken_at": iso(self.taken_at),
            "deferred_superseded": self.deferred_superseded,
        }


@dataclass(frozen=True)
class MirrorRow:
    """Hold a mirror row's values (as entity_values orders them) and its synced_at."""

    values: tuple[Any, ...]
    synced_at: datetime | None


def mirror_rows(queue: str) -> dict[Key, MirrorRow]:
    """Return every mirror row of a queue by key, in one query."""
    if queue == ROLE_QUEUE:
        roles = Role.objects.order_by().values_list("role_id", "name", "system", "synced_at")
        return {role_id: MirrorRow((name, system), synced) for role_id, name, system, synced in roles}
    fields = ("role_id", "user_id", "user_full_name", "is_active", "settings", "synced_at")
    links = RoleUser.objects.order_by().values_list(*fields)
    return {(row[0], row[1]): MirrorRow(tuple(row[2:5]), row[5]) for row in links.iterator(chunk_size=2000)}


def is_newer(synced_at: datetime | None, moment: datetime) -> bool:
    """Tell whether a row was synced after the given time (a row never synced is not)."""
    return synced_at is not None and synced_at > moment


@dataclass
class QueuePlan:
    """List what a queue's mirror needs: entities to write, keys to delete, rows left alone."""

    queue: str
    upserts: list[Entity] = field(default_factory=list)
    new: set[Key] = field(default_factory=set)  # keys of upserts with no mirror row yet
    deletes: list[Key] = field(default_factory=list)
    unchanged: int = 0
    newer: int = 0
    left: dict[Key, str] = field(default_factory=dict)  # "unchanged" or "newer" by key of the rows left

    @property
    def has_work(self) -> bool:
        """Tell whether anything would be written."""
        return bool(self.upserts or self.deletes)


def plan_queue(queue: str, entities: dict[Key, Entity], taken_at: datetime) -> QueuePlan:
    """Compare the snapshot entities of a queue with its mirror rows (reads only)."""
    rows = mirror_rows(queue)
    plan = QueuePlan(queue)
    for key, entity in entities.items():
        row = rows.get(key)
        if row is not None and row.values == entity.values:
            plan.unchanged += 1
            plan.left[key] = "unchanged"
        elif row is not None and is_newer(row.synced_at, entity.event.occurred_at):
            plan.newer += 1
            plan.left[key] = "newer"
        else:
            plan.upserts.append(entity)
            if row is None:
                plan.new.add(key)
    for key, row in rows.items():
        if key in entities:
            continue
        if is_newer(row.synced_at, taken_at):
            plan.newer += 1
            plan.left[key] = "newer"
        else:
            plan.deletes.append(key)
    return plan


@dataclass
class Plan:
    """Hold the plans of the reconciled queues and the parked events the snapshot supersedes."""

    queues: dict[str, QueuePlan]
    superseded: int


def superseded_events(snapshot: Snapshot) -> list[uuid.UUID]:
    """Return the ids of parked link events the snapshot supersedes (none unless links are reconciled)."""
    if LINK_QUEUE not in snapshot.entities:
        return []
    parked = DeferredEvent.objects.filter(queue=LINK_QUEUE, occurred_at__lte=snapshot.taken_at)
    return list(parked.values_list("event_id", flat=True))


def make_plan(snapshot: Snapshot) -> Plan:
    """Plan every reconciled queue of the snapshot (reads only)."""
    queues = {
        queue: plan_queue(queue, entities, snapshot.taken_at) for queue, entities in snapshot.entities.items()
    }
    return Plan(queues=queues, superseded=len(superseded_events(snapshot)))


def shown(values: list[int]) -> str:
    """List at most SHOWN_KEYS values, then how many more."""
    text = ", ".join(str(value) for value in values[:SHOWN_KEYS])
    return text + (f" and {len(values) - SHOWN_KEYS} more" if len(values) > SHOWN_KEYS else "")


def missing_role_problems(missing: dict[int, list[int]], snapshot: Snapshot) -> list[str]:
    """Return one sentence per role whose snapshot links could not be written (users by role)."""
    listed = snapshot.entities.get(ROLE_QUEUE, {})
    problems = []
    for role_id, users in sorted(missing.items()):
        why = "was not written" if role_id in listed else "is neither in the snapshot nor here"
        problems.append(
            f"{len(users)} link(s) of role {role_id} were not written (user_id {shown(sorted(users))}): "
            f"role {role_id} {why}."
        )
    return problems


def missing_roles(entities: list[Entity], present: set[int]) -> dict[int, list[int]]:
    """Return the user ids of the link entities whose role is not present, by role."""
    missing: dict[int, list[int]] = defaultdict(list)
    for entity in entities:
        assert isinstance(entity.key, tuple)
        role_id, user_id = entity.key
        if role_id not in present:
            missing[role_id].append(user_id)
    return dict(missing)


class Writer:
    """Write a plan through the event handlers, counting per queue and collecting problems."""

    def __init__(self, snapshot: Snapshot, plan: Plan) -> None:
        """Start from the plan's unchanged and newer counts."""
        self.snapshot = snapshot
        self.plan = plan
        self.report = Report(
            taken_at=snapshot.taken_at,
            queues={
                queue: QueueCounts(unchanged=queue_plan.unchanged, newer=queue_plan.newer)
                for queue, queue_plan in plan.queues.items()
            },
            problems=list(snapshot.problems),
        )

    def counts(self, queue: str) -> QueueCounts:
        """Return a queue's counts (links deleted with their role count even if links are not reconciled)."""
        return self.report.queues.setdefault(queue, QueueCounts())

    def deletion(self, queue: str, payload: dict[str, Any]) -> Event:
        """Return a delete event for an entity, as if it occurred when the snapshot was taken."""
        return Event(uuid.uuid4(), queue, "delete", self.snapshot.taken_at, payload, {})

    def write(self) -> Report:
        """Supersede parked events, delete stale rows, write roles, then links; return the report."""
        self.supersede()
        links = self.plan.queues.get(LINK_QUEUE)
        roles = self.plan.queues.get(ROLE_QUEUE)
        if links is not None:
            self.delete_links(links.deletes)
        if roles is not None:
            self.delete_roles(roles.deletes)
            self.upsert_roles(roles.upserts)
        if links is not None:
            self.upsert_links(links.upserts)
        return self.report

    def supersede(self) -> None:
        """Drop the parked events the snapshot covers; record them as applied by it."""
        ids = superseded_events(self.snapshot)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            ProcessedEvent.objects.filter(pk__in=chunk).update(outcome="applied", detail=SUPERSEDED)
            DeferredEvent.objects.filter(event_id__in=chunk).delete()
        self.report.deferred_superseded = len(ids)

    def delete_links(self, keys: list[Key]) -> None:
        """Delete stale links through the link delete code."""
        counts = self.counts(LINK_QUEUE)
        for key in keys:
            assert isinstance(key, tuple)
            detail = write_link(self.deletion(LINK_QUEUE, {"role_id": key[0], "user_id": key[1]}))
            if detail == "deleted":
                counts.deleted += 1
            elif detail == "skipped-stale":
                counts.newer += 1

    def delete_roles(self, keys: list[Key]) -> None:
        """Delete stale roles through the role delete code; a role steps still use is kept and reported."""
        counts = self.counts(ROLE_QUEUE)
        for role_id in keys:
            links = list(RoleUser.objects.filter(role_id=role_id).values_list("role_id", "user_id"))
            _, detail = apply_role(self.deletion(ROLE_QUEUE, {"role_id": role_id}))
            if detail == "deleted":
                counts.deleted += 1
                self.cascaded(links)
            elif detail == "skipped-stale":
                counts.newer += 1
            elif detail == "kept-protected":
                role = Role.objects.get(pk=role_id)
                steps = role.steps.count()
                self.report.problems.append(
                    f"Role {role_id} ({role.name}) is gone from auth but {steps} workflow step(s) still "
                    "use it, so it was kept; point those steps at another role, then reconcile again."
                )

    def cascaded(self, keys: list[tuple[int, int]]) -> None:
        """Count links deleted with their role as deleted, no longer as left alone."""
        counts = self.counts(LINK_QUEUE)
        plan = self.plan.queues.get(LINK_QUEUE)
        for key in keys:
            counts.deleted += 1
            left = plan.left.get(key) if plan is not None else None
            if left == "unchanged":
                counts.unchanged -= 1
            elif left == "newer":
                counts.newer -= 1

    def upsert_roles(self, entities: list[Entity]) -> None:
        """Write roles through the update code; retry those refused for a name another role held."""
        counts = self.counts(ROLE_QUEUE)
        pending = entities
        while pending:
            refused: list[Entity] = []
            for entity in pending:
                try:
                    _, detail = apply_role(entity.event)
                except EventConflict:
                    refused.append(entity)
                    continue
                if detail == "created":
                    counts.created += 1
                elif detail == "updated":
                    counts.updated += 1
                else:
                    counts.newer += 1
            if len(refused) == len(pending):
                break
            pending = refused
        else:
            return
        for entity in pending:
            name = entity.event.payload["name"]
            holder = Role.objects.filter(name=name).exclude(pk=entity.key).first()
            used = " and workflow steps still use it" if holder is not None and holder.steps.exists() else ""
            self.report.problems.append(
                f"Role {entity.key} was not written: its name {name!r} is held here by role "
                f"{holder.pk if holder else '?'}{used}; free the name in auth or here, then reconcile again."
            )

    def upsert_links(self, entities: list[Entity]) -> None:
        """Write links through the update code; report links whose role is missing (never park them)."""
        counts = self.counts(LINK_QUEUE)
        missing = missing_roles(entities, set(Role.objects.values_list("role_id", flat=True)))
        for entity in entities:
            assert isinstance(entity.key, tuple)
            if entity.key[0] in missing:
                continue
            detail = write_link(entity.event)
            if detail == "created":
                counts.created += 1
            elif detail == "updated":
                counts.updated += 1
            else:
                counts.newer += 1
        self.report.problems += missing_role_problems(missing, self.snapshot)


def predict(snapshot: Snapshot, plan: Plan) -> Report | None:
    """Return the report writing the plan would give, when reads tell it exactly, else None.

    Reads tell it when no role needs writing: then no name clash, protected role or
    replayed parked link can change the outcome, and a link is written exactly when
    its role is here.
    """
    roles = plan.queues.get(ROLE_QUEUE)
    if roles is not None and roles.has_work:
        return None
    writer = Writer(snapshot, plan)
    writer.report.deferred_superseded = plan.superseded
    links = plan.queues.get(LINK_QUEUE)
    if links is not None:
        missing = missing_roles(links.upserts, set(Role.objects.values_list("role_id", flat=True)))
        written = [e for e in links.upserts if isinstance(e.key, tuple) and e.key[0] not in missing]
        counts = writer.counts(LINK_QUEUE)
        counts.created = sum(1 for entity in written if entity.key in links.new)
        counts.updated = len(written) - counts.created
        counts.deleted = len(links.deletes)
        writer.report.problems += missing_role_problems(missing, snapshot)
    return writer.report


def reconcile(snapshot: Snapshot, *, check: bool = False) -> Report:
    """Make the mirrors equal the snapshot in one transaction; with ``check``, write nothing."""
    if not check:
        with transaction.atomic():
            return Writer(snapshot, make_plan(snapshot)).write()
    report = predict(snapshot, make_plan(snapshot))
    if report is not None:
        return report
    with transaction.atomic():
        report = Writer(snapshot, make_plan(snapshot)).write()
        transaction.set_rollback(True)
    return report
