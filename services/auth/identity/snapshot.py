"""Describe the current synced state as events, to rebuild a consumer from scratch.

A snapshot holds one `update` event per current synced entity (synced roles,
links of synced roles, users holding an HDTS role, employees) with a fresh id
and the entity's current payload, built by the outbox's own payload builders.
Its time is the time of the entity's latest outbox event, so a consumer's
"older than what I have" check accepts it as current and a pending event of
the same time is still applied after it. An entity whose latest event does not
match its current state (a change the outbox missed) gets the snapshot's time.
The outbox is only read.

Every envelope also carries `taken_at`, the time the snapshot started reading
(the same on every line). A consumer that reconciles its mirror against the
snapshot deletes only the rows synced at or before it that the snapshot lacks:
a row synced later came from an event newer than the snapshot. Consumers that
apply the lines as plain events ignore the extra key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db.models import Max, Model
from django.utils import timezone

from . import outbox
from .models import Action, Employee, OutboxEvent, Queue, Role, User, UserSystemRole

BUILDERS = {
    Queue.ROLE: outbox.role_payloads,
    Queue.USER_SYSTEM_ROLE: outbox.link_payloads,
    Queue.HDTS_USER: outbox.hdts_user_payloads,
    Queue.EMPLOYEE: outbox.employee_payloads,
}
MODELS: dict[str, type[Model]] = {
    Queue.ROLE: Role,
    Queue.USER_SYSTEM_ROLE: UserSystemRole,
    Queue.HDTS_USER: User,
    Queue.EMPLOYEE: Employee,
}


def iso(moment: datetime) -> str:
    """Format a time as the envelopes do (ISO 8601, UTC, `Z`)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def latest_events(queue: str, ids: Sequence[int]) -> dict[int, tuple[str, Any, datetime]]:
    """Return the action, payload and time of the latest event per entity id."""
    latest = (
        OutboxEvent.objects.filter(queue=queue, entity_id__in=ids)
        .values("entity_id")
        .annotate(last=Max("seq"))
        .values("last")
    )
    fields = ("entity_id", "action", "payload", "created_at")
    rows = OutboxEvent.objects.filter(seq__in=latest).values_list(*fields)
    return {entity_id: (action, payload, created_at) for entity_id, action, payload, created_at in rows}


def snapshot_events(queues: Iterable[str] = outbox.QUEUES) -> Iterator[dict[str, Any]]:
    """Yield one `update` envelope per current synced entity, queue by queue, in id order.

    Each envelope holds `taken_at`: the time the snapshot started, the same on every line.
    """
    wanted = set(queues)
    now = timezone.now()
    taken_at = iso(now)
    for queue in outbox.QUEUES:
        if queue not in wanted:
            continue
        ids = MODELS[queue]._default_manager.order_by("pk").values_list("pk", flat=True).iterator()
        for batch in outbox.chunked(ids):
            current = BUILDERS[Queue(queue)](batch)
            recorded = latest_events(queue, list(current))
            for entity_id in batch:
                payload = current.get(entity_id)
                if payload is None:
                    continue
                action, before, created_at = recorded.get(entity_id, (Action.DELETE, None, now))
                in_step = action != Action.DELETE and before == payload
                yield {
                    "id": str(uuid.uuid4()),
                    "queue": queue,
                    "action": Action.UPDATE.value,
                    "occurred_at": iso(created_at if in_step else now),
                    "payload": payload,
                    "taken_at": taken_at,
                }
