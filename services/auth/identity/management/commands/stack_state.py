"""Report the auth database's state for the task runner (read-only)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from identity.state import stack_state


class Command(BaseCommand):
    """Report the auth database's state for the task runner (read-only)."""

    help = "Report migrations, counts, pending outbox events, last seed and integrity (read-only)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --json."""
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON document on stdout (default: human text).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the report and print it."""
        try:
            report = stack_state()
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
        integrity = report["integrity"]
        self.stdout.write("Integrity: " + ("ok" if integrity["ok"] else " ".join(integrity["problems"])))
