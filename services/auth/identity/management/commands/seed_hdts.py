"""Seed the HDTS roles and the five HDTS users."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from identity import seeding
from identity.passwords import PasswordSource

from ._common import say, user_errors


class Command(BaseCommand):
    """Seed the HDTS roles and the five HDTS users."""

    help = "Seed the HDTS roles and the five HDTS users."

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the step and print its report."""
        passwords = PasswordSource()
        with user_errors():
            report = seeding.seed_hdts(passwords, seeding.Policy(seeding.read_last_seed()))
        say(self, report.lines() + passwords.notes)
