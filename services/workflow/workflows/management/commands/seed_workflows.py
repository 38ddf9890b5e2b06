"""Seed the 5 core workflows with their steps and transitions."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from workflows.seeding import DEFAULT_SEED, SeedError, describe, run_seed, validate_seed


class Command(BaseCommand):
    """Seed the core workflows (needs the roles synced from auth)."""

    help = "Seed the 5 core workflows, their steps and transitions."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --seed."""
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

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate the seed, run the workflow seed step and print what changed."""
        try:
            report = run_seed(validate_seed(options["seed"]), repair=bool(options["repair"]))
        except SeedError as exc:
            raise CommandError(str(exc)) from exc
        except IntegrityError as exc:
            raise CommandError(
                f"Seeding conflicts with rows people added or edited ({exc}); change or remove those "
                "rows (or run 'inv reset.workflow'), then seed again."
            ) from exc
        for line in describe(report):
            self.stdout.write(line)
