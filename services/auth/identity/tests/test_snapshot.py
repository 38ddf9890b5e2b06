"""Test `export_events --snapshot`: one current update event per synced entity."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.core.management import CommandError
from django.utils import timezone

from identity import outbox
from identity.models import Employee, OutboxEvent, Role

pytestmark = pytest.mark.django_db
Run = Callable[..., tuple[str, str]]


def snapshot(run: Run, *args: str) -> list[dict[str, Any]]:
    """Run `export_events --snapshot` and parse its JSON lines."""
    out, _ = run("export_events", "--snapshot", *args)
    return [json.loads(line) for line in out.splitlines()]


def latest_envelopes() -> dict[tuple[str, int], dict[str, Any]]:
    """Return the envelope of the latest outbox event per (queue, entity id)."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for event in OutboxEvent.objects.order_by("seq"):
        latest[(event.queue, event.entity_id)] = outbox.envelope(event)
    return latest


def key(envelope: dict[str, Any]) -> tuple[str, int]:
    """Return (queue, entity id) of an envelope."""
    payload = envelope["payload"]
    field = {
        "tts.role.sync": "role_id",
        "tts.user_system_role.sync": "id",
        "hdts.user.sync": "user_id",
        "hdts.employee.sync": "employee_id",
    }[envelope["queue"]]
    return envelope["queue"], payload[field]


def outbox_rows() -> list[tuple[Any, ...]]:
    """Return every outbox row as a tuple (to prove the snapshot writes nothing)."""
    return list(OutboxEvent.objects.order_by("seq").values_list())


def test_snapshot_after_default_seed(run: Run) -> None:
    """27 update events with fresh ids, the latest payloads and times; the outbox is unchanged."""
    run("seed")
    before = outbox_rows()
    events = snapshot(run)
    assert len(events) == 27
    assert outbox_rows() == before
    latest = latest_envelopes()
    assert {key(e) for e in events} == set(latest)
    known_ids = {envelope["id"] for envelope in latest.values()}
    for envelope in events:
        assert set(envelope) == {"id", "queue", "action", "occurred_at", "payload", "taken_at"}
        assert envelope["taken_at"] == events[0]["taken_at"]
        assert envelope["action"] == "update"
        assert envelope["id"] not in known_ids
        assert envelope["payload"] == latest[key(envelope)]["payload"]
        assert envelope["occurred_at"] == latest[key(envelope)]["occurred_at"]
    assert len({e["id"] for e in events}) == 27
    assert [e["queue"] for e in events] == sorted((e["queue"] for e in events), key=list(outbox.QUEUES).index)


def test_snapshot_follows_changes_and_filters_queues(run: Run) -> None:
    """Updates show the new payload and time; deleted entities vanish; --queue filters."""
    run("seed")
    role = Role.objects.get(system__slug="tts", name="Asset Manager")
    role.description = "Changed."
    role.save()
    employee = Employee.objects.order_by("pk").first()
    assert employee is not None
    employee_id = employee.id
    employee.delete()

    roles = snapshot(run, "--queue", "tts.role.sync")
    assert len(roles) == 4
    changed = next(e for e in roles if e["payload"]["role_id"] == role.id)
    update = OutboxEvent.objects.filter(queue="tts.role.sync", entity_id=role.id).order_by("-seq").first()
    assert update is not None and update.action == "update"
    assert changed["payload"]["description"] == "Changed."
    assert changed["occurred_at"] == outbox.envelope(update)["occurred_at"]

    two = snapshot(run, "--queue", "hdts.employee.sync", "--queue", "hdts.user.sync")
    assert {e["queue"] for e in two} == {"hdts.employee.sync", "hdts.user.sync"}
    employees = [e for e in two if e["queue"] == "hdts.employee.sync"]
    assert len(employees) == 7
    assert employee_id not in {e["payload"]["employee_id"] for e in employees}


def test_snapshot_limit_and_bad_queue(run: Run) -> None:
    """--limit caps the snapshot; --queue without --snapshot or an unknown queue is refused."""
    run("seed")
    assert len(snapshot(run, "--limit", "3")) == 3
    with pytest.raises(CommandError, match="only filters --snapshot"):
        run("export_events", "--queue", "tts.role.sync")
    with pytest.raises(CommandError, match="invalid choice"):
        run("export_events", "--snapshot", "--queue", "nope.sync")


def test_snapshot_lines_carry_the_time_it_was_taken(run: Run) -> None:
    """Every line holds the same taken_at, no earlier than any occurred_at; a missed change gets it."""
    run("seed")
    role = Role.objects.get(system__slug="tts", name="Asset Manager")
    Role.objects.filter(pk=role.pk).update(description="Changed behind the outbox.")  # no signal
    before = timezone.now()
    events = snapshot(run)
    after = timezone.now()
    taken = {e["taken_at"] for e in events}
    assert len(taken) == 1
    taken_at = datetime.fromisoformat(taken.pop())
    assert before <= taken_at <= after
    assert all(datetime.fromisoformat(e["occurred_at"]) <= taken_at for e in events)
    missed = next(e for e in events if e["queue"] == "tts.role.sync" and e["payload"]["role_id"] == role.id)
    assert missed["occurred_at"] == missed["taken_at"]
