"""Test the workflow seed: prerequisites, idempotence, determinism, atomicity."""

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from workflows import seeding
from workflows.handlers import handle_event
from workflows.models import Role, RoleUser, SeedMark, Step, Transition, Workflow
from workflows.seeding import is_initialized

from .factories import link_event, role_event

EXPECTED_COUNTS = {"Role": 4, "RoleUser": 9, "Workflow": 5, "Step": 11, "Transition": 9}


def _seed_json(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("seed", *args, "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def _snapshot() -> list[tuple[Any, ...]]:
    """Return the seeded rows by natural key (no surrogate ids)."""
    rows: list[tuple[Any, ...]] = []
    for wf in Workflow.objects.order_by("name"):
        rows.append(
            (
                wf.name,
                wf.category,
                wf.sub_category,
                wf.department,
                wf.owner_user_id,
                wf.status,
                wf.urgent_sla,
                wf.high_sla,
                wf.medium_sla,
                wf.low_sla,
            )
        )
    for step in Step.objects.order_by("workflow__name", "order"):
        rows.append(
            (
                step.workflow.name,
                step.name,
                step.role_id,
                step.order,
                step.is_start,
                step.is_end,
                step.instruction,
            )
        )
    for tr in Transition.objects.order_by("workflow__name", "from_step__order", "to_step__order"):
        rows.append((tr.workflow.name, tr.from_step.name, tr.to_step.name, tr.name))
    return rows


@pytest.mark.django_db
def test_seed_without_roles_fails_and_writes_nothing() -> None:
    with pytest.raises(CommandError, match=r"^Roles Admin, Asset Manager, Budget Manager are missing"):
        call_command("seed", stdout=StringIO())
    assert not Workflow.objects.exists()
    assert not SeedMark.objects.exists()


@pytest.mark.django_db
def test_seed_without_admin_user_fails() -> None:
    for role_id, name in ((2, "Admin"), (5, "Asset Manager"), (6, "Budget Manager")):
        handle_event(role_event(role_id, name))
    handle_event(link_event(5, 2, is_active=False))
    with pytest.raises(CommandError, match="No active user holds the Admin role"):
        call_command("seed_workflows", stdout=StringIO())
    assert not Workflow.objects.exists()


@pytest.mark.django_db
def test_seed_rejects_a_bad_seed_before_writing(synced_auth: object) -> None:
    for bad in ("abc", "-1", "1.5"):
        with pytest.raises(CommandError, match="--seed must be"):
            call_command("seed", "--seed", bad, stdout=StringIO())
    assert not Workflow.objects.exists()


@pytest.mark.django_db
def test_default_seed_counts_and_initialized(synced_auth: object) -> None:
    report = _seed_json()
    assert report["service"] == "workflow"
    assert report["options"] == {"seed": 7}
    assert report["counts"] == EXPECTED_COUNTS
    assert report["changed"] is True
    assert report["models"]["Workflow"] == {
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "repaired": 0,
        "kept": 0,
    }
    assert report["models"]["Step"]["created"] == 11
    assert report["models"]["Transition"]["created"] == 9
    for workflow in Workflow.objects.all():
        assert workflow.status == Workflow.Status.INITIALIZED
        assert is_initialized(workflow)
        assert workflow.owner_user_id == 2  # lowest active Admin user
    assert SeedMark.objects.get().options == {"seed": 7}


@pytest.mark.django_db
def test_three_step_transitions(synced_auth: object) -> None:
    call_command("seed_workflows", stdout=StringIO())
    workflow = Workflow.objects.get(name="New Budget Proposal Workflow")
    edges = sorted((tr.from_step.name, tr.to_step.name, tr.name) for tr in workflow.transitions.all())
    assert edges == [
        ("Resolve", "Finalize", "Approve"),
        ("Resolve", "Triage", "Reject"),
        ("Triage", "Resolve", "Submit"),
    ]
    assert workflow.steps.get(name="Resolve").role.name == "Budget Manager"
    one_step = Workflow.objects.get(name="IT Support Access Request Workflow").steps.get()
    assert (one_step.is_start, one_step.is_end, one_step.role.name) == (True, True, "Asset Manager")


@pytest.mark.django_db
def test_second_run_changes_nothing(synced_auth: object) -> None:
    _seed_json()
    before = _snapshot()
    mark_time = SeedMark.objects.get().updated_at
    second = _seed_json()
    assert second["changed"] is False
    assert second["models"]["Workflow"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 5,
        "repaired": 0,
        "kept": 0,
    }
    assert second["models"]["Step"] == {"created": 0, "updated": 0, "unchanged": 11, "repaired": 0, "kept": 0}
    assert _snapshot() == before
    assert SeedMark.objects.get().updated_at == mark_time
    out = StringIO()
    call_command("seed", stdout=out)
    assert "Nothing to do: already seeded." in out.getvalue()


@pytest.mark.django_db
def test_other_seed_updates_instructions_and_back(synced_auth: object) -> None:
    _seed_json()
    first = _snapshot()
    other = _seed_json("--seed", "8")
    assert other["models"]["Step"]["updated"] > 0
    assert other["models"]["Step"]["created"] == 0
    assert SeedMark.objects.get().options == {"seed": 8}
    assert _snapshot() != first
    _seed_json("--seed", "7")
    assert _snapshot() == first


@pytest.mark.django_db
def test_same_seed_same_rows_after_reset(synced_auth: object) -> None:
    _seed_json("--seed", "11")
    first = _snapshot()
    Workflow.objects.all().delete()
    SeedMark.objects.all().delete()
    _seed_json("--seed", "11")
    assert _snapshot() == first


@pytest.mark.django_db
def test_failure_mid_seed_writes_nothing(synced_auth: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(seeding, "_seed_transitions", explode)
    with pytest.raises(RuntimeError, match="injected failure"):
        call_command("seed", stdout=StringIO())
    assert not Workflow.objects.exists()
    assert not Step.objects.exists()
    assert not SeedMark.objects.exists()
    assert (Role.objects.count(), RoleUser.objects.count()) == (4, 9)


@pytest.mark.django_db
def test_status_repaired_on_rerun(synced_auth: object) -> None:
    _seed_json()
    Workflow.objects.filter(name="Asset Check In Workflow").update(status="draft")
    report = _seed_json()
    assert report["models"]["Workflow"] == {
        "created": 0,
        "updated": 1,
        "unchanged": 4,
        "repaired": 0,
        "kept": 0,
    }
    assert report["changed"] is True


@pytest.mark.django_db
def test_is_initialized_detects_broken_graphs(synced_auth: object) -> None:
    _seed_json()
    workflow = Workflow.objects.get(name="Asset Check Out Workflow")
    workflow.transitions.filter(name="Approve").delete()
    assert not is_initialized(workflow)
    problems = seeding.initialization_problems(workflow)
    assert problems == ["steps not reachable from the start: Finalize"]
    workflow.steps.filter(name="Triage").update(is_start=False)
    assert "it has 0 start steps instead of exactly one" in seeding.initialization_problems(workflow)
