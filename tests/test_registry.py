from __future__ import annotations

import pytest

from devstack import registry
from devstack.errors import UsageError


def test_names_follow_the_seed_all_order() -> None:
    assert registry.NAMES == ("auth", "workflow", "helpdesk")


def test_every_queue_has_exactly_one_consumer() -> None:
    consumed = [q for s in registry.consumers() for q in s.consumes]
    assert sorted(consumed) == sorted(registry.QUEUES)


def test_unknown_service_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match="Unknown service 'billing': choose one of auth, workflow, helpdesk"):
        registry.get("billing")


def test_needs_point_at_earlier_services() -> None:
    seen: set[str] = set()
    for service in registry.SERVICES:
        assert set(service.needs) <= seen
        seen.add(service.name)


def test_seed_flag_defaults_match_the_seed_options() -> None:
    from devstack.options import SeedOptions

    defaults = SeedOptions()
    for service in registry.SERVICES:
        for flag in service.seed_flags:
            assert getattr(defaults, flag.key) == flag.default
