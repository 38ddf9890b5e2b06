"""Print the read-only state report of the workflow service."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workflows.state import stack_state


class Command(BaseCommand):
    """Report database, migrations, counts, events, last seed and integrity."""

    help = "Print the service state (read-only); use --json for the machine report."
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --json."""
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document on stdout (default: off)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the report and print it."""
        report = stack_state()
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(json.dumps(report, indent=2))
