"""Report the auth database's state for the task runner (read-only).

Besides counts, events, the last seed's options and integrity, the report compares the
database with the last seed, per seed-owned model (System, Role, User, UserSystemRole,
Employee)::

    "seeded": {"Employee": {"expected": 58, "missing": 1, "extra": 2}, ...}

``expected`` is how many rows the last seed owns (by system slug, (system, role name), user
email, (user, system, role) and employee company id MA0001..), ``missing`` how many of them
are absent (deleted; ``seed`` creates them again) and ``extra`` how many other rows exist
(people's rows, never touched by the seed). With ``--edits`` each model also gets
``edited``: seeded rows whose values differ from the seed's (``seed --repair`` restores
them); this generates every seeded employee. ``seeded`` is null before the first seed.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from identity.state import stack_state


class Command(BaseCommand):
    """Report the auth database's state for the task runner (read-only)."""

    help = (
        "Report migrations, counts, pending outbox events, last seed and integrity (read-only). "
        '"seeded" gives, per seeded model, {"expected": rows the last seed owns, "missing": those absent, '
        '"extra": rows not made by the seed}, or null before the first seed; --edits adds "edited": '
        "seeded rows whose values differ from the seed's."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --json and --edits."""
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON document on stdout (default: human text).",
        )
        parser.add_argument(
            "--edits",
            action="store_true",
            help='Also count seeded rows people edited ("edited"; generates every seeded employee).',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the report and print it."""
        try:
            report = stack_state(edits=bool(options["edits"]))
        except DatabaseError as exc:
            raise CommandError(
                f"Cannot read the auth database ({exc}); start it or fix DATABASE_URL."
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        database = report["database"]
        self.stdout.write(f"Database: {database['vendor']} {database['name']}")
        pending = report["migrations"]["pending"]
        self.stdout.write(f"Pending migrations: {', '.join(pending) if pending else 'none'}")
        counts = report["counts"]
        self.stdout.write(
            "Counts: " + (", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "tables missing")
        )
        events = report["pending_events"]
        self.stdout.write("Pending events: " + ", ".join(f"{k} {v}" for k, v in events.items()))
        self.stdout.write(f"Last seed: {json.dumps(report['last_seed'])}")
        seeded = report["seeded"]
        if seeded is not None:
            self.stdout.write(
                "Seeded rows: "
                + ", ".join(
                    f"{model} {n['expected']} ({n['missing']} missing, {n['extra']} extra"
                    + (f", {n['edited']} edited)" if "edited" in n else ")")
                    for model, n in seeded.items()
                )
            )
        integrity = report["integrity"]
        self.stdout.write("Integrity: " + ("ok" if integrity["ok"] else " ".join(integrity["problems"])))
