"""Build sync event envelopes for tests (uuid4 ids, contract payloads)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

# (role_id, system, name) as a default auth seed numbers them.
DEFAULT_ROLES: tuple[tuple[int, str, str], ...] = (
    (2, "tts", "Admin"),
    (5, "tts", "Asset Manager"),
    (6, "tts", "Budget Manager"),
    (8, "hdts", "Ticket Coordinator"),
)
# (link id, user_id, role_id, full name)
DEFAULT_LINKS: tuple[tuple[int, int, int, str], ...] = (
    (2, 2, 2, "TTS Admin"),
    (5, 5, 2, "Ana Reyes"),
    (6, 6, 2, "Ben Cruz"),
    (7, 7, 5, "Carla Diaz"),
    (8, 8, 6, "Dan Lim"),
    (9, 9, 8, "Eva Santos"),
    (10, 10, 8, "Finn Tan"),
    (11, 11, 8, "Gia Ramos"),
    (12, 12, 8, "Hugo Lee"),
)


def at(seconds: int) -> str:
    """Return an ISO 8601 UTC time `seconds` after the fixed epoch."""
    return (EPOCH + timedelta(seconds=seconds)).isoformat()


def envelope(queue: str, action: str, payload: dict[str, Any], seconds: int = 0) -> dict[str, Any]:
    """Return one event envelope with a fresh uuid4 id."""
    return {
        "id": str(uuid.uuid4()),
        "queue": queue,
        "action": action,
        "occurred_at": at(seconds),
        "payload": payload,
    }


def role_event(
    role_id: int, name: str, *, system: str = "tts", action: str = "create", seconds: int = 0
) -> dict[str, Any]:
    """Return a tts.role.sync event."""
    payload = {"role_id": role_id, "system": system, "name": name, "description": f"{name} role"}
    return envelope("tts.role.sync", action, payload, seconds)


def link_event(
    user_id: int,
    role_id: int,
    *,
    full_name: str = "Some User",
    link_id: int | None = None,
    is_active: bool = True,
    action: str = "create",
    seconds: int = 0,
    system: str = "tts",
) -> dict[str, Any]:
    """Return a tts.user_system_role.sync event."""
    payload = {
        "id": link_id if link_id is not None else user_id,
        "user_id": user_id,
        "role_id": role_id,
        "system": system,
        "user_full_name": full_name,
        "email": f"user{user_id}@example.com",
        "is_active": is_active,
        "settings": {"is_deployed": True},
    }
    return envelope("tts.user_system_role.sync", action, payload, seconds)


def default_auth_events() -> list[dict[str, Any]]:
    """Return the role and link events a default auth seed publishes (roles first)."""
    events = [
        role_event(role_id, name, system=system, seconds=index)
        for index, (role_id, system, name) in enumerate(DEFAULT_ROLES)
    ]
    system_of = {role_id: system for role_id, system, _ in DEFAULT_ROLES}
    events += [
        link_event(
            user_id, role_id, full_name=name, link_id=link_id, system=system_of[role_id], seconds=100 + index
        )
        for index, (link_id, user_id, role_id, name) in enumerate(DEFAULT_LINKS)
    ]
    return events
