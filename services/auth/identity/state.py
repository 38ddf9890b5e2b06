"""Report the state of the auth database without writing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.models import F

from . import outbox
from .accounts import with_admin
from .models import Employee, OutboxEvent, Role, SeedMark, System, User, UserSystemRole
from .seeding import SERVICE, LastSeed, model_counts, seeded_state

SEEDED_MODELS = (System, Role, User, UserSystemRole, Employee)


def sqlite_file_missing(connection: BaseDatabaseWrapper) -> bool:
    """Tell whether the SQLite file does not exist yet (connecting would create it)."""
    if connection.vendor != "sqlite":
        return False
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        return False
    return not Path(name).exists()


def all_migrations() -> list[str]:
    """List every migration on disk in plan order (for a database that does not exist)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    plan: list[str] = []
    for leaf in sorted(loader.graph.leaf_nodes()):
        for app, name in loader.graph.forwards_plan(leaf):
            label = f"{app}.{name}"
            if label not in plan:
                plan.append(label)
    return plan


def pending_migrations(connection: BaseDatabaseWrapper) -> list[str]:
    """List the migrations not applied yet, in plan order."""
    executor = MigrationExecutor(connection)
    targets = executor.loader.graph.leaf_nodes()
    return [f"{m.app_label}.{m.name}" for m, _ in executor.migration_plan(targets)]


def integrity_problems(connection: BaseDatabaseWrapper) -> list[str]:
    """Check foreign keys (SQLite) and the domain rules; return one sentence per problem."""
    problems: list[str] = []
    if connection.vendor == "sqlite":
        try:
            connection.check_constraints()
        except IntegrityError as exc:
            problems.append(f"Foreign key check failed: {exc}.")
    mismatched = UserSystemRole.objects.exclude(system_id=F("role__system_id")).count()
    if mismatched:
        problems.append(f"{mismatched} user-role links name a system other than their role's.")
    unrecorded = outbox.unrecorded_changes()
    if unrecorded:
        problems.append(f"{unrecorded} synced rows differ from their last outbox event.")
    return problems


def stack_state(alias: str = DEFAULT_DB_ALIAS, edits: bool = False) -> dict[str, Any]:
    """Build the stack_state report of the contract.

    `seeded` compares the database with the last seed (null without one): per seeded model,
    `expected`, `missing` and `extra` rows, plus `edited` with `edits`.
    """
    connection = connections[alias]
    name = str(connection.settings_dict["NAME"])
    report: dict[str, Any] = {
        "service": SERVICE,
        "database": {"vendor": connection.vendor, "name": name},
        "migrations": {"pending": []},
        "counts": None,
        "pending_events": dict.fromkeys(outbox.QUEUES, 0),
        "delivered_events": 0,
        "processed_events": 0,
        "deferred_events": 0,
        "last_seed": None,
        "seeded": None,
        "integrity": {"ok": True, "problems": []},
    }
    if sqlite_file_missing(connection):
        report["migrations"]["pending"] = all_migrations()
        return report
    report["migrations"]["pending"] = pending_migrations(connection)
    tables = set(connection.introspection.table_names())
    if all(model._meta.db_table in tables for model in SEEDED_MODELS):
        report["counts"] = model_counts()
    if OutboxEvent._meta.db_table in tables:
        report["pending_events"] = outbox.pending_counts()
        report["delivered_events"] = OutboxEvent.objects.filter(delivered_at__isnull=False).count()
    if SeedMark._meta.db_table in tables:
        mark = SeedMark.objects.filter(name="seed").first()
        report["last_seed"] = mark.options if mark else None
        last = LastSeed.from_options(report["last_seed"])
        if last is not None and report["counts"] is not None:
            report["seeded"] = with_admin(seeded_state(last, edits=edits), edits=edits)
    if report["counts"] is not None and OutboxEvent._meta.db_table in tables:
        problems = integrity_problems(connection)
        report["integrity"] = {"ok": not problems, "problems": problems}
    return report


def check_database(alias: str = DEFAULT_DB_ALIAS) -> None:
    """Raise DatabaseError when the database does not answer."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
