"""Seed the five core TTS workflows deterministically and report what changed.

The database is a living environment: people edit, add and delete workflows, steps and
transitions. The seed owns its five workflows, their steps and transitions (by natural key:
workflow name, (workflow, step name), (from step, to step)). A missing seeded row is created
again. A stored seeded row is compared with what the last seed wrote (the *reference*,
generated again from the SeedMark's ``--seed``): equal means nobody edited it, so it gets
the new seed's values; different means a person edited it, so it is kept unless ``repair``.
Rows the seed does not own are never written. A workflow's ``status`` is derived from its
graph and set on every run; it is not a seeded value.
"""

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Min

from .accounts import admin_notes, seed_admin
from .models import Role, RoleUser, SeedMark, Step, Transition, Workflow
from .passwords import PasswordSource

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


SEEDED_MODELS: dict[str, Any] = {"Workflow": Workflow, "Step": Step, "Transition": Transition}


@dataclass
class ModelReport:
    """Count what a seed did to the seeded rows of one model.

    ``created``: missing seeded rows written; ``updated``: rows untouched since the last seed
    given the new seed's values (or a new derived status); ``repaired``: rows people edited
    given their seeded values back (``--repair``); ``kept``: rows people edited left as they
    are; ``unchanged``: rows that already hold the seed's values.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: int = 0
    kept: int = 0

    @property
    def changed(self) -> bool:
        """Tell whether any row was written."""
        return bool(self.created or self.updated or self.repaired)

    def count(self, outcome: str, delta: int = 1) -> None:
        """Add ``delta`` to the counter named ``outcome``."""
        setattr(self, outcome, getattr(self, outcome) + delta)

    def as_dict(self) -> dict[str, int]:
        """Return the counts as the JSON report shape."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "repaired": self.repaired,
            "kept": self.kept,
        }


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


@dataclass
class SeededRows:
    """Hold the values a seed writes, by natural key (no surrogate ids)."""

    workflows: dict[str, dict[str, Any]]
    steps: dict[tuple[str, str], dict[str, Any]]  # (workflow name, step name)
    transitions: dict[tuple[str, str, str], dict[str, Any]]  # (workflow name, from step, to step)


def seeded_rows(seed: int, role_ids: Mapping[str, int | None], owner: int | None) -> SeededRows:
    """Return every row the seed writes with ``seed``, given the roles' ids and the owner."""
    rng = random.Random(seed)
    workflows: dict[str, dict[str, Any]] = {}
    steps: dict[tuple[str, str], dict[str, Any]] = {}
    transitions: dict[tuple[str, str, str], dict[str, Any]] = {}
    for spec in WORKFLOWS:
        workflows[spec.name] = {
            "category": spec.category,
            "sub_category": spec.sub_category,
            "department": spec.department,
            "owner_user_id": owner,
            **SLAS,
        }
        for step in spec.steps:
            steps[(spec.name, step.name)] = {
                "role_id": role_ids.get(step.role),
                "order": step.order,
                "is_start": step.is_start,
                "is_end": step.is_end,
                "instruction": rng.choice(INSTRUCTION_POOL),
            }
        for source, target, name in spec.transitions:
            transitions[(spec.name, source, target)] = {"name": name}
    return SeededRows(workflows, steps, transitions)


def outcome(row: Any, values: dict[str, Any], reference: dict[str, Any] | None, repair: bool) -> str:
    """Decide what the seed does to one seeded row; return the ModelReport counter it counts in.

    ``reference`` is what the last seed wrote under the row's key (None without a SeedMark).
    Missing rows are created; rows already right are unchanged; rows holding what the last
    seed wrote get the new values; rows people edited are kept, or repaired with ``repair``.
    """
    if row is None:
        return "created"
    if all(getattr(row, name) == value for name, value in values.items()):
        return "unchanged"
    if reference is not None and all(getattr(row, name) == value for name, value in reference.items()):
        return "updated"
    return "repaired" if repair else "kept"


def _upsert(
    model: Any,
    existing: dict[Any, Any],
    desired: dict[Any, dict[str, Any]],
    make: dict[Any, dict[str, Any]],
    report: ModelReport,
    reference: Mapping[Any, dict[str, Any]] | None = None,
    repair: bool = False,
) -> dict[Any, str]:
    """Create missing rows and update the rows :func:`outcome` allows; return each key's outcome.

    `desired` maps natural key -> field values to keep in sync; `make` maps
    natural key -> the extra key fields needed to create the row; `reference` maps
    natural key -> what the last seed wrote (None: no SeedMark, every difference is an edit).
    """
    to_create: list[Any] = []
    to_update: list[Any] = []
    outcomes: dict[Any, str] = {}
    for key, values in desired.items():
        row = existing.get(key)
        result = outcome(row, values, None if reference is None else reference.get(key), repair)
        outcomes[key] = result
        report.count(result)
        if result == "created":
            to_create.append(model(**make[key], **values))
        elif result in ("updated", "repaired"):
            for name, value in values.items():
                setattr(row, name, value)
            to_update.append(row)
    model.objects.bulk_create(to_create, batch_size=1000)
    if to_update:
        fields = sorted({name for values in desired.values() for name in values})
        model.objects.bulk_update(to_update, fields, batch_size=1000)
    return outcomes


@dataclass(frozen=True)
class Plan:
    """Hold what one run writes: the new rows, the last seed's rows (None: no mark), repair."""

    rows: SeededRows
    last: SeededRows | None
    repair: bool = False


def _seed_workflow_rows(plan: Plan, report: ModelReport) -> tuple[dict[str, Workflow], dict[str, str]]:
    """Upsert the workflows (status left for later); return them by name and each one's outcome."""
    names = list(plan.rows.workflows)
    existing = {wf.name: wf for wf in Workflow.objects.filter(name__in=names)}
    make = {name: {"name": name, "status": Workflow.Status.DRAFT} for name in names}
    reference = plan.last.workflows if plan.last else None
    outcomes = _upsert(Workflow, existing, plan.rows.workflows, make, report, reference, plan.repair)
    return {wf.name: wf for wf in Workflow.objects.filter(name__in=names)}, outcomes


def _steps_by_key(workflows: dict[str, Workflow]) -> dict[tuple[int, str], Step]:
    """Return the steps of the workflows by (workflow id, step name)."""
    return {
        (step.workflow_id, step.name): step for step in Step.objects.filter(workflow__in=workflows.values())
    }


def _seed_steps(
    workflows: dict[str, Workflow], plan: Plan, report: ModelReport
) -> dict[tuple[int, str], Step]:
    """Upsert the steps with seeded instructions; return them by (workflow id, name)."""
    desired: dict[tuple[int, str], dict[str, Any]] = {}
    reference: dict[tuple[int, str], dict[str, Any]] = {}
    make: dict[tuple[int, str], dict[str, Any]] = {}
    for (workflow_name, step_name), values in plan.rows.steps.items():
        workflow = workflows[workflow_name]
        key = (workflow.pk, step_name)
        desired[key] = values
        make[key] = {"workflow": workflow, "name": step_name}
        if plan.last:
            reference[key] = plan.last.steps[(workflow_name, step_name)]
    _upsert(
        Step, _steps_by_key(workflows), desired, make, report, reference if plan.last else None, plan.repair
    )
    return _steps_by_key(workflows)


def _seed_transitions(
    workflows: dict[str, Workflow], steps: dict[tuple[int, str], Step], plan: Plan, report: ModelReport
) -> None:
    """Upsert the transitions between the seeded steps."""
    existing = {
        (tr.from_step_id, tr.to_step_id): tr
        for tr in Transition.objects.filter(workflow__in=workflows.values())
    }
    desired: dict[tuple[int, int], dict[str, Any]] = {}
    reference: dict[tuple[int, int], dict[str, Any]] = {}
    make: dict[tuple[int, int], dict[str, Any]] = {}
    for (workflow_name, source, target), values in plan.rows.transitions.items():
        workflow = workflows[workflow_name]
        key = (steps[(workflow.pk, source)].pk, steps[(workflow.pk, target)].pk)
        desired[key] = {"workflow_id": workflow.pk, **values}
        make[key] = {"from_step_id": key[0], "to_step_id": key[1]}
        if plan.last:
            reference[key] = {
                "workflow_id": workflow.pk,
                **plan.last.transitions[(workflow_name, source, target)],
            }
    _upsert(Transition, existing, desired, make, report, reference if plan.last else None, plan.repair)


def _update_statuses(workflows: dict[str, Workflow], outcomes: dict[str, str], report: ModelReport) -> None:
    """Set each workflow's status from its graph; count status-only changes as updates."""
    changed: list[Workflow] = []
    for name in sorted(workflows):
        workflow = workflows[name]
        status = Workflow.Status.INITIALIZED if is_initialized(workflow) else Workflow.Status.DRAFT
        if workflow.status != status:
            workflow.status = status
            changed.append(workflow)
            if outcomes.get(name) in ("unchanged", "kept"):
                report.count(outcomes[name], -1)
                report.updated += 1
    Workflow.objects.bulk_update(changed, ["status"])


def read_last_seed() -> int | None:
    """Return the ``--seed`` of the last ``seed`` run, or None when there was none."""
    options = SeedMark.objects.filter(pk="seed").values_list("options", flat=True).first()
    if not isinstance(options, dict):
        return None
    try:
        return int(options["seed"])
    except (KeyError, TypeError, ValueError):
        return None


def seed_workflows(seed: int = DEFAULT_SEED, repair: bool = False) -> dict[str, ModelReport]:
    """Upsert the 5 core workflows with steps and transitions; return per-model reports.

    Rows people edited since the last seed are kept unless ``repair`` (see :func:`outcome`).
    """
    reports = {"Workflow": ModelReport(), "Step": ModelReport(), "Transition": ModelReport()}
    with transaction.atomic():
        roles, owner = _required_roles()
        role_ids = {name: role.pk for name, role in roles.items()}
        last_seed = read_last_seed()
        rows = seeded_rows(seed, role_ids, owner)
        last: SeededRows | None = None  # no SeedMark: every difference counts as an edit
        if last_seed is not None:
            last = rows if last_seed == seed else seeded_rows(last_seed, role_ids, owner)
        plan = Plan(rows, last, repair)
        workflows, outcomes = _seed_workflow_rows(plan, reports["Workflow"])
        steps = _seed_steps(workflows, plan, reports["Step"])
        _seed_transitions(workflows, steps, plan, reports["Transition"])
        _update_statuses(workflows, outcomes, reports["Workflow"])
    return reports


# --- what the last seed owns (stack_state) ------------------------------------------------


def _stored_seeded_rows() -> tuple[dict[Any, Workflow], dict[Any, Step], dict[Any, Transition]]:
    """Return the stored rows under the seeded natural keys (three small queries)."""
    names = [spec.name for spec in WORKFLOWS]
    workflows = {wf.name: wf for wf in Workflow.objects.filter(name__in=names)}
    steps = {
        (step.workflow.name, step.name): step
        for step in Step.objects.filter(workflow__name__in=names).select_related("workflow")
    }
    transitions = {}
    for tr in Transition.objects.filter(from_step__workflow__name__in=names).select_related(
        "workflow", "from_step__workflow", "to_step__workflow"
    ):
        if tr.from_step.workflow_id == tr.to_step.workflow_id:
            transitions[(tr.from_step.workflow.name, tr.from_step.name, tr.to_step.name)] = tr
    return workflows, steps, transitions


def seeded_state(seed: int, edits: bool = False) -> dict[str, dict[str, int]]:
    """Report, per seeded model, the rows the last seed owns, the missing ones and people's.

    ``expected``: seeded keys; ``missing``: seeded keys with no row; ``extra``: rows under other
    keys. With ``edits``, ``edited``: seeded rows whose values differ from the seed's.
    """
    expected_rows = seeded_rows(seed, {}, None)
    expected = {
        "Workflow": expected_rows.workflows,
        "Step": expected_rows.steps,
        "Transition": expected_rows.transitions,
    }
    stored = dict(zip(("Workflow", "Step", "Transition"), _stored_seeded_rows(), strict=True))
    report: dict[str, dict[str, int]] = {}
    for name, model in SEEDED_MODELS.items():
        present = sum(1 for key in expected[name] if key in stored[name])
        total = model.objects.count()
        report[name] = {
            "expected": len(expected[name]),
            "missing": len(expected[name]) - present,
            "extra": total - present,
        }
    if edits:
        roles = dict(Role.objects.filter(name__in=REQUIRED_ROLES).values_list("name", "pk"))
        owner = RoleUser.objects.filter(role__name=ADMIN_ROLE, is_active=True).aggregate(
            lowest=Min("user_id")
        )["lowest"]
        wanted = seeded_rows(seed, roles, owner)
        by_model = {"Workflow": wanted.workflows, "Step": wanted.steps, "Transition": wanted.transitions}
        for name in SEEDED_MODELS:
            edited = 0
            for key, values in by_model[name].items():
                # A role or owner that is not mirrored (yet) cannot be compared: skip that field.
                known = {field: value for field, value in values.items() if value is not None}
                if key in stored[name] and outcome(stored[name][key], known, None, False) != "unchanged":
                    edited += 1
            report[name]["edited"] = edited
    return report


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


def run_seed(seed: int = DEFAULT_SEED, repair: bool = False) -> SeedReport:
    """Run every seed step of the service in one transaction and record its options."""
    seed = validate_seed(seed)
    options = {"seed": seed}
    with transaction.atomic():
        models = seed_workflows(seed, repair)
        report = SeedReport(options=options, models=models, counts={})
        passwords = PasswordSource()
        report.notes.extend(admin_notes(seed_admin(passwords.hashed, repair, passwords.plain)))
        report.notes.extend(passwords.notes)
        mark = SeedMark.objects.filter(pk="seed").first()
        if mark is None or mark.options != options or report.changed:
            SeedMark.objects.update_or_create(pk="seed", defaults={"options": options})
        report.counts = model_counts()
    return report


def describe(report: SeedReport) -> list[str]:
    """Return the human lines for a seed report."""
    lines = [
        f"{name}: {item.created} created, {item.updated} updated, {item.repaired} repaired, "
        f"{item.kept} kept, {item.unchanged} unchanged"
        for name, item in report.models.items()
    ]
    lines.extend(report.notes)
    kept = sum(item.kept for item in report.models.values())
    if kept:
        lines.append(
            f"Kept {kept} seeded rows people edited; pass --repair to give them their seeded values back."
        )
    if not report.changed:
        lines.append("Nothing to do: already seeded.")
    return lines
