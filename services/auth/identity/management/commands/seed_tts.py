"""Seed the TTS roles and the four TTS users."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from identity import seeding
from identity.passwords import PasswordSource

from ._common import say, user_errors


class Command(BaseCommand):
    """Seed the TTS roles and the four TTS users."""

    help = "Seed the TTS roles and the four TTS users."

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the step and print its report."""
        passwords = PasswordSource()
        with user_errors():
            report = seeding.seed_tts(passwords, seeding.Policy(seeding.read_last_seed()))
        say(self, report.lines() + passwords.notes)
