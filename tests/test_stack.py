"""The steps, with the state cache filled in by hand: decisions without service processes."""

from __future__ import annotations

import pytest

from devstack import fastpath, registry
from devstack.config import Settings
from devstack.console import Console
from devstack.errors import VerifyError
from devstack.options import SeedOptions
from devstack.stack import Stack, describe_seed
from devstack.state import ServiceState


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
    assert describe_seed(report) == "Ticket +3 ~2"
    assert describe_seed({"changed": False}) == "nothing changed"
