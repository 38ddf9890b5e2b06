"""The steps, with the state cache filled in by hand: decisions without service processes."""

from __future__ import annotations

import pytest

from devstack import fastpath, registry
from devstack import stack as stack_mod
from devstack.config import Settings
from devstack.console import Console
from devstack.errors import VerifyError
from devstack.mirrors import MirrorReport
from devstack.options import SeedOptions
from devstack.stack import Stack, describe_seed
from devstack.state import ServiceState


@pytest.fixture(autouse=True)
def mirrors_in_step(monkeypatch: pytest.MonkeyPatch) -> dict[str, MirrorReport]:
    """Mirror reports without service processes; a test may put drift in them."""
    reports: dict[str, MirrorReport] = {}
    monkeypatch.setattr(stack_mod.mirrors, "reconcile", lambda *args, **kwargs: reports)
    return reports


@pytest.fixture(autouse=True)
def no_dead_letters(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, object]]:
    dead: dict[str, dict[str, object]] = {}
    monkeypatch.setattr(stack_mod, "dead_letters", lambda settings: dead)
    return dead


def stack_with(settings: Settings, options: SeedOptions) -> Stack:
    stack = Stack(settings, Console())
    expected = registry.expected_counts(options.counts)
    for service in registry.SERVICES:
        state = ServiceState(service.name, counts=dict(expected[service.name]))
        state.last_seed = options.for_service(service)
        stack.cache._states[service.name] = state
        stack.cache._fresh.add(service.name)
    return stack


def test_a_seed_with_the_same_options_is_skipped(settings: Settings) -> None:
    options = SeedOptions()
    stack = stack_with(settings, options)
    result = stack.seed(registry.get("helpdesk"), options)
    assert result.status == "skipped" and "already seeded" in result.detail


def test_verify_passes_on_the_expected_state(settings: Settings) -> None:
    stack = stack_with(settings, SeedOptions())
    assert stack.verify(SeedOptions()).status == "ran"


def test_a_failed_verify_drops_the_fast_path_record(settings: Settings) -> None:
    stack = stack_with(settings, SeedOptions())
    record = settings.state_dir() / fastpath.RECORD
    record.parent.mkdir(parents=True)
    record.write_text("{}", encoding="utf-8")
    stack.cache._states["helpdesk"].counts = {"Employee": 50}
    with pytest.raises(VerifyError):
        stack.verify(SeedOptions())
    assert not record.exists()
    assert stack.steps[-1].status == "failed"


def test_describe_seed_explains_created_and_updated_rows() -> None:
    report = {"changed": True, "models": {"Ticket": {"created": 3, "updated": 2}, "Employee": {}}}
    assert describe_seed(report) == "Ticket 3 created, 2 updated"
    assert describe_seed({"changed": False}) == "nothing changed"


def test_missing_seeded_rows_make_the_seed_run_again(settings: Settings) -> None:
    options = SeedOptions()
    stack = stack_with(settings, options)
    stack.cache._states["helpdesk"].seeded = {"Ticket": {"expected": 20, "missing": 2, "extra": 0}}
    with pytest.raises(Exception, match="virtualenv"):  # it tries: there is no service here
        stack.seed(registry.get("helpdesk"), options)


def test_people_rows_are_information_and_drift_is_a_problem(
    settings: Settings, mirrors_in_step: dict[str, MirrorReport]
) -> None:
    stack = stack_with(settings, SeedOptions())
    stack.cache._states["helpdesk"].seeded = {"Ticket": {"expected": 20, "missing": 0, "extra": 3}}
    found = stack.check(SeedOptions())
    assert found.problems == [] and found.info == ["helpdesk: 3 Ticket row(s) made by people, kept."]
    mirrors_in_step["helpdesk"] = MirrorReport("helpdesk", {"hdts.employee.sync": {"deleted": 25}})
    assert stack.check(SeedOptions()).problems == [
        "helpdesk: mirror rows out of step with auth: 25 whose source is gone; run 'inv sync'."
    ]


def test_dead_letters_fail_verify_with_their_reason(
    settings: Settings, no_dead_letters: dict[str, dict[str, object]]
) -> None:
    stack = stack_with(settings, SeedOptions())
    no_dead_letters["hdts.user.sync"] = {"count": 2, "reason": "rejected: OperationalError: locked"}
    assert stack.check(SeedOptions()).problems == [
        "hdts.user.sync: 2 event(s) dead-lettered (rejected: OperationalError: locked); fix the cause, "
        "then 'inv sync --via broker' re-delivers them."
    ]
    stack.offline = True
    assert stack.check(SeedOptions()).problems == []
