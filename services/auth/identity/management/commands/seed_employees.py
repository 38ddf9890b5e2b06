"""Seed the 8 fixed HDTS employees plus N generated ones."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from identity import seeding
from identity.passwords import PasswordSource

from ._common import say, user_errors


class Command(BaseCommand):
    """Seed the 8 fixed HDTS employees plus N generated ones."""

    help = "Seed the 8 fixed HDTS employees plus N generated ones (deterministic by --seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --count and --seed."""
        parser.add_argument(
            "--count",
            default="0",
            help=f"Extra employees to generate, 0-{seeding.MAX_EXTRA_EMPLOYEES} (default: 0).",
        )
        parser.add_argument(
            "--seed",
            default=str(seeding.DEFAULT_SEED),
            help=f"Integer seed of the generated values (default: {seeding.DEFAULT_SEED}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate the options, run the step and print its report."""
        passwords = PasswordSource()
        with user_errors():
            count = seeding.parse_employee_count(options["count"], "--count")
            seed = seeding.parse_int(options["seed"], "--seed")
            report = seeding.seed_employees(count, seed, passwords, seeding.Policy(seeding.read_last_seed()))
        say(self, report.lines() + passwords.notes)
