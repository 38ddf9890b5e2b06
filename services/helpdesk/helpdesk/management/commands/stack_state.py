"""Print the read-only state report the task runner uses.

Besides counts, events, the last seed's options and integrity, the report compares the
database with the last seed, per seed-owned model (Employee, Ticket)::

    "seeded": {"Ticket": {"expected": 20, "missing": 1, "extra": 3}, ...}

``expected`` is how many rows the last seed owns (its keys TX00000001..), ``missing`` how many
of them are absent (deleted; ``seed`` creates them again) and ``extra`` how many rows exist
under other keys (people's rows, never touched by the seed). With ``--edits`` each model also
gets ``edited``: seeded rows whose values differ from the seed's (``seed --repair`` restores
them); this generates every seeded row. ``seeded`` is null before the first seed.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from helpdesk.management.base import HelpdeskCommand
from helpdesk.state import stack_state


class Command(HelpdeskCommand):
    """Print the read-only state report the task runner uses.

    Besides counts, events, the last seed's options and integrity, the report compares the
    database with the last seed, per seed-owned model (Employee, Ticket)::

        "seeded": {"Ticket": {"expected": 20, "missing": 1, "extra": 3}, ...}

    ``expected`` is how many rows the last seed owns (its keys TX00000001..), ``missing`` how many
    of them are absent (deleted; ``seed`` creates them again) and ``extra`` how many rows exist
    under other keys (people's rows, never touched by the seed). With ``--edits`` each model also
    gets ``edited``: seeded rows whose values differ from the seed's (``seed --repair`` restores
    them); this generates every seeded row. ``seeded`` is null before the first seed.
    """

    help = (
        "Print the database, migration, count, event and integrity state (read-only). "
        '"seeded" gives, per seeded model, {"expected": rows the last seed owns, "missing": those absent, '
        '"extra": rows not made by the seed}, or null before the first seed; --edits adds "edited": '
        "seeded rows whose values differ from the seed's."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the output format."""
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document (default: indented JSON too)."
        )
        parser.add_argument(
            "--edits",
            action="store_true",
            help='Also count seeded rows people edited ("edited"; generates every seeded row).',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the report and print it."""
        state = stack_state(edits=bool(options["edits"]))
        if options["json"]:
            self.stdout.write(json.dumps(state))
        else:
            self.stdout.write(json.dumps(state, indent=2))
