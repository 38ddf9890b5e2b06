"""Report the state of the helpdesk database for the task runner, read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.models import Q

from .models import Employee, ProcessedEvent, SeedMark, Ticket
from .seeding import COUNT_MODELS, SEED_MARK_NAME, LastSeed, seeded_state


def database_info(connection: BaseDatabaseWrapper) -> dict[str, str]:
    """Return the vendor and the database name (the file path on SQLite)."""
    return {"vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])}


def sqlite_file_missing(connection: BaseDatabaseWrapper) -> bool:
    """Return whether the SQLite file does not exist yet (connecting would create it)."""
    if connection.vendor != "sqlite":
        return False
    name = str(connection.settings_dict["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        return False
    return not Path(name).exists()


def pending_migrations(connection: BaseDatabaseWrapper | None) -> list[str]:
    """Return the migrations not applied yet, as "app.name", in plan order."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    applied = set(loader.applied_migrations or {})
    pending: list[str] = []
    for leaf in loader.graph.leaf_nodes():
        for node in loader.graph.forwards_plan(leaf):
            if node not in applied and f"{node[0]}.{node[1]}" not in pending:
                pending.append(f"{node[0]}.{node[1]}")
    return pending


def integrity_problems(connection: BaseDatabaseWrapper) -> list[str]:
    """Return foreign-key and domain problems, one sentence each."""
    problems: list[str] = []
    try:
        connection.check_constraints()
    except DatabaseError as error:
        problems.append(f"Foreign key check failed: {error}")
    orphans = Ticket.objects.exclude(employee_id__in=Employee.objects.values("pk")).count()
    if orphans:
        problems.append(f"{orphans} tickets point to an employee that does not exist.")
    incomplete = (
        Ticket.objects.exclude(status=Ticket.Status.NEW)
        .filter(Q(priority__isnull=True) | Q(department__isnull=True))
        .count()
    )
    if incomplete:
        problems.append(f"{incomplete} tickets past New lack a priority or a department.")
    return problems


def stack_state(alias: str = "default", edits: bool = False) -> dict[str, Any]:
    """Return the contract's stack_state document without writing anything.

    ``seeded`` compares the database with the last seed (null without one): per seeded model,
    ``expected``, ``missing`` and ``extra`` rows, plus ``edited`` with ``edits``.
    """
    connection = connections[alias]
    state: dict[str, Any] = {
        "service": "helpdesk",
        "database": database_info(connection),
        "migrations": {"pending": []},
        "counts": None,
        "pending_events": {},
        "processed_events": 0,
        "deferred_events": 0,
        "last_seed": None,
        "seeded": None,
        "integrity": {"ok": True, "problems": []},
    }
    if sqlite_file_missing(connection):
        state["migrations"]["pending"] = pending_migrations(None)
        return state
    state["migrations"]["pending"] = pending_migrations(connection)
    tables = set(connection.introspection.table_names())
    needed = {model._meta.db_table for model in (*COUNT_MODELS, SeedMark, ProcessedEvent)}
    if not needed <= tables:
        return state
    state["counts"] = {model.__name__: model._default_manager.count() for model in COUNT_MODELS}
    state["processed_events"] = ProcessedEvent.objects.count()
    mark = SeedMark.objects.filter(name=SEED_MARK_NAME).values_list("options", flat=True).first()
    state["last_seed"] = mark
    last = LastSeed.from_options(mark)
    if last is not None:
        state["seeded"] = seeded_state(last, edits=edits)
    problems = integrity_problems(connection)
    state["integrity"] = {"ok": not problems, "problems": problems}
    return state
