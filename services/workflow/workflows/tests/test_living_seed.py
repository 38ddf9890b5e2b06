"""Test the seed on a living database: deleted rows come back, edits stay, people's rows stay."""

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from workflows.models import Role, SeedMark, Step, Transition, Workflow

from .test_seeding import _snapshot

pytestmark = pytest.mark.django_db
CHECK_IN = "Asset Check In Workflow"


def seed(*args: str) -> dict[str, Any]:
    """Run ``seed --json`` and return its report."""
    out = StringIO()
    call_command("seed", *args, "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def seeded(*args: str) -> dict[str, Any]:
    """Run ``stack_state --json`` and return its ``seeded`` part."""
    out = StringIO()
    call_command("stack_state", "--json", *args, stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())["seeded"]
    return report


def people_workflow() -> Workflow:
    """Create a workflow with one step and a self-transition, as a person would in the admin."""
    workflow = Workflow.objects.create(
        name="Laptop Repair Workflow",
        category="IT Support",
        sub_category="Hardware Issue",
        department="IT Department",
        owner_user_id=2,
        urgent_sla=timedelta(hours=1),
        high_sla=timedelta(hours=2),
        medium_sla=timedelta(hours=3),
        low_sla=timedelta(hours=4),
    )
    step = Step.objects.create(
        workflow=workflow, name="Fix", role=Role.objects.get(name="Admin"), is_start=True
    )
    Transition.objects.create(workflow=workflow, from_step=step, to_step=step, name="Retry")
    return workflow


def test_seeded_numbers_after_a_seed(synced_auth: object) -> None:
    assert seeded() is None
    seed()
    assert seeded("--edits") == {
        "Workflow": {"expected": 5, "missing": 0, "extra": 0, "edited": 0},
        "Step": {"expected": 11, "missing": 0, "extra": 0, "edited": 0},
        "Transition": {"expected": 9, "missing": 0, "extra": 0, "edited": 0},
    }


def test_deleted_step_and_its_transitions_come_back(synced_auth: object) -> None:
    seed()
    before = _snapshot()
    Step.objects.filter(workflow__name=CHECK_IN, name="Resolve").delete()  # cascades 3 transitions
    assert seeded() == {
        "Workflow": {"expected": 5, "missing": 0, "extra": 0},
        "Step": {"expected": 11, "missing": 1, "extra": 0},
        "Transition": {"expected": 9, "missing": 3, "extra": 0},
    }
    report = seed()
    assert report["models"]["Step"]["created"] == 1
    assert report["models"]["Transition"]["created"] == 3
    assert report["changed"] is True
    assert _snapshot() == before
    assert seeded()["Transition"]["missing"] == 0


def test_deleted_transition_and_workflow_come_back(synced_auth: object) -> None:
    seed()
    before = _snapshot()
    Transition.objects.filter(workflow__name="New Budget Proposal Workflow", name="Reject").delete()
    Workflow.objects.filter(name=CHECK_IN).delete()
    assert seeded()["Workflow"]["missing"] == 1
    assert seeded()["Transition"]["missing"] == 4
    report = seed()
    assert report["models"]["Workflow"]["created"] == 1
    assert report["models"]["Step"]["created"] == 3
    assert report["models"]["Transition"]["created"] == 4
    assert _snapshot() == before
    assert Workflow.objects.get(name=CHECK_IN).status == Workflow.Status.INITIALIZED


def test_edits_are_kept_then_repaired(synced_auth: object) -> None:
    seed()
    before = _snapshot()
    Step.objects.filter(workflow__name=CHECK_IN, name="Triage").update(instruction="Our own words.")
    Workflow.objects.filter(name=CHECK_IN).update(department="Facilities")
    assert seeded("--edits")["Step"]["edited"] == 1
    out = StringIO()
    call_command("seed", stdout=out)
    assert "Kept 2 seeded rows people edited; pass --repair" in out.getvalue()
    report = seed()
    assert report["changed"] is False
    assert report["models"]["Step"] == {"created": 0, "updated": 0, "unchanged": 10, "repaired": 0, "kept": 1}
    assert report["models"]["Workflow"]["kept"] == 1
    assert Step.objects.get(workflow__name=CHECK_IN, name="Triage").instruction == "Our own words."
    assert Workflow.objects.get(name=CHECK_IN).department == "Facilities"
    repaired = seed("--repair")
    assert repaired["models"]["Step"]["repaired"] == 1
    assert repaired["models"]["Workflow"]["repaired"] == 1
    assert _snapshot() == before
    assert seeded("--edits")["Step"]["edited"] == 0


def test_other_seed_updates_untouched_steps_but_keeps_edits(synced_auth: object) -> None:
    seed()
    Step.objects.filter(workflow__name=CHECK_IN, name="Triage").update(instruction="Our own words.")
    report = seed("--seed", "8")
    assert report["models"]["Step"]["kept"] == 1
    assert report["models"]["Step"]["updated"] > 0
    assert Step.objects.get(workflow__name=CHECK_IN, name="Triage").instruction == "Our own words."
    assert SeedMark.objects.get().options == {"seed": 8}
    assert seeded("--edits")["Step"]["edited"] == 1
    seed("--seed", "8", "--repair")
    assert Step.objects.get(workflow__name=CHECK_IN, name="Triage").instruction != "Our own words."
    assert seeded("--edits")["Step"]["edited"] == 0


def test_people_rows_are_reported_and_never_touched(synced_auth: object) -> None:
    seed()
    mine = people_workflow()
    extra_step = Step.objects.create(workflow=Workflow.objects.get(name=CHECK_IN), name="Audit", order=9)
    assert seeded() == {
        "Workflow": {"expected": 5, "missing": 0, "extra": 1},
        "Step": {"expected": 11, "missing": 0, "extra": 2},
        "Transition": {"expected": 9, "missing": 0, "extra": 1},
    }
    for args in ((), ("--repair",), ("--seed", "3", "--repair")):
        report = seed(*args)
        assert report["counts"]["Workflow"] == 6
        mine.refresh_from_db()
        extra_step.refresh_from_db()
        assert (mine.department, mine.steps.get().name) == ("IT Department", "Fix")
        assert mine.transitions.get().name == "Retry"
        assert (extra_step.name, extra_step.order, extra_step.instruction) == ("Audit", 9, "")


def test_without_a_seed_mark_differing_rows_are_kept(synced_auth: object) -> None:
    seed()
    SeedMark.objects.all().delete()
    Step.objects.filter(workflow__name=CHECK_IN, name="Triage").update(instruction="Our own words.")
    assert seed()["models"]["Step"]["kept"] == 1
    assert seed("--repair")["models"]["Step"]["repaired"] == 1
