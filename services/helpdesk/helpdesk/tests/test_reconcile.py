"""Test the reconcile command: the mirrors become auth's snapshot, newer rows stay, --check writes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from helpdesk.handlers import handle_event
from helpdesk.models import ExternalEmployee, HDTSUser, ProcessedEvent

from .conftest import T0, employee_payload, envelope, user_payload

pytestmark = pytest.mark.django_db

USERS = "hdts.user.sync"
EMPLOYEES = "hdts.employee.sync"


def at(minutes: int) -> str:
    """Return the envelope time ``minutes`` after T0."""
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def line(queue: str, payload: dict[str, Any], minutes: int = 0, taken: int | None = 10) -> dict[str, Any]:
    """Return one snapshot line as auth prints it (fresh id, update, taken_at)."""
    event = envelope(queue, "update", payload, minutes=minutes)
    if taken is not None:
        event["taken_at"] = at(taken)
    return event


def apply(*events: dict[str, Any]) -> None:
    """Apply events as the worker does."""
    for event in events:
        assert handle_event(event) == "applied"


def run(lines: list[dict[str, Any]], *args: str) -> dict[str, Any]:
    """Run ``reconcile - --json`` on the lines; return the report."""
    out = StringIO()
    text = "".join(json.dumps(event) + "\n" for event in lines)
    call_command("reconcile", "-", "--json", *args, stdin=StringIO(text), stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def counts(report: dict[str, Any], queue: str) -> tuple[int, int, int, int]:
    """Return (created, updated, deleted, unchanged) of a queue."""
    numbers = report["queues"][queue]
    return numbers["created"], numbers["updated"], numbers["deleted"], numbers["unchanged"]


def mirror() -> list[tuple[Any, ...]]:
    """Return every mirror row (to prove a run wrote nothing)."""
    return list(HDTSUser.objects.order_by("pk").values_list()) + list(
        ExternalEmployee.objects.order_by("pk").values_list()
    )


def drifted() -> list[dict[str, Any]]:
    """Build a drifted mirror and return auth's snapshot (with another service's lines)."""
    apply(
        envelope(USERS, "create", user_payload(1)),
        envelope(USERS, "create", user_payload(2)),
        envelope(USERS, "create", user_payload(3)),  # gone from auth, delete lost
        envelope(EMPLOYEES, "create", employee_payload(1)),
        envelope(EMPLOYEES, "create", employee_payload(2)),
    )
    return [
        line("tts.role.sync", {"role_id": 1, "system": "tts", "name": "Admin"}),
        line(USERS, user_payload(1)),
        line(USERS, user_payload(2, status="Pending", first_name="Bea"), minutes=2),  # update lost
        line(USERS, user_payload(4), minutes=3),  # create lost
        line(EMPLOYEES, employee_payload(1)),
        line(EMPLOYEES, employee_payload(2)),
        line(EMPLOYEES, employee_payload(7), minutes=1),
    ]


def test_reconcile_repairs_the_mirror_then_changes_nothing() -> None:
    snapshot = drifted()
    recorded = ProcessedEvent.objects.count()

    first = run(snapshot)
    assert first["service"] == "helpdesk" and first["changed"] is True
    assert counts(first, USERS) == (1, 1, 1, 1)
    assert counts(first, EMPLOYEES) == (1, 0, 0, 2)
    assert first["problems"] == []
    assert first["taken_at"] == at(10)
    assert sorted(HDTSUser.objects.values_list("hdts_user_id", flat=True)) == [1, 2, 4]
    two = HDTSUser.objects.get(hdts_user_id=2)
    assert (two.status, two.first_name, two.synced_at) == ("Pending", "Bea", T0 + timedelta(minutes=2))
    assert ExternalEmployee.objects.get(external_employee_id=7).email == "employee7@example.com"
    assert ProcessedEvent.objects.count() == recorded  # snapshot events are not recorded

    before = mirror()
    second = run(snapshot)
    assert second["changed"] is False
    assert counts(second, USERS) == (0, 0, 0, 3)
    assert counts(second, EMPLOYEES) == (0, 0, 0, 3)
    assert mirror() == before


def test_check_writes_nothing_and_reports_the_same_numbers() -> None:
    snapshot = drifted()
    before = mirror()
    checked = run(snapshot, "--check")
    assert mirror() == before
    assert checked == run(snapshot, "--check")
    assert checked == run(snapshot)
    assert mirror() != before
    assert run(snapshot, "--check")["changed"] is False


def test_rows_synced_after_the_snapshot_stay() -> None:
    apply(
        envelope(USERS, "create", user_payload(1)),
        envelope(USERS, "update", user_payload(1, status="Denied"), minutes=20),  # after taken_at
        envelope(USERS, "create", user_payload(5), minutes=15),  # created after taken_at
        envelope(USERS, "create", user_payload(6), minutes=10),  # at taken_at: covered by it
    )
    report = run([line(USERS, user_payload(1), minutes=0)])
    numbers = report["queues"][USERS]
    assert (numbers["deleted"], numbers["newer"], numbers["updated"], numbers["unchanged"]) == (1, 2, 0, 0)
    assert HDTSUser.objects.get(hdts_user_id=1).status == "Denied"
    assert sorted(HDTSUser.objects.values_list("hdts_user_id", flat=True)) == [1, 5]
    assert run([line(USERS, user_payload(1), minutes=0)])["changed"] is False


def test_taken_at_option_then_lines_then_latest_event_then_now() -> None:
    apply(envelope(USERS, "create", user_payload(1), minutes=15))
    other = line(EMPLOYEES, employee_payload(1), minutes=0, taken=None)
    assert run([other], "--queue", USERS)["queues"][USERS]["newer"] == 1  # latest occurred_at: 0
    assert run([line(EMPLOYEES, employee_payload(1))], "--queue", USERS)["queues"][USERS]["newer"] == 1
    assert run([], "--check", "--taken-at", at(14))["queues"][USERS]["deleted"] == 0
    assert run([], "--check", "--taken-at", "2025-03-01T12:15:00")["queues"][USERS]["deleted"] == 1
    report = run([other], "--queue", USERS, "--taken-at", at(16))
    assert report["taken_at"] == at(16) and report["queues"][USERS]["deleted"] == 1
    assert list(report["queues"]) == [USERS]
    assert ExternalEmployee.objects.count() == 0  # not reconciled, not created
    apply(envelope(EMPLOYEES, "create", employee_payload(2), minutes=1))
    assert run([])["queues"][EMPLOYEES]["deleted"] == 1  # no time given: now


def test_email_of_a_deleted_row_goes_to_its_new_holder() -> None:
    apply(envelope(EMPLOYEES, "create", employee_payload(1, email="shared@example.com")))
    report = run([line(EMPLOYEES, employee_payload(2, email="shared@example.com"), minutes=5)])
    assert counts(report, EMPLOYEES) == (1, 0, 1, 0)
    assert report["problems"] == []
    assert ExternalEmployee.objects.get().external_employee_id == 2


def test_email_held_by_a_newer_row_is_a_problem() -> None:
    apply(envelope(USERS, "create", user_payload(9, email="taken@example.com"), minutes=20))
    snapshot = [line(USERS, user_payload(1, email="taken@example.com"), minutes=5)]
    before = mirror()
    checked = run(snapshot, "--check")
    assert mirror() == before
    report = run(snapshot)
    assert report == checked
    assert counts(report, USERS) == (1, 0, 0, 0)
    assert len(report["problems"]) == 1
    assert "hdts_user_id 1" in report["problems"][0] and "placeholder" in report["problems"][0]
    assert HDTSUser.objects.get(hdts_user_id=1).email == "hdts-user-id-1@released.invalid"
    assert HDTSUser.objects.get(hdts_user_id=9).email == "taken@example.com"


def test_swapped_emails_are_both_restored() -> None:
    apply(
        envelope(EMPLOYEES, "create", employee_payload(1, email="a@example.com")),
        envelope(EMPLOYEES, "create", employee_payload(2, email="b@example.com")),
    )
    snapshot = [
        line(EMPLOYEES, employee_payload(1, email="b@example.com"), minutes=1),
        line(EMPLOYEES, employee_payload(2, email="a@example.com"), minutes=1),
    ]
    checked = run(snapshot, "--check")
    assert ExternalEmployee.objects.get(external_employee_id=1).email == "a@example.com"
    report = run(snapshot)
    assert report == checked and report["problems"] == []
    assert counts(report, EMPLOYEES) == (0, 2, 0, 0)
    emails = dict(ExternalEmployee.objects.values_list("external_employee_id", "email"))
    assert emails == {1: "b@example.com", 2: "a@example.com"}
    assert run(snapshot)["changed"] is False


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    apply(envelope(USERS, "create", user_payload(1)))
    good = line(USERS, user_payload(2))
    path = tmp_path / "snapshot.jsonl"
    path.write_text(json.dumps(good) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"Line 2 is not valid JSON.*Nothing was written"):
        call_command("reconcile", str(path), stdout=StringIO())
    bad = line(USERS, user_payload(3, email=""))
    with pytest.raises(CommandError, match=r"Line 2: .*empty email"):
        run([good, bad])
    deleted = {**good, "action": "delete"}
    with pytest.raises(CommandError, match="Line 1 is a delete event"):
        run([deleted])
    with pytest.raises(CommandError, match="--taken-at 'soon' is not an ISO 8601 time"):
        run([good], "--taken-at", "soon")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("reconcile", str(tmp_path / "missing.jsonl"), stdout=StringIO())
    assert list(HDTSUser.objects.values_list("hdts_user_id", flat=True)) == [1]


def test_repeated_entity_is_reported_and_the_later_line_wins() -> None:
    report = run([line(USERS, user_payload(1)), line(USERS, user_payload(1, status="Denied"))])
    assert report["problems"] == ["Line 2 repeats user_id 1 of hdts.user.sync; the later line was used."]
    assert HDTSUser.objects.get().status == "Denied"


def test_file_input_and_human_output(tmp_path: Path) -> None:
    snapshot = drifted()
    path = tmp_path / "snapshot.jsonl"
    path.write_text("".join(json.dumps(event) + "\n" for event in snapshot), encoding="utf-8")
    out = StringIO()
    call_command("reconcile", str(path), "--check", stdout=out)
    text = out.getvalue()
    assert text.startswith("Check only, nothing written: helpdesk against auth's snapshot taken at ")
    assert "hdts.user.sync: 1 created, 1 updated, 1 deleted, 1 unchanged, 0 newer than the snapshot" in text
    out = StringIO()
    call_command("reconcile", str(path), stdout=out)
    out = StringIO()
    call_command("reconcile", str(path), stdout=out)
    assert "Nothing to do: the mirrors match the snapshot." in out.getvalue()


def test_events_still_apply_after_a_reconcile() -> None:
    """A redelivered old event is still a duplicate; a later event still applies."""
    created = envelope(USERS, "create", user_payload(1))
    apply(created)
    run([line(USERS, user_payload(1, status="Pending"), minutes=5)])
    assert handle_event(created) == "duplicate"
    assert handle_event(envelope(USERS, "update", user_payload(1, status="Denied"), minutes=3)) == "applied"
    assert HDTSUser.objects.get().status == "Pending"  # older than the snapshot: ignored
    assert handle_event(envelope(USERS, "update", user_payload(1, status="Denied"), minutes=6)) == "applied"
    assert HDTSUser.objects.get().status == "Denied"
