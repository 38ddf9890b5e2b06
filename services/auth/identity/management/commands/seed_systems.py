"""Seed the four systems, their Admin roles and admin users."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from identity import seeding
from identity.passwords import PasswordSource

from ._common import say, user_errors


class Command(BaseCommand):
    """Seed the four systems, their Admin roles and admin users."""

    help = "Seed the four systems, their Admin roles and admin users."

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the step and print its report."""
        passwords = PasswordSource()
        with user_errors():
            report = seeding.seed_systems(passwords, seeding.Policy(seeding.read_last_seed()))
        say(self, report.lines() + passwords.notes)
