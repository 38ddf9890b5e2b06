"""Share option parsing and error handling among the helpdesk commands."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from helpdesk.seeding import StepReport


def count_arg(value: str) -> int:
    """Parse a count option: a whole number of 0 or more."""
    try:
        number = int(value)
    except ValueError:
        message = f"{value!r} is not a whole number; give a count of 0 or more"
        raise argparse.ArgumentTypeError(message) from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{number} is negative; give a count of 0 or more")
    return number


def seed_arg(value: str) -> int:
    """Parse the --seed option: any whole number."""
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number; give an integer seed") from None


def write_step(command: BaseCommand, step: StepReport) -> None:
    """Write one seed step's counts and notes, and say when nothing changed."""
    rows = step.rows
    command.stdout.write(
        f"{step.model}: {rows.created} created, {rows.updated} updated, {rows.repaired} repaired, "
        f"{rows.kept} kept, {rows.unchanged} unchanged"
    )
    for note in step.notes:
        command.stdout.write(f"Note: {note}")
    if not rows.changed:
        command.stdout.write("Nothing to do: already seeded.")


class HelpdeskCommand(BaseCommand):
    """Turn option errors into one-line CommandErrors with exit code 1."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        """Return a parser that raises CommandError instead of exiting with code 2."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.called_from_command_line = False
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        """Run the command; print an option error as one line and exit 1."""
        try:
            super().run_from_argv(argv)
        except CommandError as error:
            if "--traceback" in argv:
                raise
            self.stderr.write(f"CommandError: {error}")
            sys.exit(error.returncode)
