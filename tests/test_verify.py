from __future__ import annotations

from devstack.options import SeedOptions
from devstack.state import ServiceState
from devstack.verify import expected_counts, mismatches


def states_for(options: SeedOptions) -> dict[str, ServiceState]:
    return {
        name: ServiceState(name, counts=dict(counts), last_seed={})
        for name, counts in expected_counts(options).items()
    }


def test_default_expected_state_is_domain_table() -> None:
    expected = expected_counts(SeedOptions())
    assert expected["auth"] == {"System": 4, "Role": 8, "User": 14, "UserSystemRole": 13, "Employee": 8}
    assert expected["workflow"] == {"Role": 4, "RoleUser": 9, "Workflow": 5, "Step": 11, "Transition": 9}
    assert expected["helpdesk"] == {"Employee": 50, "Ticket": 20, "HDTSUser": 6, "ExternalEmployee": 8}


def test_counts_follow_the_options() -> None:
    expected = expected_counts(SeedOptions(auth_employees=5, employees=7, tickets=3))
    assert expected["auth"]["Employee"] == 13
    assert expected["helpdesk"]["ExternalEmployee"] == 13
    assert expected["helpdesk"]["Employee"] == 7


def test_matching_state_has_no_mismatch() -> None:
    assert mismatches(states_for(SeedOptions()), SeedOptions()) == []


def test_each_mismatch_is_named() -> None:
    states = states_for(SeedOptions())
    assert states["helpdesk"].counts is not None
    states["helpdesk"].counts["Ticket"] = 19
    states["auth"].pending_events = {"hdts.user.sync": 2}
    states["workflow"].problems = ["Workflow 'X' is not initialized."]
    states["workflow"].integrity_ok = False
    del states["helpdesk"].counts["HDTSUser"]
    problems = mismatches(states, SeedOptions())
    assert "helpdesk: Ticket has 19 rows, expected 20." in problems
    assert "helpdesk: HDTSUser has None rows, expected 6." in problems
    assert "auth: 2 sync event(s) not delivered; run 'inv sync'." in problems
    assert "workflow: Workflow 'X' is not initialized." in problems
    assert len(problems) == 4


def test_missing_database_is_reported() -> None:
    states = states_for(SeedOptions())
    states["auth"] = ServiceState("auth", exists=False)
    assert mismatches(states, SeedOptions()) == ["auth: the database does not exist; run 'inv seed-all'."]
