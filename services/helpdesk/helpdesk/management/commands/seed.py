"""Seed helpdesk employees then tickets, in one transaction.

The seed owns the employees MA0001..MA<employees> and the tickets TX00000001..TX<tickets>.
It creates the missing ones, gives rows untouched since the last seed the new seed's values,
keeps rows people edited (``--repair`` gives them their seeded values back) and never writes
people's other rows. A count below the last seed's is refused before anything is written.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import IntegrityError

from helpdesk.management.base import HelpdeskCommand, count_arg, seed_arg
from helpdesk.seeding import DEFAULT_EMPLOYEES, DEFAULT_SEED, DEFAULT_TICKETS, SeedError, SeedReport, run_seed


def human_lines(report: SeedReport) -> list[str]:
    """Return the human summary of a seed report, one line per model and note."""
    lines = [
        f"{step.model}: {step.rows.created} created, {step.rows.updated} updated, "
        f"{step.rows.repaired} repaired, {step.rows.kept} kept, {step.rows.unchanged} unchanged"
        for step in report.steps
    ]
    lines.extend(f"Note: {note}" for note in report.notes)
    if not report.changed:
        lines.append("Nothing to do: already seeded.")
    return lines


class Command(HelpdeskCommand):
    """Seed helpdesk employees then tickets, in one transaction.

    The seed owns the employees MA0001..MA<employees> and the tickets TX00000001..TX<tickets>.
    It creates the missing ones, gives rows untouched since the last seed the new seed's values,
    keeps rows people edited (``--repair`` gives them their seeded values back) and never writes
    people's other rows. A count below the last seed's is refused before anything is written.
    """

    help = (
        "Seed helpdesk employees then tickets in one transaction (idempotent). Missing seeded rows "
        "are created again, rows people edited are kept unless --repair, people's other rows are "
        "never written, and a count below the last seed's is refused. --json prints "
        '{"service", "options", "models": {Model: {"created", "updated", "unchanged", "repaired", '
        '"kept"}}, "counts", "changed"}.'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the counts, the seed and the output format."""
        parser.add_argument(
            "--employees",
            type=count_arg,
            default=DEFAULT_EMPLOYEES,
            help=f"Number of employees MA0001.. to seed, at most 9,999 (default {DEFAULT_EMPLOYEES}).",
        )
        parser.add_argument(
            "--tickets",
            type=count_arg,
            default=DEFAULT_TICKETS,
            help=f"Number of tickets TX00000001.. to seed (default {DEFAULT_TICKETS}).",
        )
        parser.add_argument(
            "--seed",
            type=seed_arg,
            default=DEFAULT_SEED,
            help=f"Integer seed of the generated values (default {DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--repair",
            action="store_true",
            help="Give seeded rows that people edited their seeded values back (default: keep edits).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: human text)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the seed and print its report."""
        try:
            report = run_seed(
                options["employees"], options["tickets"], options["seed"], repair=bool(options["repair"])
            )
        except SeedError as error:
            raise CommandError(str(error)) from error
        except IntegrityError as error:
            raise CommandError(
                f"Seeding conflicts with rows people added or edited ({error}); change or remove "
                "those rows (or run 'inv reset.helpdesk'), then seed again."
            ) from error
        if options["json"]:
            for line in human_lines(report):
                self.stderr.write(line)
            self.stdout.write(json.dumps(report.as_json()))
        else:
            for line in human_lines(report):
                self.stdout.write(line)
