"""Run every auth seed step in order, in one transaction.

The seed owns its fixed systems, roles, users and role links and the employees
MA0001..MA<8 + employees>. It creates the missing ones, gives rows untouched since the last
seed the new values, keeps rows people edited (``--repair`` gives them their seeded values
back) and never writes people's other rows. A smaller ``--employees`` than the last seed's
is refused before anything is written.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from identity import seeding

from ._common import say, user_errors


class Command(BaseCommand):
    """Run every auth seed step in order, in one transaction."""

    help = (
        "Seed systems, TTS, HDTS and employees in one transaction; print a report. Missing seeded rows "
        "are created again, rows people edited are kept unless --repair, people's other rows are never "
        "written, and a smaller --employees than the last seed's is refused. --json prints "
        '{"service", "options", "models": {Model: {"created", "updated", "unchanged", "repaired", '
        '"kept"}}, "counts", "changed"}.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --employees, --seed and --json."""
        parser.add_argument(
            "--employees",
            default="0",
            help=(
                "Extra HDTS employees to generate beyond the 8 fixed ones, "
                f"0-{seeding.MAX_EXTRA_EMPLOYEES} (default: 0)."
            ),
        )
        parser.add_argument(
            "--seed",
            default=str(seeding.DEFAULT_SEED),
            help=f"Integer seed of the generated values (default: {seeding.DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Give seeded rows that people edited their seeded values back (default: keep edits).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON document on stdout; human notes go to stderr (default: off).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate the options, seed, and print the report."""
        with user_errors():
            outcome = seeding.run_seed(
                employees=options["employees"], seed=options["seed"], repair=bool(options["repair"])
            )
        as_json = bool(options["json"])
        if as_json:
            say(self, outcome.report.notes, to_stderr=True)
            self.stdout.write(json.dumps(outcome.as_json()))
        else:
            say(self, outcome.report.lines())
