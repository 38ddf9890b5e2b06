"""Seed helpdesk tickets only."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from helpdesk.management.base import HelpdeskCommand, count_arg, seed_arg, write_step
from helpdesk.seeding import (
    DEFAULT_SEED,
    DEFAULT_TICKETS,
    SeedError,
    read_last_seed,
    seed_tickets,
    validate_counts,
)


class Command(HelpdeskCommand):
    """Seed helpdesk tickets only."""

    help = "Seed helpdesk tickets TX00000001.. over the existing employees (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the count and the seed."""
        parser.add_argument(
            "--count",
            type=count_arg,
            default=DEFAULT_TICKETS,
            help=f"Number of tickets to seed (default {DEFAULT_TICKETS}).",
        )
        parser.add_argument(
            "--seed",
            type=seed_arg,
            default=DEFAULT_SEED,
            help=f"Integer seed of the generated values (default {DEFAULT_SEED}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Seed the tickets and print what changed."""
        try:
            validate_counts(None, options["count"])
            with transaction.atomic():
                step = seed_tickets(options["count"], options["seed"], last=read_last_seed())
        except SeedError as error:
            raise CommandError(str(error)) from error
        write_step(self, step)
