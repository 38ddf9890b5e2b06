"""The state cache: one read per service, re-read only after a write when asked for fresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import cache as cache_mod
from devstack import registry
from devstack.config import Settings
from devstack.state import ServiceState


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []

    def read(settings: Settings, service: registry.Service) -> ServiceState:
        seen.append(service.name)
        return ServiceState(service.name, pending_events={"hdts.user.sync": 2}, last_seed={"seed": 7})

    def read_all(settings: Settings, services: tuple[registry.Service, ...]) -> dict[str, ServiceState]:
        return {s.name: read(settings, s) for s in services}

    monkeypatch.setattr(cache_mod, "read", read)
    monkeypatch.setattr(cache_mod, "read_all", read_all)
    return seen


def test_reads_each_service_once(tmp_path: Path, reads: list[str]) -> None:
    cache = cache_mod.StateCache(Settings(root=tmp_path))
    cache.states()
    cache.states()
    cache.state(registry.publisher())
    assert sorted(reads) == sorted(registry.NAMES)


def test_fresh_rereads_only_what_a_step_touched(tmp_path: Path, reads: list[str]) -> None:
    cache = cache_mod.StateCache(Settings(root=tmp_path))
    cache.states()
    cache.touched(registry.get("helpdesk")).counts = {"Ticket": 1}
    reads.clear()
    cache.states(fresh=True)
    assert reads == ["helpdesk"]


def test_a_complete_sync_updates_the_publisher_without_a_read(tmp_path: Path, reads: list[str]) -> None:
    cache = cache_mod.StateCache(Settings(root=tmp_path))
    cache.states()
    cache.synced(delivered_all=True)
    publisher = cache.state(registry.publisher())
    assert publisher.pending_events == {} and publisher.delivered_events == 2
    assert all(cache.state(c).processed_events == 1 for c in registry.consumers())
    cache.synced(delivered_all=False)  # a partial sync: the publisher must be read again
    reads.clear()
    cache.state(registry.publisher())
    assert reads == [registry.PUBLISHER]
    assert cache.last_seeds()[registry.PUBLISHER] == {"seed": 7}
