"""Print pending outbox events as JSON lines, in recording order."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity import outbox
from identity.errors import SeedError
from identity.seeding import parse_int


def write_events(stream: TextIO, limit: int | None) -> int:
    """Write pending events as JSON lines; return how many."""
    written = 0
    for event in outbox.pending_events(limit):
        stream.write(json.dumps(outbox.envelope(event)) + "\n")
        written += 1
    return written


def write_atomically(path: Path, limit: int | None) -> int:
    """Write pending events to a temporary file beside `path`, then rename it."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            written = write_events(handle, limit)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return written


class Command(BaseCommand):
    """Print pending outbox events as JSON lines, in recording order."""

    help = "Export undelivered outbox events as JSON lines (stdout, or a file written atomically)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --output and --limit."""
        parser.add_argument(
            "--output",
            default=None,
            help="Write the events to this file atomically instead of stdout (default: stdout).",
        )
        parser.add_argument(
            "--limit",
            default=None,
            help="Export at most this many events, a positive integer (default: all).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Validate the options and export the events."""
        limit: int | None = None
        if options["limit"] is not None:
            try:
                limit = parse_int(options["limit"], "--limit")
            except SeedError as exc:
                raise CommandError(str(exc)) from exc
            if limit < 1:
                raise CommandError(f"--limit must be 1 or more, got {limit}; pass a positive number.")
        if options["output"] is None:
            try:
                write_events(self.stdout, limit)
                self.stdout.flush()
            except BrokenPipeError:
                # The reader closed the pipe (e.g. `| head`): stop quietly.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        path = Path(options["output"])
        if not path.parent.is_dir():
            raise CommandError(
                f"The folder of --output {path} does not exist; create it or pick another path."
            )
        written = write_atomically(path, limit)
        self.stdout.write(f"Wrote {written} events to {path}.")
