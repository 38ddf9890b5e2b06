"""Apply sync events from auth to the HDTSUser and ExternalEmployee mirrors.

Every event runs in its own savepoint and is recorded in ProcessedEvent, so a
redelivered event changes nothing. An event older than the row it targets
(``occurred_at`` before the row's ``synced_at``) changes nothing either.

Email clashes: when another mirror row already holds the incoming email, the
row whose event is newer keeps it (ties go to the incoming event) and the other
row gets a placeholder email ``<key field>-<id>@released.invalid`` until its own
next event arrives. A warning is logged; nothing crashes.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from .mirror_sql import MirrorStatements, mirror_statements, processed_statements
from .models import ExternalEmployee, HDTSUser, ProcessedEvent

logger = logging.getLogger(__name__)

APPLIED = "applied"
DUPLICATE = "duplicate"
IGNORED = "ignored"
ACTIONS = ("create", "update", "delete")


class InvalidEvent(ValueError):
    """Report an envelope or payload that does not follow the contract."""


@dataclass(frozen=True)
class MirrorSpec:
    """Describe how one queue maps onto one mirror model."""

    model: type[HDTSUser] | type[ExternalEmployee]
    key_field: str
    payload_key: str
    fields: tuple[str, ...]
    nullable: frozenset[str]


SPECS: dict[str, MirrorSpec] = {
    "hdts.user.sync": MirrorSpec(
        model=HDTSUser,
        key_field="hdts_user_id",
        payload_key="user_id",
        fields=(
            "email",
            "username",
            "first_name",
            "last_name",
            "company_id",
            "department",
            "role",
            "status",
        ),
        nullable=frozenset({"company_id"}),
    ),
    "hdts.employee.sync": MirrorSpec(
        model=ExternalEmployee,
        key_field="external_employee_id",
        payload_key="employee_id",
        fields=("email", "username", "first_name", "last_name", "company_id", "department", "status"),
        nullable=frozenset({"company_id"}),
    ),
}
QUEUES = tuple(SPECS)


@dataclass(frozen=True)
class Event:
    """Hold a validated event envelope."""

    id: uuid.UUID
    queue: str
    action: str
    occurred_at: datetime
    payload: dict[str, Any]


def parse_envelope(envelope: object) -> Event:
    """Validate the envelope fields and return an Event; raise InvalidEvent otherwise."""
    if not isinstance(envelope, dict):
        raise InvalidEvent("The event is not a JSON object; send one envelope object per event.")
    missing = [name for name in ("id", "queue", "action", "occurred_at", "payload") if name not in envelope]
    if missing:
        raise InvalidEvent(
            f"The event lacks {', '.join(missing)}; "
            "every envelope needs id, queue, action, occurred_at and payload."
        )
    try:
        event_id = uuid.UUID(str(envelope["id"]))
    except ValueError:
        message = f"The event id {envelope['id']!r} is not a UUID; give each event a uuid4 id."
        raise InvalidEvent(message) from None
    queue, action, payload = envelope["queue"], envelope["action"], envelope["payload"]
    if not isinstance(queue, str) or not queue:
        raise InvalidEvent(f"Event {event_id} has no queue; set queue to a name such as hdts.user.sync.")
    if action not in ACTIONS:
        raise InvalidEvent(f"Event {event_id} has action {action!r}; use create, update or delete.")
    if not isinstance(payload, dict):
        raise InvalidEvent(f"Event {event_id} has a payload that is not an object; send the fields as one.")
    return Event(event_id, queue, action, parse_time(event_id, envelope["occurred_at"]), payload)


def parse_time(event_id: uuid.UUID, value: object) -> datetime:
    """Parse an ISO 8601 time (naive times are taken as UTC)."""
    if not isinstance(value, str):
        raise InvalidEvent(f"Event {event_id} has occurred_at {value!r}; give an ISO 8601 UTC time.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        message = f"Event {event_id} has occurred_at {value!r}; give an ISO 8601 UTC time."
        raise InvalidEvent(message) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def payload_key(spec: MirrorSpec, event: Event) -> int:
    """Return the mirrored entity id from the payload."""
    key = event.payload.get(spec.payload_key)
    if isinstance(key, bool) or not isinstance(key, int) or key < 0:
        raise InvalidEvent(
            f"Event {event.id} on {event.queue} has {spec.payload_key}={key!r}; "
            "give a non-negative integer id."
        )
    return key


def payload_values(spec: MirrorSpec, event: Event) -> dict[str, Any]:
    """Return the mirror fields from the payload, checked against the model columns."""
    values: dict[str, Any] = {}
    for name in spec.fields:
        if name not in event.payload:
            raise InvalidEvent(f"Event {event.id} on {event.queue} lacks the field {name}; send every field.")
        value = event.payload[name]
        if value is None and name in spec.nullable:
            values[name] = None
            continue
        if not isinstance(value, str):
            raise InvalidEvent(f"Event {event.id} on {event.queue} has {name}={value!r}; send a string.")
        max_length = spec.model._meta.get_field(name).max_length
        if max_length is not None and len(value) > max_length:
            raise InvalidEvent(
                f"Event {event.id} on {event.queue} has a {name} longer than {max_length} characters; "
                "shorten it."
            )
        values[name] = value
    if not values["email"]:
        raise InvalidEvent(f"Event {event.id} on {event.queue} has an empty email; send the email.")
    return values


def released_email(spec: MirrorSpec, key: int) -> str:
    """Return the placeholder email of a row that lost its email to a newer event."""
    return f"{spec.key_field.replace('_', '-')}-{key}@released.invalid"


def statements(spec: MirrorSpec) -> MirrorStatements:
    """Return the SQL statements of the spec's mirror model."""
    return mirror_statements(spec.model, spec.key_field, spec.fields, connection.vendor)


def apply_upsert(spec: MirrorSpec, event: Event, key: int) -> str:
    """Create or update the mirror row; return the recorded outcome."""
    values = payload_values(spec, event)
    sql = statements(spec)
    rows = sql.find(key, values["email"], event.occurred_at)
    row = next((found for found in rows if found.key == key), None)
    if row is not None and row.newer:
        return "stale"
    clash = next((found for found in rows if found.key != key), None)
    if clash is not None:
        logger.warning(
            "Event %s on %s: email %s is held by %s=%s; the newer event keeps it.",
            event.id,
            event.queue,
            values["email"],
            spec.key_field,
            clash.key,
        )
        if clash.newer:
            values["email"] = released_email(spec, key)
        else:
            sql.set_email(clash.pk, released_email(spec, clash.key))
    values["synced_at"] = event.occurred_at
    if row is None:
        sql.create(key, values)
        return "created"
    sql.update(row.pk, values)
    return "updated"


def apply_delete(spec: MirrorSpec, event: Event, key: int) -> str:
    """Delete the mirror row unless it is newer than the event; return the outcome."""
    sql = statements(spec)
    row = next(iter(sql.find(key, None, event.occurred_at)), None)
    if row is None:
        return "missing"
    if row.newer:
        return "stale"
    sql.delete(row.pk)
    return "deleted"


def handle_event(envelope: dict[str, Any]) -> str:
    """Apply one sync event; return "applied", "duplicate" or "ignored"."""
    event = parse_envelope(envelope)
    spec = SPECS.get(event.queue)
    if spec is None:
        return IGNORED
    key = payload_key(spec, event)
    processed = processed_statements(connection.vendor)
    try:
        with transaction.atomic():
            if processed.recorded(event.id):
                return DUPLICATE
            if event.action == "delete":
                outcome = apply_delete(spec, event, key)
            else:
                outcome = apply_upsert(spec, event, key)
            processed.record(event.id, event.queue, event.action, outcome)
    except IntegrityError:
        if ProcessedEvent.objects.filter(pk=event.id).exists():
            return DUPLICATE
        raise
    return APPLIED
