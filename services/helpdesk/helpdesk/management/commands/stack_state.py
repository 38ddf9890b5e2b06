"""Print the read-only state report the task runner uses."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from helpdesk.management.base import HelpdeskCommand
from helpdesk.state import stack_state


class Command(HelpdeskCommand):
    """Print the read-only state report the task runner uses."""

    help = "Print the database, migration, count, event and integrity state (read-only)."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the output format."""
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document (default: indented JSON too)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the report and print it."""
        state = stack_state()
        if options["json"]:
            self.stdout.write(json.dumps(state))
        else:
            self.stdout.write(json.dumps(state, indent=2))
