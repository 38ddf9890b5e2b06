"""Consume the auth sync events: validate, apply once, park out-of-order ones."""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from django.db import IntegrityError, transaction

from .models import DeferredEvent, ProcessedEvent, Role, RoleUser

ROLE_QUEUE = "tts.role.sync"
LINK_QUEUE = "tts.user_system_role.sync"
CONSUMED_QUEUES = (ROLE_QUEUE, LINK_QUEUE)
ACTIONS = ("create", "update", "delete")


class EventError(Exception):
    """Signal an event that cannot be applied (base of the sync error family)."""


class InvalidEvent(EventError, ValueError):
    """Signal a malformed event envelope or payload."""


class EventConflict(EventError):
    """Signal an event that contradicts the stored data (e.g. a role name in use)."""


@dataclass(frozen=True)
class Event:
    """Hold one validated event envelope."""

    id: uuid.UUID
    queue: str
    action: str
    occurred_at: datetime
    payload: dict[str, Any]
    envelope: dict[str, Any]

    @property
    def is_delete(self) -> bool:
        """Tell whether the event removes its entity."""
        return self.action == "delete"


def _require(mapping: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return mapping[key] if present and of the given type, else raise InvalidEvent."""
    if key not in mapping:
        raise InvalidEvent(f"{where} is missing the field {key!r}.")
    value = mapping[key]
    # bool is an int subclass: never accept it where an int is expected.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidEvent(f"{where} field {key!r} has the wrong type ({type(value).__name__}).")
    return value


def _positive_int(mapping: dict[str, Any], key: str, where: str) -> int:
    """Return a positive integer field or raise InvalidEvent."""
    value: int = _require(mapping, key, int, where)
    if value <= 0:
        raise InvalidEvent(f"{where} field {key!r} must be a positive integer, got {value}.")
    return value


def _text(mapping: dict[str, Any], key: str, where: str, max_length: int) -> str:
    """Return a string field no longer than max_length or raise InvalidEvent."""
    value: str = _require(mapping, key, str, where)
    if len(value) > max_length:
        raise InvalidEvent(f"{where} field {key!r} is longer than {max_length} characters.")
    return value


def _parse_time(value: str, where: str) -> datetime:
    """Parse an ISO 8601 time; a time without zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{where} field 'occurred_at' is not an ISO 8601 time: {value!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _validate_payload(queue: str, action: str, payload: dict[str, Any], where: str) -> None:
    """Check the payload fields a consumed queue needs for the given action."""
    if queue == ROLE_QUEUE:
        _positive_int(payload, "role_id", where)
        if action != "delete":
            name = _text(payload, "name", where, 100)
            if not name.strip():
                raise InvalidEvent(f"{where} field 'name' is empty.")
            _text(payload, "system", where, 20)
    elif queue == LINK_QUEUE:
        _positive_int(payload, "role_id", where)
        _positive_int(payload, "user_id", where)
        if action != "delete":
            _text(payload, "user_full_name", where, 300)
            _require(payload, "is_active", bool, where)
            _require(payload, "settings", dict, where)


def parse_event(envelope: object) -> Event:
    """Validate an event envelope and return it as an Event (raise InvalidEvent)."""
    if not isinstance(envelope, dict):
        raise InvalidEvent(f"An event must be a JSON object, got {type(envelope).__name__}.")
    raw_id = _require(envelope, "id", str, "The event")
    try:
        event_id = uuid.UUID(raw_id)
    except ValueError:
        raise InvalidEvent(f"The event id {raw_id!r} is not a UUID.") from None
    where = f"Event {event_id}"
    queue = _require(envelope, "queue", str, where)
    if not queue:
        raise InvalidEvent(f"{where} has an empty queue.")
    action = _require(envelope, "action", str, where)
    if action not in ACTIONS:
        raise InvalidEvent(f"{where} has the unknown action {action!r} (expected one of {ACTIONS}).")
    occurred_at = _parse_time(_require(envelope, "occurred_at", str, where), where)
    payload = _require(envelope, "payload", dict, where)
    _validate_payload(queue, action, payload, f"{where} payload")
    return Event(
        id=event_id,
        queue=queue,
        action=action,
        occurred_at=occurred_at,
        payload=payload,
        envelope=envelope,
    )


Outcome = Literal["applied", "duplicate", "deferred", "ignored"]

logger = logging.getLogger(__name__)


def _is_stale(event: Event, synced_at: datetime | None) -> bool:
    """Tell whether a newer event was already applied to the entity."""
    return synced_at is not None and event.occurred_at < synced_at


def apply_role(event: Event) -> tuple[Outcome, str]:
    """Upsert or delete one Role; on upsert, replay the events parked for it.

    Reconcile calls it too, with snapshot entities and deletions of roles auth lacks.
    """
    role_id: int = event.payload["role_id"]
    role = Role.objects.filter(pk=role_id).first()
    if role is not None and _is_stale(event, role.synced_at):
        return "applied", "skipped-stale"
    if event.is_delete:
        if role is None:
            return "applied", "already-absent"
        if role.steps.exists():
            logger.warning(
                "Kept role %s (%s): workflow steps still use it; event %s.",
                role_id,
                role.name,
                event.id,
            )
            return "applied", "kept-protected"
        role.delete()
        return "applied", "deleted"
    name: str = event.payload["name"]
    if Role.objects.filter(name=name).exclude(pk=role_id).exists():
        raise EventConflict(
            f"Event {event.id} gives role {role_id} the name {name!r} already used by another "
            "role: delete or rename that role in auth and sync again."
        )
    fields = {"name": name, "system": event.payload["system"], "synced_at": event.occurred_at}
    if role is None:
        Role.objects.create(role_id=role_id, **fields)
        detail = "created"
    else:
        for key, value in fields.items():
            setattr(role, key, value)
        role.save(update_fields=list(fields))
        detail = "updated"
    _replay_deferred(role_id)
    return "applied", detail


def _must_wait(event: Event) -> bool:
    """Tell whether a link event must be parked because its role is not here yet."""
    role_id: int = event.payload["role_id"]
    if Role.objects.filter(pk=role_id).exists():
        return False
    if not event.is_delete:
        return True
    # A delete only matters if an earlier event for the same link is parked too.
    return DeferredEvent.objects.filter(
        waiting_for=role_id, envelope__payload__user_id=event.payload["user_id"]
    ).exists()


def _apply_link(event: Event) -> tuple[Outcome, str]:
    """Upsert or delete one RoleUser, parking the event if its role is missing."""
    if _must_wait(event):
        DeferredEvent.objects.create(
            event_id=event.id,
            queue=event.queue,
            waiting_for=event.payload["role_id"],
            occurred_at=event.occurred_at,
            envelope=event.envelope,
        )
        return "deferred", "waiting-for-role"
    return "applied", write_link(event)


def write_link(event: Event) -> str:
    """Write one link event whose role exists (or a no-op delete); return what it did.

    Reconcile calls it too, with snapshot entities and deletions of links auth lacks.
    """
    role_id: int = event.payload["role_id"]
    user_id: int = event.payload["user_id"]
    link = RoleUser.objects.filter(role_id=role_id, user_id=user_id).first()
    if link is not None and _is_stale(event, link.synced_at):
        return "skipped-stale"
    if event.is_delete:
        if link is None:
            return "already-absent"
        link.delete()
        return "deleted"
    fields = {
        "user_full_name": event.payload["user_full_name"],
        "is_active": event.payload["is_active"],
        "settings": event.payload["settings"],
        "synced_at": event.occurred_at,
    }
    if link is None:
        RoleUser.objects.create(role_id=role_id, user_id=user_id, **fields)
        return "created"
    for key, value in fields.items():
        setattr(link, key, value)
    link.save(update_fields=list(fields))
    return "updated"


def _replay_deferred(role_id: int) -> None:
    """Apply the events parked for a role, oldest first, then forget them."""
    for parked in DeferredEvent.objects.filter(waiting_for=role_id).order_by("occurred_at", "id"):
        event = parse_event(parked.envelope)
        detail = write_link(event)
        ProcessedEvent.objects.filter(pk=event.id).update(outcome="applied", detail=detail)
        parked.delete()
        logger.info("Applied parked event %s for role %s: %s.", event.id, role_id, detail)


def handle_event(envelope: dict[str, Any]) -> Outcome:
    """Apply one sync event exactly once and return its outcome.

    Raise InvalidEvent for a malformed envelope and EventConflict when the event
    contradicts stored data; in both cases nothing is written.
    """
    event = parse_event(envelope)
    if event.queue not in CONSUMED_QUEUES:
        return "ignored"
    with transaction.atomic():
        if ProcessedEvent.objects.filter(pk=event.id).exists():
            return "duplicate"
        try:
            with transaction.atomic():
                record = ProcessedEvent.objects.create(
                    event_id=event.id, queue=event.queue, action=event.action, outcome="pending"
                )
        except IntegrityError:  # a concurrent consumer claimed the same event
            return "duplicate"
        if event.queue == ROLE_QUEUE:
            outcome, detail = apply_role(event)
        else:
            outcome, detail = _apply_link(event)
        record.outcome = outcome
        record.detail = detail
        record.save(update_fields=["outcome", "detail"])
    return outcome
