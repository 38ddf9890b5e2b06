"""Print the one password of every seeded account of the checkout, alone on one line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from identity.passwords import seed_password


class Command(BaseCommand):
    """Print the seed password (``SEED_USER_PASSWORD``, else the checkout's generated one)."""

    help = "Print the password of every seeded account (admin@example.com included), alone on one line."
    requires_migrations_checks = False
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        """Print it; it is generated once per checkout when it does not exist yet."""
        self.stdout.write(seed_password())
