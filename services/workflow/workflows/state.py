"""Build the read-only stack_state report of the workflow service."""

from pathlib import Path
from typing import Any

from django.db import DatabaseError, IntegrityError, connection
from django.db.migrations.loader import MigrationLoader

from .models import DeferredEvent, ProcessedEvent, Role, SeedMark, Step, Workflow
from .seeding import COUNTED_MODELS, SERVICE, initialization_problems, read_last_seed, seeded_state


def _sqlite_file_missing() -> bool:
    """Tell whether the database is a SQLite file that does not exist yet."""
    if connection.vendor != "sqlite":
        return False
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        return False  # in memory, or a URI (a read-only checkout's file, see config/settings.py)
    return not Path(name).exists()


def _pending_migrations(loader: MigrationLoader) -> list[str]:
    """List the migrations not applied yet, in dependency order."""
    plan: list[str] = []
    seen: set[tuple[str, str]] = set()
    for leaf in sorted(loader.graph.leaf_nodes()):
        for node in loader.graph.forwards_plan(leaf):
            if node not in loader.applied_migrations and node not in seen:
                seen.add(node)
                plan.append(f"{node[0]}.{node[1]}")
    return plan


def _tables_exist(tables: set[str], models: list[Any]) -> bool:
    """Tell whether every model's table is present."""
    return all(model._meta.db_table in tables for model in models)


def _integrity_problems() -> list[str]:
    """Return FK and domain problems, one sentence each."""
    problems: list[str] = []
    if connection.vendor == "sqlite":
        try:
            connection.check_constraints()
        except IntegrityError as exc:
            problems.append(f"A foreign key check failed: {exc}")
    role_ids = set(Role.objects.values_list("role_id", flat=True))
    for step in Step.objects.select_related("workflow").order_by("workflow__name", "order", "name"):
        if step.role_id is not None and step.role_id not in role_ids:
            problems.append(
                f"Step {step.name!r} of {step.workflow.name!r} references the missing role {step.role_id}."
            )
    for workflow in Workflow.objects.order_by("name"):
        reasons = initialization_problems(workflow)
        if reasons:
            problems.append(f"Workflow {workflow.name!r} is not initialized: {'; '.join(reasons)}.")
        elif workflow.status != Workflow.Status.INITIALIZED:
            problems.append(f"Workflow {workflow.name!r} is ready but its status is {workflow.status!r}.")
    return problems


def stack_state(edits: bool = False) -> dict[str, Any]:
    """Report database, migrations, counts, events, last seed and integrity (no writes).

    ``seeded`` compares the database with the last seed (null without one): per seeded model,
    ``expected``, ``missing`` and ``extra`` rows, plus ``edited`` with ``edits``.
    """
    database = {"vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])}
    report: dict[str, Any] = {
        "service": SERVICE,
        "database": database,
        "migrations": {"pending": []},
        "counts": None,
        "pending_events": {},
        "processed_events": 0,
        "deferred_events": 0,
        "last_seed": None,
        "seeded": None,
        "integrity": {"ok": True, "problems": []},
    }
    if _sqlite_file_missing():
        loader = MigrationLoader(None, ignore_no_migrations=True)
        report["migrations"]["pending"] = _pending_migrations(loader)
        return report
    try:
        loader = MigrationLoader(connection, ignore_no_migrations=True)
        tables = set(connection.introspection.table_names())
    except DatabaseError as exc:
        report["integrity"] = {"ok": False, "problems": [f"The database cannot be read: {exc}."]}
        return report
    report["migrations"]["pending"] = _pending_migrations(loader)
    if _tables_exist(tables, list(COUNTED_MODELS.values())):
        report["counts"] = {name: model.objects.count() for name, model in COUNTED_MODELS.items()}
        problems = _integrity_problems()
        report["integrity"] = {"ok": not problems, "problems": problems}
    if _tables_exist(tables, [ProcessedEvent]):
        report["processed_events"] = ProcessedEvent.objects.count()
    if _tables_exist(tables, [DeferredEvent]):
        report["deferred_events"] = DeferredEvent.objects.count()
    if _tables_exist(tables, [SeedMark]):
        mark = SeedMark.objects.filter(pk="seed").first()
        report["last_seed"] = mark.options if mark else None
        last_seed = read_last_seed()
        if last_seed is not None and report["counts"] is not None:
            report["seeded"] = seeded_state(last_seed, edits=edits)
    return report
