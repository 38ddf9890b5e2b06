"""Seed helpdesk employees only."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from helpdesk.management.base import HelpdeskCommand, count_arg, seed_arg, write_step
from helpdesk.seeding import (
    DEFAULT_EMPLOYEES,
    DEFAULT_SEED,
    SeedError,
    read_last_seed,
    seed_employees,
    validate_counts,
)


class Command(HelpdeskCommand):
    """Seed helpdesk employees only."""

    help = "Seed helpdesk employees MA0001.. (idempotent; a smaller count deletes nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the count and the seed."""
        parser.add_argument(
            "--count",
            type=count_arg,
            default=DEFAULT_EMPLOYEES,
            help=f"Number of employees to seed, at most 9,999 (default {DEFAULT_EMPLOYEES}).",
        )
        parser.add_argument(
            "--seed",
            type=seed_arg,
            default=DEFAULT_SEED,
            help=f"Integer seed of the generated values (default {DEFAULT_SEED}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Seed the employees and print what changed."""
        try:
            validate_counts(options["count"], None)
            with transaction.atomic():
                step = seed_employees(options["count"], options["seed"], last=read_last_seed())
        except SeedError as error:
            raise CommandError(str(error)) from error
        write_step(self, step)
