"""Test the outbox: events of seeds and ORM changes, export and delivery."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from identity import outbox
from identity.models import Employee, OutboxEvent, Role, System, User, UserSystemRole

pytestmark = pytest.mark.django_db
Run = Callable[..., tuple[str, str]]


def events_since(seq: int) -> list[tuple[str, str, int]]:
    """Return (queue, action, entity id) of events recorded after `seq`."""
    rows = OutboxEvent.objects.filter(seq__gt=seq).order_by("seq")
    return [(e.queue, e.action, e.entity_id) for e in rows]


def last_seq() -> int:
    """Return the seq of the newest event (0 when none)."""
    event = OutboxEvent.objects.order_by("-seq").first()
    return event.seq if event else 0


def test_default_seed_records_what_consumers_need(run: Run) -> None:
    """A default seed records 27 creates: 4 roles, 9 links, 6 HDTS users, 8 employees."""
    run("seed")
    counts = Counter((e.queue, e.action) for e in OutboxEvent.objects.all())
    assert counts == {
        ("tts.role.sync", "create"): 4,
        ("tts.user_system_role.sync", "create"): 9,
        ("hdts.user.sync", "create"): 6,
        ("hdts.employee.sync", "create"): 8,
    }
    roles = {e.payload["name"] for e in OutboxEvent.objects.filter(queue="tts.role.sync")}
    assert roles == {"Admin", "Asset Manager", "Budget Manager", "Ticket Coordinator"}
    coordinator = OutboxEvent.objects.get(queue="tts.role.sync", payload__name="Ticket Coordinator")
    assert coordinator.payload["system"] == "hdts"
    link = OutboxEvent.objects.filter(queue="tts.user_system_role.sync").first()
    assert link is not None
    assert set(link.payload) == {
        "id",
        "user_id",
        "role_id",
        "system",
        "user_full_name",
        "email",
        "is_active",
        "settings",
    }
    assert link.payload["settings"] == {"is_deployed": True}
    user = OutboxEvent.objects.get(queue="hdts.user.sync", payload__email="adminhdts@example.com")
    assert user.payload["role"] == "Admin"
    assert user.payload["company_id"] is None
    employee = OutboxEvent.objects.filter(queue="hdts.employee.sync").first()
    assert employee is not None
    assert set(employee.payload) == {
        "employee_id",
        "email",
        "username",
        "first_name",
        "last_name",
        "company_id",
        "department",
        "status",
    }
    assert outbox.unrecorded_changes() == 0


def test_orm_changes_record_events(run: Run) -> None:
    """Saves and deletes through the ORM record exactly one event per change."""
    run("seed")
    start = last_seq()
    user = User.objects.create_user("new.person@example.com", "pw", username="new.person")
    assert events_since(start) == []

    coordinator = Role.objects.get(system__slug="hdts", name="Ticket Coordinator")
    link = UserSystemRole.objects.create(user=user, role=coordinator)
    assert link.system.slug == "hdts"
    assert events_since(start) == [
        ("tts.user_system_role.sync", "create", link.id),
        ("hdts.user.sync", "create", user.id),
    ]

    start = last_seq()
    user.first_name = "Nova"
    user.save()
    assert events_since(start) == [
        ("tts.user_system_role.sync", "update", link.id),
        ("hdts.user.sync", "update", user.id),
    ]

    start = last_seq()
    user.save()
    assert events_since(start) == []

    start = last_seq()
    asset = Role.objects.get(system__slug="tts", name="Asset Manager")
    asset.name = "Asset Steward"
    asset.save()
    assert events_since(start) == [("tts.role.sync", "update", asset.id)]
    assert OutboxEvent.objects.get(seq=start + 1).payload["name"] == "Asset Steward"

    start = last_seq()
    link_id = link.id
    link.delete()
    assert events_since(start) == [
        ("tts.user_system_role.sync", "delete", link_id),
        ("hdts.user.sync", "delete", user.id),
    ]
    deleted = OutboxEvent.objects.get(seq=start + 2)
    assert deleted.payload["first_name"] == "Nova"


def test_hdts_role_rename_updates_holders(run: Run) -> None:
    """Renaming an HDTS role updates the users holding it; unsyncing a role deletes it downstream."""
    run("seed")
    start = last_seq()
    admin = Role.objects.get(system__slug="hdts", name="Admin")
    admin.name = "Administrator"
    admin.save()
    assert Counter(events_since(start)) == Counter(
        ("hdts.user.sync", "update", uid) for uid in admin.user_links.values_list("user_id", flat=True)
    )

    start = last_seq()
    coordinator = Role.objects.get(system__slug="hdts", name="Ticket Coordinator")
    coordinator.name = "Coordinator"
    coordinator.save()
    actions = Counter((queue, action) for queue, action, _ in events_since(start))
    assert actions == {
        ("tts.role.sync", "delete"): 1,
        ("tts.user_system_role.sync", "delete"): 4,
        ("hdts.user.sync", "update"): 4,
    }


def test_cascading_delete_records_each_delete_once(run: Run) -> None:
    """Deleting a user cascades to its links; each entity gets one delete."""
    run("seed")
    user = User.objects.get(email="carlo.garcia@example.com")
    link_id = user.system_roles.get().id
    start = last_seq()
    user_id = user.id
    user.delete()
    assert events_since(start) == [
        ("tts.user_system_role.sync", "delete", link_id),
        ("hdts.user.sync", "delete", user_id),
    ]
    assert outbox.unrecorded_changes() == 0


def test_employee_and_system_changes(run: Run) -> None:
    """Employees record create/update/delete; a system rename that changes no payload records nothing."""
    run("seed")
    start = last_seq()
    employee = Employee.objects.create(
        email="x.y@example.com", username="x.y", first_name="X", last_name="Y", company_id="MA0500"
    )
    employee.status = "Approved"
    employee.save()
    employee_id = employee.id
    employee.delete()
    assert events_since(start) == [
        ("hdts.employee.sync", "create", employee_id),
        ("hdts.employee.sync", "update", employee_id),
        ("hdts.employee.sync", "delete", employee_id),
    ]
    start = last_seq()
    tts = System.objects.get(slug="tts")
    tts.name = "Ticket Tracking"
    tts.save()
    assert events_since(start) == []


def test_reseed_repairs_edits_with_update_events(run: Run) -> None:
    """A re-seed keeps an admin edit; with --repair it records one update putting it back."""
    run("seed")
    user = User.objects.get(email="paolo.cruz@example.com")
    user.last_name = "Changed"
    user.save()
    start = last_seq()
    out, _ = run("seed", "--json")
    assert json.loads(out)["models"]["User"]["kept"] == 1
    assert events_since(start) == []
    out, _ = run("seed", "--json", "--repair")
    assert json.loads(out)["models"]["User"]["repaired"] == 1
    assert events_since(start) == [
        ("tts.user_system_role.sync", "update", user.system_roles.get().id),
    ]


def test_export_and_mark_round_trip(run: Run, tmp_path: Path) -> None:
    """Exported events are pending envelopes in order; marking them delivers them once."""
    run("seed")
    out, _ = run("export_events")
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 27
    assert [e["id"] for e in lines] == [str(e.event_id) for e in OutboxEvent.objects.order_by("seq")]
    assert set(lines[0]) == {"id", "queue", "action", "occurred_at", "payload"}
    assert lines[0]["occurred_at"].endswith("Z")

    limited, _ = run("export_events", "--limit", "5")
    assert limited.splitlines() == out.splitlines()[:5]

    target = tmp_path / "events.jsonl"
    message, _ = run("export_events", "--output", str(target))
    assert "27 events" in message
    assert target.read_text().splitlines() == out.splitlines()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".events")] == []

    first_ten = tmp_path / "ten.jsonl"
    first_ten.write_text("\n".join(out.splitlines()[:10]) + "\n")
    result, _ = run("mark_delivered", str(first_ten), "--json")
    assert json.loads(result) == {"marked": 10, "unknown": 0}
    again, _ = run("mark_delivered", str(first_ten), "--json")
    assert json.loads(again) == {"marked": 0, "unknown": 0}

    rest, _ = run("export_events")
    assert rest.splitlines() == out.splitlines()[10:]

    mixed = tmp_path / "mixed.jsonl"
    ids = [json.loads(line)["id"] for line in rest.splitlines()]
    mixed.write_text(
        f'{{"id": "{ids[0]}"}}\n{ids[1]}\n\n"{ids[2]}"\n00000000-0000-0000-0000-000000000000\nnot-a-uuid\n'
    )
    result, _ = run("mark_delivered", str(mixed), "--json")
    assert json.loads(result) == {"marked": 3, "unknown": 2}
    assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 14


def test_mark_delivered_reads_stdin(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mark_delivered -` reads ids from stdin."""
    run("seed")
    out, _ = run("export_events", "--limit", "3")
    monkeypatch.setattr("sys.stdin", StringIO(out))
    result, _ = run("mark_delivered", "-", "--json")
    assert json.loads(result) == {"marked": 3, "unknown": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--limit", "0"), "1 or more"), (("--limit", "x"), "whole number")],
)
def test_export_rejects_bad_limit(run: Run, args: tuple[str, ...], message: str) -> None:
    """A bad --limit is a CommandError."""
    from django.core.management import CommandError

    with pytest.raises(CommandError, match=message):
        run("export_events", *args)


def test_mark_delivered_rejects_bad_input(run: Run, tmp_path: Path) -> None:
    """Invalid JSON or a missing file is a CommandError."""
    from django.core.management import CommandError

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(CommandError, match="Line 1 is not valid JSON"):
        run("mark_delivered", str(bad))
    with pytest.raises(CommandError, match="does not exist"):
        run("mark_delivered", str(tmp_path / "missing.jsonl"))


def test_pending_events_boundary(run: Run) -> None:
    """The publisher boundary yields events in order and marks them by id."""
    run("seed")
    events = list(outbox.pending_events(limit=4))
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    result = outbox.mark_delivered([e.event_id for e in events])
    assert (result.marked, result.unknown) == (4, 0)
    assert sum(outbox.pending_counts().values()) == 23


def test_admin_created_user_with_hdts_role_records_events(run: Run, admin_client: Any) -> None:
    """A user added in the admin, then given the HDTS coordinator role inline, is synced."""
    run("seed")
    start = last_seq()
    response = admin_client.post(
        "/admin/identity/user/add/",
        {
            "email": "added@example.com",
            "username": "added",
            "usable_password": "true",
            "password1": "a-long-enough-pass-123",
            "password2": "a-long-enough-pass-123",
            "system_roles-TOTAL_FORMS": "0",
            "system_roles-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="added@example.com")
    assert events_since(start) == []
    coordinator = Role.objects.get(system__slug="hdts", name="Ticket Coordinator")
    response = admin_client.post(
        "/admin/identity/usersystemrole/add/",
        {"user": user.id, "system": "", "role": coordinator.id, "is_active": "on", "settings": "{}"},
    )
    assert response.status_code == 302, response.content[:2000]
    link = UserSystemRole.objects.get(user=user)
    assert events_since(start) == [
        ("tts.user_system_role.sync", "create", link.id),
        ("hdts.user.sync", "create", user.id),
    ]
