from __future__ import annotations

from pathlib import Path

import pytest

from devstack import registry
from devstack.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def test_the_table_is_consistent() -> None:
    assert registry.check() == []


def test_names_follow_the_dependency_order() -> None:
    assert registry.NAMES == ("auth", "workflow", "helpdesk")
    assert registry.publisher().name == registry.PUBLISHER


def test_every_queue_has_one_producer_and_one_consumer_by_name() -> None:
    consumed = [q for s in registry.consumers() for q in s.consumes]
    assert sorted(consumed) == sorted(registry.QUEUE_NAMES)
    assert registry.get("workflow").consumes == ("tts.role.sync", "tts.user_system_role.sync")
    assert registry.publisher().publishes == registry.QUEUE_NAMES


def test_unknown_service_names_the_known_ones() -> None:
    with pytest.raises(UsageError, match="Unknown service 'billing': choose one of auth, workflow, helpdesk"):
        registry.get("billing")


def test_expected_counts_follow_the_flags() -> None:
    default = registry.expected_counts()
    assert default["auth"]["Employee"] == registry.FIXED_EMPLOYEES
    assert default["helpdesk"]["Ticket"] == registry.seed_flag("tickets").default
    chosen = registry.expected_counts({"auth_employees": 5, "employees": 7, "tickets": 3})
    assert chosen["auth"]["Employee"] == chosen["helpdesk"]["ExternalEmployee"] == 13
    assert chosen["helpdesk"]["Employee"] == 7 and chosen["helpdesk"]["Ticket"] == 3


def test_check_finds_a_broken_row(monkeypatch: pytest.MonkeyPatch) -> None:
    billing = registry.Service("billing", rows=(registry.Rows("Invoice", 1, plus="x"),), needs=("ledger",))
    bad = (*registry.SERVICES, billing)
    monkeypatch.setattr(registry, "SERVICES", bad)
    monkeypatch.setattr(registry, "NAMES", (*registry.NAMES, "billing"))
    assert registry.check() == [
        "billing needs ledger, which is not listed before it.",
        "billing.Invoice adds the unknown flag x.",
    ]


def test_runner_names_the_publisher_seed_counts_and_queues_once() -> None:
    """Grep the runner: the registry is the only place that spells these out."""
    sources = [REPO / "tasks.py", REPO / "noxfile.py", *sorted((REPO / "devstack").glob("*.py"))]
    texts = {p.name: p.read_text(encoding="utf-8") for p in sources}
    for needle in [f'"{registry.PUBLISHER}"', *(f'"{q}"' for q in registry.QUEUE_NAMES)]:
        where = [name for name, text in texts.items() if needle in text]
        assert where == ["registry.py"], (needle, where)
        assert texts["registry.py"].count(needle) == 1, needle
    for needle in ("DEFAULT_SEED = ", "FIXED_EMPLOYEES = ", 'Rows("Ticket"'):
        assert sum(text.count(needle) for text in texts.values()) == 1, needle
