"""Seed the five core TTS workflows deterministically and report what changed."""

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Min

from .models import Role, RoleUser, SeedMark, Step, Transition, Workflow

SERVICE = "workflow"
DEFAULT_SEED = 7
MAX_SEED = 2**63 - 1
ADMIN_ROLE = "Admin"
REQUIRED_ROLES = ("Admin", "Asset Manager", "Budget Manager")
COUNTED_MODELS: dict[str, Any] = {
    "Role": Role,
    "RoleUser": RoleUser,
    "Workflow": Workflow,
    "Step": Step,
    "Transition": Transition,
}
SLAS = {
    "urgent_sla": timedelta(hours=4),
    "high_sla": timedelta(hours=8),
    "medium_sla": timedelta(days=1),
    "low_sla": timedelta(days=3),
}
INSTRUCTION_POOL = (
    "Review the ticket details and confirm the request is complete.",
    "Check the attached documents against the department policy.",
    "Verify the requester's department and the approving manager.",
    "Contact the requester if any information is missing.",
    "Confirm the asset tag or budget line before continuing.",
    "Record your decision and a short reason in the ticket.",
    "Update the ticket status as soon as the work is done.",
    "Escalate to the workflow owner when the SLA is at risk.",
)


class SeedError(Exception):
    """Signal a seed that cannot run; the message says what to do."""


@dataclass(frozen=True)
class StepSpec:
    """Describe one seeded step."""

    name: str
    role: str
    order: int
    is_start: bool
    is_end: bool


@dataclass(frozen=True)
class WorkflowSpec:
    """Describe one seeded workflow with its steps and transitions."""

    name: str
    category: str
    sub_category: str
    department: str
    steps: tuple[StepSpec, ...]
    transitions: tuple[tuple[str, str, str], ...]  # (from step, to step, name)


def _three_steps(resolver: str) -> tuple[tuple[StepSpec, ...], tuple[tuple[str, str, str], ...]]:
    """Return the Triage -> Resolve -> Finalize steps and their transitions."""
    steps = (
        StepSpec("Triage", ADMIN_ROLE, 1, is_start=True, is_end=False),
        StepSpec("Resolve", resolver, 2, is_start=False, is_end=False),
        StepSpec("Finalize", ADMIN_ROLE, 3, is_start=False, is_end=True),
    )
    transitions = (
        ("Triage", "Resolve", "Submit"),
        ("Resolve", "Finalize", "Approve"),
        ("Resolve", "Triage", "Reject"),
    )
    return steps, transitions


def _one_step(role: str) -> tuple[tuple[StepSpec, ...], tuple[tuple[str, str, str], ...]]:
    """Return a single step that is both start and end."""
    return (StepSpec("Resolve", role, 1, is_start=True, is_end=True),), ()


WORKFLOWS: tuple[WorkflowSpec, ...] = (
    WorkflowSpec(
        "Asset Check In Workflow",
        "Asset Check In",
        "Check In",
        "Asset Department",
        *_three_steps("Asset Manager"),
    ),
    WorkflowSpec(
        "Asset Check Out Workflow",
        "Asset Check Out",
        "Check Out",
        "Asset Department",
        *_three_steps("Asset Manager"),
    ),
    WorkflowSpec(
        "New Budget Proposal Workflow",
        "New Budget Proposal",
        "Budget Approval",
        "Budget Department",
        *_three_steps("Budget Manager"),
    ),
    WorkflowSpec(
        "IT Support Access Request Workflow",
        "IT Support",
        "Access Request",
        "IT Department",
        *_one_step("Asset Manager"),
    ),
    WorkflowSpec(
        "IT Support Software Installation Workflow",
        "Others",
        "Software Installation",
        "IT Department",
        *_one_step("Asset Manager"),
    ),
)


@dataclass
class ModelReport:
    """Count rows created, updated and left unchanged for one model."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """Tell whether any row was written."""
        return bool(self.created or self.updated)

    def as_dict(self) -> dict[str, int]:
        """Return the counts as the JSON report shape."""
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


@dataclass
class SeedReport:
    """Summarize one seed run (the JSON report of the `seed` command)."""

    options: dict[str, int]
    models: dict[str, ModelReport]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Tell whether the run wrote any seeded row."""
        return any(report.changed for report in self.models.values())

    def as_dict(self) -> dict[str, Any]:
        """Return the report in the contract's JSON shape."""
        return {
            "service": SERVICE,
            "options": self.options,
            "models": {name: report.as_dict() for name, report in self.models.items()},
            "counts": self.counts,
            "changed": self.changed,
        }


# --- graph check -------------------------------------------------------------------------


def initialization_problems(workflow: Workflow) -> list[str]:
    """List why a workflow is not ready (empty when it can be initialized)."""
    steps = list(workflow.steps.order_by("order", "name"))
    edges = list(workflow.transitions.values_list("from_step_id", "to_step_id"))
    problems: list[str] = []
    starts = [step for step in steps if step.is_start]
    if len(starts) != 1:
        problems.append(f"it has {len(starts)} start steps instead of exactly one")
    if not any(step.is_end for step in steps):
        problems.append("it has no end step")
    roleless = [step.name for step in steps if step.role_id is None]
    if roleless:
        problems.append(f"steps without a role: {', '.join(roleless)}")
    if len(starts) == 1:
        reached = _reachable(starts[0].pk, edges)
        unreached = [step.name for step in steps if step.pk not in reached]
        if unreached:
            problems.append(f"steps not reachable from the start: {', '.join(unreached)}")
    return problems


def _reachable(start: int, edges: list[tuple[int, int]]) -> set[int]:
    """Return the step ids reachable from start along the transitions."""
    successors: dict[int, list[int]] = {}
    for source, target in edges:
        successors.setdefault(source, []).append(target)
    seen = {start}
    queue = deque([start])
    while queue:
        for target in successors.get(queue.popleft(), []):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def is_initialized(workflow: Workflow) -> bool:
    """Tell whether a workflow has one start, an end, roles and all steps reachable."""
    return not initialization_problems(workflow)


# --- seed steps --------------------------------------------------------------------------


def _required_roles() -> tuple[dict[str, Role], int]:
    """Return the roles the workflows need and the owner's user id, or raise SeedError."""
    roles = {role.name: role for role in Role.objects.filter(name__in=REQUIRED_ROLES)}
    missing = [name for name in REQUIRED_ROLES if name not in roles]
    if missing:
        raise SeedError(
            f"Roles {', '.join(missing)} are missing: "
            "seed auth and sync its events first (inv seed.auth; inv sync)."
        )
    owner = RoleUser.objects.filter(role=roles[ADMIN_ROLE], is_active=True).aggregate(lowest=Min("user_id"))[
        "lowest"
    ]
    if owner is None:
        raise SeedError(
            "No active user holds the Admin role: "
            "seed auth and sync its events first (inv seed.auth; inv sync)."
        )
    return roles, owner


def _upsert(
    model: Any,
    existing: dict[Any, Any],
    desired: dict[Any, dict[str, Any]],
    make: dict[Any, dict[str, Any]],
    report: ModelReport,
) -> set[Any]:
    """Create missing rows and update differing ones; return the keys written.

    `desired` maps natural key -> field values to keep in sync; `make` maps
    natural key -> the extra key fields needed to create the row.
    """
    to_create: list[Any] = []
    to_update: list[Any] = []
    written: set[Any] = set()
    for key, values in desired.items():
        row = existing.get(key)
        if row is None:
            to_create.append(model(**make[key], **values))
            report.created += 1
            written.add(key)
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            to_update.append(row)
            report.updated += 1
            written.add(key)
        else:
            report.unchanged += 1
    model.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        fields = sorted({name for values in desired.values() for name in values})
        model.objects.bulk_update(to_update, fields, batch_size=1000)
    return written


def _seed_workflow_rows(owner: int, report: ModelReport) -> tuple[dict[str, Workflow], set[str]]:
    """Upsert the workflows (status left for later); return them by name and the written."""
    names = [spec.name for spec in WORKFLOWS]
    existing = {wf.name: wf for wf in Workflow.objects.filter(name__in=names)}
    desired = {
        spec.name: {
            "category": spec.category,
            "sub_category": spec.sub_category,
            "department": spec.department,
            "owner_user_id": owner,
            **SLAS,
        }
        for spec in WORKFLOWS
    }
    make = {name: {"name": name, "status": Workflow.Status.DRAFT} for name in names}
    written = _upsert(Workflow, existing, desired, make, report)
    return {wf.name: wf for wf in Workflow.objects.filter(name__in=names)}, written


def _seed_steps(
    workflows: dict[str, Workflow], roles: dict[str, Role], seed: int, report: ModelReport
) -> dict[tuple[int, str], Step]:
    """Upsert the steps with seeded instructions; return them by (workflow id, name)."""
    rng = random.Random(seed)
    existing = {
        (step.workflow_id, step.name): step for step in Step.objects.filter(workflow__in=workflows.values())
    }
    desired: dict[tuple[int, str], dict[str, Any]] = {}
    make: dict[tuple[int, str], dict[str, Any]] = {}
    for spec in WORKFLOWS:
        workflow = workflows[spec.name]
        for step in spec.steps:
            key = (workflow.pk, step.name)
            desired[key] = {
                "role_id": roles[step.role].pk,
                "order": step.order,
                "is_start": step.is_start,
                "is_end": step.is_end,
                "instruction": rng.choice(INSTRUCTION_POOL),
            }
            make[key] = {"workflow": workflow, "name": step.name}
    _upsert(Step, existing, desired, make, report)
    return {
        (step.workflow_id, step.name): step for step in Step.objects.filter(workflow__in=workflows.values())
    }


def _seed_transitions(
    workflows: dict[str, Workflow], steps: dict[tuple[int, str], Step], report: ModelReport
) -> None:
    """Upsert the transitions between the seeded steps."""
    existing = {
        (tr.from_step_id, tr.to_step_id): tr
        for tr in Transition.objects.filter(workflow__in=workflows.values())
    }
    desired: dict[tuple[int, int], dict[str, Any]] = {}
    make: dict[tuple[int, int], dict[str, Any]] = {}
    for spec in WORKFLOWS:
        workflow = workflows[spec.name]
        for source, target, name in spec.transitions:
            key = (steps[(workflow.pk, source)].pk, steps[(workflow.pk, target)].pk)
            desired[key] = {"workflow_id": workflow.pk, "name": name}
            make[key] = {"from_step_id": key[0], "to_step_id": key[1]}
    _upsert(Transition, existing, desired, make, report)


def _update_statuses(workflows: dict[str, Workflow], written: set[str], report: ModelReport) -> None:
    """Set each workflow's status from its graph; count status-only changes as updates."""
    changed: list[Workflow] = []
    for name in sorted(workflows):
        workflow = workflows[name]
        status = Workflow.Status.INITIALIZED if is_initialized(workflow) else Workflow.Status.DRAFT
        if workflow.status != status:
            workflow.status = status
            changed.append(workflow)
            if name not in written:
                report.updated += 1
                report.unchanged -= 1
    Workflow.objects.bulk_update(changed, ["status"])


def seed_workflows(seed: int = DEFAULT_SEED) -> dict[str, ModelReport]:
    """Upsert the 5 core workflows with steps and transitions; return per-model reports."""
    reports = {"Workflow": ModelReport(), "Step": ModelReport(), "Transition": ModelReport()}
    with transaction.atomic():
        roles, owner = _required_roles()
        workflows, written = _seed_workflow_rows(owner, reports["Workflow"])
        steps = _seed_steps(workflows, roles, seed, reports["Step"])
        _seed_transitions(workflows, steps, reports["Transition"])
        _update_statuses(workflows, written, reports["Workflow"])
    return reports


# --- whole run ---------------------------------------------------------------------------


def validate_seed(value: object) -> int:
    """Return the seed as an int in range, or raise SeedError."""
    try:
        seed = int(str(value), 10)
    except ValueError:
        raise SeedError(f"--seed must be a whole number, got {value!r}; pass e.g. --seed 7.") from None
    if not 0 <= seed <= MAX_SEED:
        raise SeedError(f"--seed must be between 0 and {MAX_SEED}, got {seed}; pass e.g. --seed 7.")
    return seed


def model_counts() -> dict[str, int]:
    """Count the rows of every model the contract reports."""
    return {name: model.objects.count() for name, model in COUNTED_MODELS.items()}


def run_seed(seed: int = DEFAULT_SEED) -> SeedReport:
    """Run every seed step of the service in one transaction and record its options."""
    seed = validate_seed(seed)
    options = {"seed": seed}
    with transaction.atomic():
        models = seed_workflows(seed)
        report = SeedReport(options=options, models=models, counts={})
        mark = SeedMark.objects.filter(pk="seed").first()
        if mark is None or mark.options != options or report.changed:
            SeedMark.objects.update_or_create(pk="seed", defaults={"options": options})
        report.counts = model_counts()
    return report


def describe(report: SeedReport) -> list[str]:
    """Return the human lines for a seed report."""
    lines = [
        f"{name}: {item.created} created, {item.updated} updated, {item.unchanged} unchanged"
        for name, item in report.models.items()
    ]
    lines.extend(report.notes)
    if not report.changed:
        lines.append("Nothing to do: already seeded.")
    return lines
