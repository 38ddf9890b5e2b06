"""Record sync events in the outbox, in the transaction of the change.

One rule covers every path (signals of ORM saves/deletes, the seeders' bulk
writes): after a change, compute the current payload of each affected entity
and compare it with the last event recorded for that entity. A difference
records exactly one event (create, update or delete); no difference records
nothing. So a change is never recorded twice and a no-op records nothing.

Publishing is a separate step: `pending_events()` reads undelivered events in
order and `mark_delivered()` marks them once the broker has them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db.models import Count, Max
from django.utils import timezone

from .models import Action, Employee, OutboxEvent, Queue, Role, User, UserSystemRole

QUEUES: tuple[str, ...] = tuple(Queue.values)
HDTS = "hdts"
TTS = "tts"
SYNCED_HDTS_ROLE = "Ticket Coordinator"
CHUNK = 900  # keeps IN (...) lists under SQLite's smallest variable limit

Payload = dict[str, Any]
T = TypeVar("T")


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Yield lists of at most `size` items."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def is_synced_role(system_slug: str, role_name: str) -> bool:
    """Tell whether a role is synced: every tts role and the hdts Ticket Coordinator."""
    return system_slug == TTS or (system_slug == HDTS and role_name == SYNCED_HDTS_ROLE)


@dataclass
class Keys:
    """Hold the ids of entities whose synced state may have changed, per queue."""

    roles: set[int] = field(default_factory=set)
    links: set[int] = field(default_factory=set)
    users: set[int] = field(default_factory=set)
    employees: set[int] = field(default_factory=set)

    def update(self, other: Keys) -> None:
        """Add the ids of another key set."""
        self.roles |= other.roles
        self.links |= other.links
        self.users |= other.users
        self.employees |= other.employees

    def __bool__(self) -> bool:
        """Tell whether any id is held."""
        return bool(self.roles or self.links or self.users or self.employees)


def affected(
    *,
    systems: Iterable[int] = (),
    roles: Iterable[int] = (),
    users: Iterable[int] = (),
    links: Iterable[int] = (),
    employees: Iterable[int] = (),
) -> Keys:
    """Expand changed rows into every synced entity whose payload depends on them.

    A system affects its roles and links; a role affects its links and the users
    holding it (their hdts payload names the role); a user affects its links (their
    payload names the user); a link affects its user. Call it before a delete to
    catch rows the delete cascades to.
    """
    system_ids, role_ids, user_ids = set(systems), set(roles), set(users)
    link_ids, employee_ids = set(links), set(employees)
    for batch in chunked(system_ids):
        role_ids.update(Role.objects.filter(system_id__in=batch).values_list("id", flat=True))
        link_ids.update(UserSystemRole.objects.filter(system_id__in=batch).values_list("id", flat=True))
    for batch in chunked(role_ids):
        for link_id, user_id in UserSystemRole.objects.filter(role_id__in=batch).values_list("id", "user_id"):
            link_ids.add(link_id)
            user_ids.add(user_id)
    for batch in chunked(link_ids):
        user_ids.update(UserSystemRole.objects.filter(id__in=batch).values_list("user_id", flat=True))
    for batch in chunked(set(user_ids)):
        link_ids.update(UserSystemRole.objects.filter(user_id__in=batch).values_list("id", flat=True))
    return Keys(roles=role_ids, links=link_ids, users=user_ids, employees=employee_ids)


def role_payloads(ids: Sequence[int]) -> dict[int, Payload]:
    """Return the payloads of the synced roles among `ids`."""
    payloads: dict[int, Payload] = {}
    for role in Role.objects.filter(id__in=ids).select_related("system"):
        if is_synced_role(role.system.slug, role.name):
            payloads[role.id] = {
                "role_id": role.id,
                "system": role.system.slug,
                "name": role.name,
                "description": role.description,
            }
    return payloads


def link_payloads(ids: Sequence[int]) -> dict[int, Payload]:
    """Return the payloads of the links among `ids` whose role is synced."""
    payloads: dict[int, Payload] = {}
    rows = UserSystemRole.objects.filter(id__in=ids).select_related("user", "role__system")
    for link in rows:
        system = link.role.system.slug
        if is_synced_role(system, link.role.name):
            payloads[link.id] = {
                "id": link.id,
                "user_id": link.user_id,
                "role_id": link.role_id,
                "system": system,
                "user_full_name": link.user.get_full_name(),
                "email": link.user.email,
                "is_active": link.is_active,
                "settings": link.settings,
            }
    return payloads


def hdts_user_payloads(ids: Sequence[int]) -> dict[int, Payload]:
    """Return the payloads of the users among `ids` holding an active HDTS role."""
    hdts_role: dict[int, str] = {}
    links = UserSystemRole.objects.filter(user_id__in=ids, is_active=True, role__system__slug=HDTS)
    for user_id, role_name in links.values_list("user_id", "role__name"):
        if user_id not in hdts_role or role_name < hdts_role[user_id]:
            hdts_role[user_id] = role_name
    payloads: dict[int, Payload] = {}
    for user in User.objects.filter(id__in=list(hdts_role)):
        payloads[user.id] = {
            "user_id": user.id,
            "email": user.email,
            "username": user.username,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "company_id": user.company_id,
            "department": user.department,
            "role": hdts_role[user.id],
            "status": user.status,
        }
    return payloads


def employee_payloads(ids: Sequence[int]) -> dict[int, Payload]:
    """Return the payloads of the employees among `ids`."""
    return {
        employee.id: {
            "employee_id": employee.id,
            "email": employee.email,
            "username": employee.username,
            "first_name": employee.first_name,
            "last_name": employee.last_name,
            "company_id": employee.company_id,
            "department": employee.department,
            "status": employee.status,
        }
        for employee in Employee.objects.filter(id__in=ids)
    }


def last_recorded(queue: str, ids: Sequence[int]) -> dict[int, tuple[str, Payload]]:
    """Return the action and payload of the last event recorded per entity id."""
    latest = (
        OutboxEvent.objects.filter(queue=queue, entity_id__in=ids)
        .values("entity_id")
        .annotate(last=Max("seq"))
        .values("last")
    )
    rows = OutboxEvent.objects.filter(seq__in=latest).values_list("entity_id", "action", "payload")
    return {entity_id: (action, payload) for entity_id, action, payload in rows}


def diff(queue: str, ids: Iterable[int]) -> Iterator[tuple[str, int, Payload]]:
    """Yield (action, entity id, payload) for entities whose state differs from the outbox."""
    builders = {
        Queue.ROLE: role_payloads,
        Queue.USER_SYSTEM_ROLE: link_payloads,
        Queue.HDTS_USER: hdts_user_payloads,
        Queue.EMPLOYEE: employee_payloads,
    }
    build = builders[Queue(queue)]
    for batch in chunked(sorted(set(ids))):
        current = build(batch)
        recorded = last_recorded(queue, batch)
        for entity_id in batch:
            now = current.get(entity_id)
            action, before = recorded.get(entity_id, (Action.DELETE, None))
            known = action != Action.DELETE
            if now is None and known:
                yield Action.DELETE, entity_id, before or {}
            elif now is not None and not known:
                yield Action.CREATE, entity_id, now
            elif now is not None and now != before:
                yield Action.UPDATE, entity_id, now


def queue_keys(keys: Keys) -> list[tuple[str, set[int]]]:
    """Pair each queue with its ids, roles first so consumers rarely wait."""
    return [
        (Queue.ROLE, keys.roles),
        (Queue.USER_SYSTEM_ROLE, keys.links),
        (Queue.HDTS_USER, keys.users),
        (Queue.EMPLOYEE, keys.employees),
    ]


def record_changes(keys: Keys, batch_size: int = 1000) -> int:
    """Record one event per entity of `keys` whose synced state changed; return the count.

    Call it inside the transaction of the change.
    """
    now = timezone.now()
    recorded = 0
    for queue, ids in queue_keys(keys):
        events = (
            OutboxEvent(
                event_id=uuid.uuid4(),
                queue=queue,
                action=action,
                entity_id=entity_id,
                payload=payload,
                created_at=now,
            )
            for action, entity_id, payload in diff(queue, ids)
        )
        for batch in chunked(events, batch_size):
            OutboxEvent.objects.bulk_create(batch, batch_size=batch_size)
            recorded += len(batch)
    return recorded


def unrecorded_changes() -> int:
    """Count synced entities whose current state the outbox does not reflect."""
    models = {
        Queue.ROLE: Role,
        Queue.USER_SYSTEM_ROLE: UserSystemRole,
        Queue.HDTS_USER: User,
        Queue.EMPLOYEE: Employee,
    }
    total = 0
    for queue, model in models.items():
        ids = set(model.objects.values_list("id", flat=True))
        ids.update(OutboxEvent.objects.filter(queue=queue).values_list("entity_id", flat=True))
        total += sum(1 for _ in diff(queue, ids))
    return total


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """Build the wire envelope of an event."""
    occurred = event.created_at.astimezone(UTC)
    return {
        "id": str(event.event_id),
        "queue": event.queue,
        "action": event.action,
        "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
        "payload": event.payload,
    }


def pending_events(limit: int | None = None) -> Iterator[OutboxEvent]:
    """Yield undelivered events in recording order (at most `limit`)."""
    queryset = OutboxEvent.objects.filter(delivered_at__isnull=True).order_by("seq")
    if limit is not None:
        queryset = queryset[:limit]
    return queryset.iterator(chunk_size=2000)


def pending_counts() -> dict[str, int]:
    """Count undelivered events per queue, with every queue as a key."""
    counts = dict.fromkeys(QUEUES, 0)
    rows = (
        OutboxEvent.objects.filter(delivered_at__isnull=True)
        .order_by()
        .values("queue")
        .annotate(n=Count("seq"))
        .values_list("queue", "n")
    )
    for queue, n in rows:
        counts[queue] = n
    return counts


@dataclass(frozen=True)
class MarkResult:
    """Report how many ids were marked delivered and how many were unknown."""

    marked: int
    unknown: int


def mark_delivered(ids: Iterable[str | uuid.UUID], at: datetime | None = None) -> MarkResult:
    """Mark the pending events with these ids delivered; ids already delivered count as neither."""
    wanted: set[uuid.UUID] = set()
    unknown = 0
    for raw in ids:
        try:
            wanted.add(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            unknown += 1
    when = at or timezone.now()
    marked = 0
    for batch in chunked(sorted(wanted, key=str)):
        known = set(OutboxEvent.objects.filter(event_id__in=batch).values_list("event_id", flat=True))
        unknown += len(batch) - len(known)
        marked += OutboxEvent.objects.filter(event_id__in=batch, delivered_at__isnull=True).update(
            delivered_at=when
        )
    return MarkResult(marked=marked, unknown=unknown)
