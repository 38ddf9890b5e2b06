"""Run every seed step of the workflow service in one transaction.

The seed owns its 5 workflows, their steps and transitions. It creates the missing ones,
gives rows untouched since the last seed the new seed's values, keeps rows people edited
(``--repair`` gives them their seeded values back) and never writes people's other rows.
"""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from workflows.seeding import DEFAULT_SEED, SeedError, describe, run_seed, validate_seed


class Command(BaseCommand):
    """Seed the core workflows (needs the roles synced from auth)."""

    help = (
        "Seed the workflow service (the 5 core workflows) in one transaction. Missing seeded rows are "
        "created again, rows people edited are kept unless --repair, people's other rows are never "
        'written. --json prints {"service", "options", "models": {Model: {"created", "updated", '
        '"unchanged", "repaired", "kept"}}, "counts", "changed"}.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --seed and --json."""
        parser.add_argument(
            "--seed",
            default=str(DEFAULT_SEED),
            help=f"Integer seed for the deterministic values (default: {DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Give seeded rows that people edited their seeded values back (default: keep edits).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: off)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate the options, run the seed and print the report."""
        try:
            report = run_seed(validate_seed(options["seed"]), repair=bool(options["repair"]))
        except SeedError as exc:
            raise CommandError(str(exc)) from exc
        except IntegrityError as exc:
            raise CommandError(
                f"Seeding conflicts with rows people added or edited ({exc}); change or remove those "
                "rows (or run 'inv reset.workflow'), then seed again."
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            for line in describe(report):
                self.stdout.write(line)
