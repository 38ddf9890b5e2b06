"""Run every seed step of the workflow service in one transaction."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.seeding import DEFAULT_SEED, SeedError, describe, run_seed, validate_seed


class Command(BaseCommand):
    """Seed the core workflows (needs the roles synced from auth)."""

    help = "Seed the workflow service (the 5 core workflows) in one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --seed and --json."""
        parser.add_argument(
            "--seed",
            default=str(DEFAULT_SEED),
            help=f"Integer seed for the deterministic values (default: {DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: off)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate the options, run the seed and print the report."""
        try:
            report = run_seed(validate_seed(options["seed"]))
        except SeedError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            for line in describe(report):
                self.stdout.write(line)
