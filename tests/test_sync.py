from __future__ import annotations

from devstack.state import ServiceState
from devstack.sync import SyncReport, needs_rebuild, needs_sync


def auth(delivered: int = 27, pending: int = 0) -> ServiceState:
    return ServiceState("auth", pending_events={"hdts.user.sync": pending}, delivered_events=delivered)


def consumer(name: str, processed: int, exists: bool = True) -> ServiceState:
    return ServiceState(name, processed_events=processed, exists=exists)


def test_an_empty_mirror_is_rebuilt_only_after_auth_delivered() -> None:
    assert needs_rebuild(auth(), consumer("helpdesk", 0))
    assert not needs_rebuild(auth(), consumer("helpdesk", 12))
    assert not needs_rebuild(auth(delivered=0, pending=27), consumer("helpdesk", 0))
    assert not needs_rebuild(auth(), consumer("helpdesk", 0, exists=False))


def test_needs_sync_for_pending_events_or_a_reset_consumer() -> None:
    synced = {"workflow": consumer("workflow", 13), "helpdesk": consumer("helpdesk", 14)}
    assert not needs_sync({"auth": auth(), **synced})
    assert needs_sync({"auth": auth(pending=2), **synced})
    assert needs_sync({"auth": auth(), **synced, "helpdesk": consumer("helpdesk", 0)})


def test_summary_names_rebuilt_consumers() -> None:
    report = SyncReport(exported=3, applied={"helpdesk": {"applied": 14}}, rebuilt=["helpdesk"], delivered=3)
    assert report.summary() == (
        "3 pending event(s); helpdesk applied 14, duplicate 0, deferred 0 (rebuilt from a snapshot); "
        "3 marked delivered"
    )


def test_broker_sync_starts_only_the_workers_with_pending_events() -> None:
    from devstack.broker import workers_for
    from devstack.state import UNCOUNTED

    names = [w.name for w in workers_for({"hdts.employee.sync": 9991, "tts.role.sync": 0})]
    assert names == ["helpdesk-worker"]
    assert [w.name for w in workers_for({UNCOUNTED: 1})] == [
        "workflow-worker",
        "helpdesk-worker",
    ]
