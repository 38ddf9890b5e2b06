"""Test the reconcile command: the mirrors become auth's snapshot, newer rows stay, --check writes nothing."""

import json
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from workflows.handlers import handle_event
from workflows.models import DeferredEvent, ProcessedEvent, Role, RoleUser, Step, Workflow
from workflows.waiting import still_missing

from .factories import DEFAULT_LINKS, at, default_auth_events, envelope, link_event, role_event

pytestmark = pytest.mark.django_db

ROLES = "tts.role.sync"
LINKS = "tts.user_system_role.sync"
TAKEN = 1000  # seconds after the factories' epoch


def z(seconds: int) -> str:
    """Return the time as the report writes it (UTC with Z)."""
    return at(seconds).replace("+00:00", "Z")


def snap(event: dict[str, Any], taken: int | None = TAKEN) -> dict[str, Any]:
    """Turn an event into a snapshot line as auth prints it (update, taken_at)."""
    line = {**event, "action": "update"}
    if taken is not None:
        line["taken_at"] = at(taken)
    return line


def default_snapshot(taken: int | None = TAKEN) -> list[dict[str, Any]]:
    """Return the snapshot of a default auth seed, with another service's line in between."""
    lines = [snap(event, taken) for event in default_auth_events()]
    other = envelope("hdts.employee.sync", "update", {"employee_id": 1}, seconds=5)
    return [*lines[:4], other, *lines[4:]]


def run(lines: list[dict[str, Any]], *args: str) -> dict[str, Any]:
    """Run ``reconcile - --json`` on the lines; return the report."""
    out = StringIO()
    text = "".join(json.dumps(line) + "\n" for line in lines)
    call_command("reconcile", "-", "--json", *args, stdin=StringIO(text), stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def counts(report: dict[str, Any], queue: str) -> tuple[int, int, int, int]:
    """Return (created, updated, deleted, unchanged) of a queue."""
    numbers = report["queues"][queue]
    return numbers["created"], numbers["updated"], numbers["deleted"], numbers["unchanged"]


def mirror() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return every Role and RoleUser row (to prove a run wrote nothing)."""
    roles = list(Role.objects.order_by("pk").values_list())
    links = list(RoleUser.objects.order_by("role_id", "user_id").values_list(*_link_fields()))
    return roles, links


def _link_fields() -> tuple[str, ...]:
    return ("role_id", "user_id", "user_full_name", "is_active", "settings", "synced_at")


def links() -> set[tuple[int, int]]:
    """Return the (role_id, user_id) keys of the mirrored links."""
    return set(RoleUser.objects.values_list("role_id", "user_id"))


def drifted_snapshot() -> list[dict[str, Any]]:
    """Return auth's snapshot after changes the mirror missed (on top of the default seed).

    Role 5 renamed, role 6 and its link gone, link of user 12 gone, link of user 5
    changed, role 9 created with a link (the link before its role in the lines).
    """
    lines = [
        snap(role_event(2, "Admin", seconds=0)),
        snap(link_event(20, 9, full_name="Ivy Ong", seconds=300)),
        snap(role_event(5, "Asset Lead", seconds=200)),
        snap(role_event(8, "Ticket Coordinator", system="hdts", seconds=3)),
        snap(role_event(9, "Auditor", seconds=250)),
    ]
    system = {2: "tts", 5: "tts", 8: "hdts"}
    for index, (link_id, user_id, role_id, name) in enumerate(DEFAULT_LINKS):
        if user_id in (8, 12):
            continue
        event = link_event(user_id, role_id, full_name=name, link_id=link_id, system=system[role_id])
        event["occurred_at"] = at(100 + index)
        if user_id == 5:
            event = link_event(5, 2, full_name="Ana Reyes-Cruz", is_active=False, seconds=400)
        lines.append(snap(event))
    return lines


def test_reconcile_repairs_the_mirror_then_changes_nothing(synced_auth: list[dict[str, Any]]) -> None:
    recorded = set(ProcessedEvent.objects.values_list("event_id", "outcome"))
    snapshot = drifted_snapshot()

    first = run(snapshot)
    assert first["service"] == "workflow" and first["changed"] is True
    assert counts(first, ROLES) == (1, 1, 1, 2)
    assert counts(first, LINKS) == (1, 1, 2, 6)
    assert first["problems"] == [] and first["taken_at"] == z(TAKEN)
    assert dict(Role.objects.values_list("role_id", "name")) == {
        2: "Admin",
        5: "Asset Lead",
        8: "Ticket Coordinator",
        9: "Auditor",
    }
    assert (9, 20) in links() and (6, 8) not in links() and (8, 12) not in links()
    ana = RoleUser.objects.get(role_id=2, user_id=5)
    assert (ana.user_full_name, ana.is_active) == ("Ana Reyes-Cruz", False)
    assert set(ProcessedEvent.objects.values_list("event_id", "outcome")) == recorded
    assert not DeferredEvent.objects.exists()

    before = mirror()
    second = run(snapshot)
    assert second["changed"] is False
    assert counts(second, ROLES) == (0, 0, 0, 4)
    assert counts(second, LINKS) == (0, 0, 0, 8)
    assert mirror() == before


def test_check_writes_nothing_and_reports_the_same_numbers(synced_auth: list[dict[str, Any]]) -> None:
    snapshot = drifted_snapshot()
    before = mirror()
    checked = run(snapshot, "--check")
    assert mirror() == before
    assert checked == run(snapshot, "--check")
    assert checked == run(snapshot)
    assert mirror() != before
    assert run(snapshot, "--check")["changed"] is False


def test_check_of_links_alone_is_read_only_and_exact(synced_auth: list[dict[str, Any]]) -> None:
    """With no role to write, --check answers from reads; the numbers match the real run."""
    snapshot = [line for line in default_snapshot() if line["payload"].get("user_id") != 12]
    snapshot.append(snap(link_event(30, 5, full_name="New Person", seconds=500)))
    snapshot.append(snap(link_event(31, 77, full_name="Nobody's Role", seconds=500)))
    before = mirror()
    checked = run(snapshot, "--check")
    assert mirror() == before
    assert counts(checked, LINKS) == (1, 0, 1, 8)
    assert checked["problems"] == [
        "1 link(s) of role 77 were not written (user_id 31): role 77 is neither in the snapshot nor here."
    ]
    assert run(snapshot) == checked
    assert not DeferredEvent.objects.exists()  # never parked
    assert run(snapshot)["changed"] is False


def test_rows_synced_after_the_snapshot_stay(synced_auth: list[dict[str, Any]]) -> None:
    handle_event(role_event(12, "Late Role", seconds=TAKEN + 1))
    handle_event(link_event(40, 12, seconds=TAKEN + 2))
    handle_event(link_event(41, 2, seconds=TAKEN))  # at taken_at: covered by the snapshot
    handle_event(role_event(2, "Admin Renamed", action="update", seconds=TAKEN + 5))
    report = run(default_snapshot())
    assert report["queues"][ROLES] == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 3, "newer": 2}
    assert report["queues"][LINKS] == {"created": 0, "updated": 0, "deleted": 1, "unchanged": 9, "newer": 1}
    assert Role.objects.get(pk=2).name == "Admin Renamed"
    assert Role.objects.filter(pk=12).exists() and (12, 40) in links() and (2, 41) not in links()


def test_role_used_by_a_step_is_kept_and_reported(synced_auth: list[dict[str, Any]]) -> None:
    workflow = Workflow.objects.create(
        name="W",
        category="C",
        sub_category="S",
        department="IT Department",
        owner_user_id=2,
        urgent_sla=timedelta(hours=1),
        high_sla=timedelta(hours=2),
        medium_sla=timedelta(hours=3),
        low_sla=timedelta(hours=4),
    )
    Step.objects.create(workflow=workflow, name="Budget review", role_id=6, is_start=True, is_end=True)
    # auth was reset: Budget Manager is role 16 now, with the link of user 8
    snapshot = [
        line for line in default_snapshot() if line["payload"].get("role_id") != 6 or line["queue"] != ROLES
    ]
    snapshot = [line for line in snapshot if line["payload"].get("user_id") != 8]
    snapshot += [snap(role_event(16, "Budget Manager", seconds=500)), snap(link_event(8, 16, seconds=501))]
    expected = [
        "Role 6 (Budget Manager) is gone from auth but 1 workflow step(s) still use it, so it was kept; "
        "point those steps at another role, then reconcile again.",
        "Role 16 was not written: its name 'Budget Manager' is held here by role 6 and workflow steps still "
        "use it; free the name in auth or here, then reconcile again.",
        "1 link(s) of role 16 were not written (user_id 8): role 16 was not written.",
    ]
    checked = run(snapshot, "--check")
    first = run(snapshot)
    assert first == checked
    assert first["problems"] == expected
    assert counts(first, ROLES) == (0, 0, 0, 3)
    assert counts(first, LINKS) == (0, 0, 1, 8)
    assert Role.objects.filter(pk=6).exists() and not Role.objects.filter(pk=16).exists()
    second = run(snapshot)
    assert second["changed"] is False and second["problems"] == expected

    Step.objects.all().delete()
    third = run(snapshot)
    assert third["problems"] == []
    assert counts(third, ROLES) == (1, 0, 1, 3)
    assert counts(third, LINKS) == (1, 0, 0, 8)
    assert Role.objects.get(name="Budget Manager").pk == 16 and (16, 8) in links()


def test_names_freed_later_in_the_snapshot_are_retried(synced_auth: list[dict[str, Any]]) -> None:
    """Role 5 takes the name role 2 gives up in a later line."""
    snapshot = [
        line for line in default_snapshot() if line["queue"] != ROLES or line["payload"]["role_id"] > 5
    ]
    snapshot += [snap(role_event(5, "Admin", seconds=300)), snap(role_event(2, "Chief", seconds=300))]
    report = run(snapshot)
    assert report["problems"] == [] and counts(report, ROLES) == (0, 2, 0, 2)
    assert dict(Role.objects.filter(pk__in=(2, 5)).values_list("pk", "name")) == {2: "Chief", 5: "Admin"}


def test_parked_events_the_snapshot_covers_are_superseded(synced_auth: list[dict[str, Any]]) -> None:
    old = link_event(50, 60, seconds=TAKEN - 1)  # role 60 never came: covered by the snapshot
    new = link_event(51, 61, seconds=TAKEN + 1)  # newer than the snapshot: stays parked
    assert handle_event(old) == "deferred" and handle_event(new) == "deferred"
    checked = run(default_snapshot(), "--check")
    assert checked["deferred_superseded"] == 1 and checked["changed"] is True
    assert DeferredEvent.objects.count() == 2
    report = run(default_snapshot())
    assert report == checked
    assert list(DeferredEvent.objects.values_list("event_id", flat=True)) == [new_id(new)]
    record = ProcessedEvent.objects.get(pk=old["id"])
    assert (record.outcome, record.detail) == ("applied", "superseded-by-snapshot")
    assert still_missing([new_id(old), new_id(new)], full=True) == [new_id(new)]
    assert run(default_snapshot())["changed"] is False


def new_id(event: dict[str, Any]) -> uuid.UUID:
    """Return an event's id as the database returns it."""
    return uuid.UUID(event["id"])


def test_snapshot_rebuilds_an_empty_mirror_end_to_end(tmp_path: Path) -> None:
    """auth's snapshot lines (all queues) into an empty mirror: everything created, nothing recorded."""
    path = tmp_path / "snapshot.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in default_snapshot()), encoding="utf-8")
    out = StringIO()
    call_command("reconcile", str(path), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert counts(report, ROLES) == (4, 0, 0, 0) and counts(report, LINKS) == (9, 0, 0, 0)
    assert not ProcessedEvent.objects.exists()
    for event in default_auth_events():  # the real events arrive later: duplicates of the state
        assert handle_event(event) == "applied"
    assert run(default_snapshot())["changed"] is False


def test_human_output(synced_auth: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "snapshot.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in drifted_snapshot()), encoding="utf-8")
    out = StringIO()
    call_command("reconcile", str(path), "--check", stdout=out)
    text = out.getvalue()
    assert text.startswith("Check only, nothing written: workflow against auth's snapshot taken at ")
    assert "tts.role.sync: 1 created, 1 updated, 1 deleted, 2 unchanged, 0 newer than the snapshot" in text
    call_command("reconcile", str(path), stdout=StringIO())
    out = StringIO()
    call_command("reconcile", str(path), stdout=out)
    assert "Nothing to do: the mirrors match the snapshot." in out.getvalue()


def test_bad_input_writes_nothing(synced_auth: list[dict[str, Any]], tmp_path: Path) -> None:
    before = mirror()
    good = snap(role_event(30, "Extra"))
    path = tmp_path / "snapshot.jsonl"
    path.write_text(json.dumps(good) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"Line 2 is not valid JSON.*Nothing was written"):
        call_command("reconcile", str(path), stdout=StringIO())
    with pytest.raises(CommandError, match=r"Line 2: .*'name' is empty"):
        run([good, snap(role_event(31, " "))])
    with pytest.raises(CommandError, match="Line 1 is a delete event"):
        run([{**good, "action": "delete"}])
    with pytest.raises(CommandError, match="--taken-at 'soon' is not an ISO 8601 time"):
        run([good], "--taken-at", "soon")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("reconcile", str(tmp_path / "missing.jsonl"), stdout=StringIO())
    assert mirror() == before


def test_taken_at_option_and_queue_filter(synced_auth: list[dict[str, Any]]) -> None:
    """--taken-at wins over the lines; without taken_at the latest occurred_at counts; --queue limits."""
    before = mirror()
    roles_only = [line for line in default_snapshot(taken=None) if line["queue"] != LINKS]
    report = run(roles_only, "--queue", ROLES, "--check")
    assert list(report["queues"]) == [ROLES] and report["taken_at"] == z(5)
    assert counts(report, ROLES) == (0, 0, 0, 4)
    early = run([line for line in roles_only if line["payload"].get("role_id") != 8], "--check")
    assert early["taken_at"] == z(5)
    assert counts(early, ROLES) == (0, 0, 1, 3)  # role 8 synced at 3 s: deleted with its 4 links
    # links were synced after 5 s and stay, but deleting role 8 deletes its 4 links (as a delete event does)
    assert early["queues"][LINKS] == {"created": 0, "updated": 0, "deleted": 4, "unchanged": 0, "newer": 5}
    late = run([], "--check", "--taken-at", at(50))
    assert counts(late, ROLES) == (0, 0, 4, 0) and counts(late, LINKS) == (0, 0, 9, 0)
    kept = run([], "--check", "--taken-at", "2025-01-01T00:00:02")
    assert counts(kept, ROLES) == (0, 0, 3, 0) and kept["queues"][ROLES]["newer"] == 1  # synced at 0-3 s
    assert mirror() == before


def test_events_still_apply_after_a_reconcile(synced_auth: list[dict[str, Any]]) -> None:
    """A redelivered event is still a duplicate; an event older than the snapshot changes nothing."""
    run(drifted_snapshot())
    assert handle_event(synced_auth[1]) == "duplicate"
    assert handle_event(role_event(5, "Asset Manager", action="update", seconds=150)) == "applied"
    assert Role.objects.get(pk=5).name == "Asset Lead"
    assert handle_event(role_event(5, "Asset Head", action="update", seconds=TAKEN + 1)) == "applied"
    assert Role.objects.get(pk=5).name == "Asset Head"
