"""seed-all's pipeline: the order of its steps comes from the registry."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devstack import pipeline, registry


def test_default_pipeline_order() -> None:
    assert pipeline.steps() == [
        "check-rabbit",
        "install",
        "migrate.auth",
        "migrate.workflow",
        "migrate.helpdesk",
        "seed.auth",
        "sync",
        "reconcile",
        "seed.workflow",
        "seed.helpdesk",
        "verify",
    ]


def test_sync_runs_before_the_first_service_needing_the_publisher(monkeypatch: pytest.MonkeyPatch) -> None:
    billing = registry.Service("billing", rows=(registry.Rows("Invoice", 3),), needs=(registry.PUBLISHER,))
    helpdesk, workflow = registry.get("helpdesk"), registry.get("workflow")
    reordered = (registry.publisher(), helpdesk, billing, replace(workflow, needs=()))
    monkeypatch.setattr(registry, "SERVICES", reordered)
    order = ["seed.auth", "seed.helpdesk", "sync", "reconcile", "seed.billing", "seed.workflow", "verify"]
    assert pipeline.seed_steps() == order


def test_without_dependants_the_sync_comes_last_before_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    alone = tuple(replace(s, needs=()) for s in registry.SERVICES)
    monkeypatch.setattr(registry, "SERVICES", alone)
    assert pipeline.seed_steps() == [
        "seed.auth",
        "seed.workflow",
        "seed.helpdesk",
        "sync",
        "reconcile",
        "verify",
    ]
