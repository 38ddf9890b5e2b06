"""Print the read-only state report of the workflow service.

Besides counts, events, the last seed's options and integrity, the report compares the
database with the last seed, per seed-owned model (Workflow, Step, Transition)::

    "seeded": {"Step": {"expected": 11, "missing": 1, "extra": 2}, ...}

``expected`` is how many rows the last seed owns (by workflow name, (workflow, step name) and
(from step, to step)), ``missing`` how many of them are absent (deleted; ``seed`` creates them
again) and ``extra`` how many other rows exist (people's rows, never touched by the seed).
With ``--edits`` each model also gets ``edited``: seeded rows whose values differ from the
seed's (``seed --repair`` restores them). ``seeded`` is null before the first seed.
"""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workflows.state import stack_state


class Command(BaseCommand):
    """Report database, migrations, counts, events, last seed and integrity."""

    help = (
        "Print the service state (read-only); use --json for the machine report. "
        '"seeded" gives, per seeded model, {"expected": rows the last seed owns, "missing": those absent, '
        '"extra": rows not made by the seed}, or null before the first seed; --edits adds "edited": '
        "seeded rows whose values differ from the seed's."
    )
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --json."""
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document on stdout (default: off)."
        )
        parser.add_argument(
            "--edits",
            action="store_true",
            help='Also count seeded rows people edited ("edited" per seeded model).',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the report and print it."""
        report = stack_state(edits=bool(options["edits"]))
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(json.dumps(report, indent=2))
