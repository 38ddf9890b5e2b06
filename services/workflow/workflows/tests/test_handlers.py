"""Test the sync consumer: idempotence, ordering tolerance, deletes, validation."""

from datetime import timedelta

import pytest

from workflows.handlers import EventConflict, InvalidEvent, handle_event
from workflows.models import DeferredEvent, ProcessedEvent, Role, RoleUser, Step, Workflow

from .factories import envelope, link_event, role_event

pytestmark = pytest.mark.django_db


def test_role_then_link_are_applied() -> None:
    assert handle_event(role_event(2, "Admin")) == "applied"
    assert handle_event(link_event(5, 2, full_name="Ana Reyes")) == "applied"
    link = RoleUser.objects.get(role_id=2, user_id=5)
    assert (link.user_full_name, link.is_active, link.settings) == (
        "Ana Reyes",
        True,
        {"is_deployed": True},
    )
    assert ProcessedEvent.objects.filter(outcome="applied").count() == 2


def test_duplicate_event_changes_nothing() -> None:
    event = role_event(2, "Admin")
    assert handle_event(event) == "applied"
    Role.objects.filter(pk=2).update(name="Locally renamed")
    assert handle_event(event) == "duplicate"
    assert Role.objects.get(pk=2).name == "Locally renamed"
    assert ProcessedEvent.objects.count() == 1


def test_link_before_role_is_deferred_then_applied() -> None:
    link = link_event(7, 5, full_name="Carla Diaz", seconds=10)
    assert handle_event(link) == "deferred"
    assert not RoleUser.objects.exists()
    assert DeferredEvent.objects.get().waiting_for == 5
    assert handle_event(link) == "duplicate"  # a redelivery while parked
    assert handle_event(role_event(5, "Asset Manager", seconds=0)) == "applied"
    assert RoleUser.objects.get(role_id=5, user_id=7).user_full_name == "Carla Diaz"
    assert not DeferredEvent.objects.exists()
    assert ProcessedEvent.objects.get(pk=link["id"]).outcome == "applied"


def test_parked_events_replay_in_time_order() -> None:
    update = link_event(7, 5, full_name="New Name", action="update", seconds=20)
    create = link_event(7, 5, full_name="Old Name", seconds=10)
    assert handle_event(update) == "deferred"
    assert handle_event(create) == "deferred"
    handle_event(role_event(5, "Asset Manager"))
    assert RoleUser.objects.get(role_id=5, user_id=7).user_full_name == "New Name"


def test_parked_create_then_delete_leaves_no_link() -> None:
    assert handle_event(link_event(7, 5, seconds=10)) == "deferred"
    assert handle_event(link_event(7, 5, action="delete", seconds=20)) == "deferred"
    handle_event(role_event(5, "Asset Manager"))
    assert not RoleUser.objects.exists()
    assert not DeferredEvent.objects.exists()


def test_delete_of_unknown_link_without_role_is_a_no_op() -> None:
    assert handle_event(link_event(7, 99, action="delete")) == "applied"
    assert not DeferredEvent.objects.exists()


def test_delete_link_and_role() -> None:
    handle_event(role_event(2, "Admin"))
    handle_event(link_event(5, 2, seconds=1))
    handle_event(link_event(6, 2, seconds=1))
    assert handle_event(link_event(5, 2, action="delete", seconds=2)) == "applied"
    assert list(RoleUser.objects.values_list("user_id", flat=True)) == [6]
    assert handle_event(role_event(2, "Admin", action="delete", seconds=3)) == "applied"
    assert not Role.objects.exists()
    assert not RoleUser.objects.exists()  # links go with their role


def test_delete_of_role_used_by_steps_keeps_it(caplog: pytest.LogCaptureFixture) -> None:
    handle_event(role_event(2, "Admin"))
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
    Step.objects.create(workflow=workflow, name="Triage", role_id=2, is_start=True, is_end=True)
    event = role_event(2, "Admin", action="delete", seconds=5)
    assert handle_event(event) == "applied"
    assert Role.objects.filter(pk=2).exists()
    assert ProcessedEvent.objects.get(pk=event["id"]).detail == "kept-protected"
    assert "still use it" in caplog.text


def test_older_update_after_newer_is_skipped() -> None:
    handle_event(role_event(2, "Admin", seconds=0))
    assert handle_event(role_event(2, "Administrators", action="update", seconds=20)) == "applied"
    stale = role_event(2, "Admin (old)", action="update", seconds=10)
    assert handle_event(stale) == "applied"
    assert Role.objects.get(pk=2).name == "Administrators"
    assert ProcessedEvent.objects.get(pk=stale["id"]).detail == "skipped-stale"

    handle_event(link_event(5, 2, full_name="Newer", action="update", seconds=30))
    handle_event(link_event(5, 2, full_name="Older", action="update", seconds=25))
    assert RoleUser.objects.get(user_id=5).user_full_name == "Newer"


def test_other_queue_is_ignored_and_not_recorded() -> None:
    event = envelope("hdts.user.sync", "create", {"user_id": 9})
    assert handle_event(event) == "ignored"
    assert not ProcessedEvent.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"id": "not-a-uuid"},
        {"action": "upsert"},
        {"occurred_at": "yesterday"},
        {"payload": []},
        {"payload": {"role_id": "2", "name": "Admin", "system": "tts"}},
        {"payload": {"role_id": 2, "system": "tts"}},
        {"payload": {"role_id": True, "name": "Admin", "system": "tts"}},
    ],
)
def test_malformed_event_raises_invalid_event(change: dict[str, object]) -> None:
    event = {**role_event(2, "Admin"), **change}
    with pytest.raises(InvalidEvent):
        handle_event(event)
    assert not ProcessedEvent.objects.exists()
    assert not Role.objects.exists()


def test_non_object_event_raises_invalid_event() -> None:
    with pytest.raises(InvalidEvent, match="JSON object"):
        handle_event(["not", "an", "object"])  # type: ignore[arg-type]


def test_delete_needs_only_the_key() -> None:
    handle_event(role_event(2, "Admin"))
    event = envelope("tts.role.sync", "delete", {"role_id": 2}, seconds=1)
    assert handle_event(event) == "applied"
    assert not Role.objects.exists()


def test_role_name_taken_by_another_id_is_a_conflict() -> None:
    handle_event(role_event(2, "Admin"))
    event = role_event(3, "Admin", seconds=1)
    with pytest.raises(EventConflict):
        handle_event(event)
    assert not ProcessedEvent.objects.filter(pk=event["id"]).exists()
    assert list(Role.objects.values_list("role_id", flat=True)) == [2]
