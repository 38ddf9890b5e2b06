"""Wait until the given sync events are applied by the helpdesk workers."""

from __future__ import annotations

import json
import math
import sys
import uuid
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import CommandError, CommandParser

from helpdesk.management.base import HelpdeskCommand
from helpdesk.waiting import WaitError, check_database, parse_event_ids, wait_for_events

DEFAULT_TIMEOUT = 60.0


def parse_timeout(value: str) -> float:
    """Return --timeout as seconds (a finite number of 0 or more)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise CommandError(f"--timeout {value!r} is not a number of seconds; give 0 or more, e.g. 60.")
    return seconds


def read_ids(source: str, stdin: TextIO) -> list[uuid.UUID]:
    """Read the event ids from stdin ("-") or a file."""
    if source == "-":
        return parse_event_ids(stdin)
    try:
        with Path(source).open(encoding="utf-8") as stream:
            return parse_event_ids(stream)
    except OSError as error:
        raise CommandError(f"Cannot read {source} ({error.strerror}); give an existing file or -.") from None


class Command(HelpdeskCommand):
    """Wait until the given sync events are applied by the helpdesk workers."""

    help = "Wait until every given event id is recorded in ProcessedEvent (applied)."
    stealth_options = ("stdin",)
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the input, --timeout and --json."""
        parser.add_argument(
            "file",
            nargs="?",
            default="-",
            help="JSON-lines envelopes, objects with an id, or bare ids; - for stdin (default -).",
        )
        parser.add_argument(
            "--timeout",
            default=str(DEFAULT_TIMEOUT),
            help=f"Seconds to wait before failing (default {DEFAULT_TIMEOUT:g}).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: human text)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read the ids, wait for them and report; fail with one sentence on timeout."""
        timeout = parse_timeout(options["timeout"])
        try:
            ids = read_ids(options["file"], options.get("stdin") or sys.stdin)
            check_database()
        except WaitError as error:
            raise CommandError(str(error)) from None
        report = wait_for_events(ids, timeout)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        if report.missing:
            raise CommandError(report.failure())
        if not options["json"]:
            self.stdout.write(f"All {report.total} events were applied ({report.seconds:.2f} s).")
