"""Test the sync consumer: upserts, deletes, duplicates, order and malformed events."""

from __future__ import annotations

from typing import Any

import pytest

from helpdesk.handlers import InvalidEvent, handle_event
from helpdesk.models import ExternalEmployee, HDTSUser, ProcessedEvent

from .conftest import employee_payload, envelope, user_payload

pytestmark = pytest.mark.django_db

USER_Q = "hdts.user.sync"
EMP_Q = "hdts.employee.sync"


def test_user_create_update_delete() -> None:
    assert handle_event(envelope(USER_Q, "create", user_payload(5), minutes=0)) == "applied"
    user = HDTSUser.objects.get(hdts_user_id=5)
    assert (user.email, user.role, user.company_id) == ("user5@example.com", "Ticket Coordinator", "MA0005")
    update = envelope(USER_Q, "update", user_payload(5, role="Admin", company_id=None), minutes=1)
    assert handle_event(update) == "applied"
    user.refresh_from_db()
    assert (user.role, user.company_id) == ("Admin", None)
    assert handle_event(envelope(USER_Q, "delete", user_payload(5), minutes=2)) == "applied"
    assert not HDTSUser.objects.exists()
    assert ProcessedEvent.objects.count() == 3


def test_employee_create_update_delete() -> None:
    assert handle_event(envelope(EMP_Q, "create", employee_payload(3), minutes=0)) == "applied"
    assert ExternalEmployee.objects.get(external_employee_id=3).status == "Approved"
    rejected = employee_payload(3, status="Rejected")
    assert handle_event(envelope(EMP_Q, "update", rejected, minutes=1)) == "applied"
    assert ExternalEmployee.objects.get(external_employee_id=3).status == "Rejected"
    assert handle_event(envelope(EMP_Q, "delete", {"employee_id": 3}, minutes=2)) == "applied"
    assert not ExternalEmployee.objects.exists()


def test_update_of_a_missing_row_creates_it() -> None:
    assert handle_event(envelope(EMP_Q, "update", employee_payload(9))) == "applied"
    assert ExternalEmployee.objects.filter(external_employee_id=9).exists()


def test_delete_of_a_missing_row_is_applied() -> None:
    assert handle_event(envelope(USER_Q, "delete", {"user_id": 77})) == "applied"
    assert ProcessedEvent.objects.get().outcome == "missing"


def test_duplicate_event_changes_nothing() -> None:
    event = envelope(USER_Q, "create", user_payload(1))
    assert handle_event(event) == "applied"
    HDTSUser.objects.update(first_name="Changed locally")
    assert handle_event(event) == "duplicate"
    assert HDTSUser.objects.get().first_name == "Changed locally"
    assert ProcessedEvent.objects.count() == 1


def test_older_update_after_newer_changes_nothing() -> None:
    newer = envelope(USER_Q, "update", user_payload(1, first_name="New"), minutes=10)
    older = envelope(USER_Q, "update", user_payload(1, first_name="Old"), minutes=5)
    assert handle_event(newer) == "applied"
    assert handle_event(older) == "applied"
    assert HDTSUser.objects.get().first_name == "New"
    assert handle_event(envelope(USER_Q, "delete", user_payload(1), minutes=1)) == "applied"
    assert HDTSUser.objects.exists()
    assert sorted(ProcessedEvent.objects.values_list("outcome", flat=True)) == ["created", "stale", "stale"]


def test_other_queues_are_ignored_and_not_recorded() -> None:
    event = envelope("tts.role.sync", "create", {"role_id": 1, "system": "tts", "name": "Admin"})
    assert handle_event(event) == "ignored"
    assert not ProcessedEvent.objects.exists()


@pytest.mark.parametrize(
    "event",
    [
        "not an object",
        {"queue": USER_Q, "action": "create", "occurred_at": "2025-01-01T00:00:00Z", "payload": {}},
        envelope(USER_Q, "create", user_payload(1), event_id="not-a-uuid"),
        envelope(USER_Q, "upsert", user_payload(1)),
        {**envelope(USER_Q, "create", user_payload(1)), "occurred_at": "yesterday"},
        {**envelope(USER_Q, "create", user_payload(1)), "payload": []},
        envelope(USER_Q, "create", {**user_payload(1), "user_id": "1"}),
        envelope(USER_Q, "create", {"user_id": 1, "email": "a@example.com"}),
        envelope(EMP_Q, "create", employee_payload(1, company_id="MA123456")),
        envelope(EMP_Q, "create", employee_payload(1, email="")),
    ],
)
def test_malformed_events_raise_invalid_event(event: Any) -> None:
    with pytest.raises(InvalidEvent):
        handle_event(event)
    assert not ProcessedEvent.objects.exists()
    assert not HDTSUser.objects.exists()
    assert not ExternalEmployee.objects.exists()


def test_email_clash_newer_event_wins() -> None:
    assert handle_event(envelope(USER_Q, "create", user_payload(1, email="shared@example.com"), minutes=0))
    assert handle_event(envelope(USER_Q, "create", user_payload(2, email="shared@example.com"), minutes=5))
    assert HDTSUser.objects.get(hdts_user_id=2).email == "shared@example.com"
    assert HDTSUser.objects.get(hdts_user_id=1).email == "hdts-user-id-1@released.invalid"


def test_email_clash_older_event_loses() -> None:
    handle_event(envelope(EMP_Q, "create", employee_payload(1, email="shared@example.com"), minutes=5))
    older = envelope(EMP_Q, "create", employee_payload(2, email="shared@example.com"), minutes=0)
    assert handle_event(older) == "applied"
    assert ExternalEmployee.objects.get(external_employee_id=1).email == "shared@example.com"
    loser = ExternalEmployee.objects.get(external_employee_id=2)
    assert loser.email == "external-employee-id-2@released.invalid"
    handle_event(envelope(EMP_Q, "update", employee_payload(2, email="own@example.com"), minutes=9))
    loser.refresh_from_db()
    assert loser.email == "own@example.com"


def test_email_swap_between_rows_settles() -> None:
    handle_event(envelope(USER_Q, "create", user_payload(1, email="a@example.com"), minutes=0))
    handle_event(envelope(USER_Q, "create", user_payload(2, email="b@example.com"), minutes=0))
    handle_event(envelope(USER_Q, "update", user_payload(1, email="b@example.com"), minutes=1))
    handle_event(envelope(USER_Q, "update", user_payload(2, email="a@example.com"), minutes=2))
    emails = dict(HDTSUser.objects.values_list("hdts_user_id", "email"))
    assert emails == {1: "b@example.com", 2: "a@example.com"}
