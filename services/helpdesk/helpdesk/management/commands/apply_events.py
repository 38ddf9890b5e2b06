"""Apply sync events from a JSON-lines file or stdin, in one transaction."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.test.utils import override_settings

from helpdesk.handlers import APPLIED, DUPLICATE, IGNORED, InvalidEvent, handle_event
from helpdesk.management.base import HelpdeskCommand


def read_events(stream: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, envelope) for every non-blank JSON line."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            envelope = json.loads(line)
        except json.JSONDecodeError as error:
            message = f"Line {number} is not valid JSON ({error.msg}); send one JSON object per line."
            raise CommandError(message) from None
        yield number, envelope


def apply_stream(stream: TextIO) -> dict[str, Any]:
    """Apply every event of the stream in one transaction and count the outcomes."""
    report: dict[str, Any] = {APPLIED: 0, DUPLICATE: 0, "deferred": 0, IGNORED: 0, "ids": []}
    with transaction.atomic():
        for number, envelope in read_events(stream):
            try:
                outcome = handle_event(envelope)
            except InvalidEvent as error:
                raise CommandError(f"Line {number}: {error}") from None
            report[outcome] += 1
            if outcome in (APPLIED, DUPLICATE):
                report["ids"].append(str(envelope["id"]))
    return report


class Command(HelpdeskCommand):
    """Apply sync events from a JSON-lines file or stdin, in one transaction."""

    stealth_options = ("stdin",)
    help = "Apply hdts.user.sync and hdts.employee.sync events from JSON lines, in one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the input and the output format."""
        parser.add_argument(
            "file",
            nargs="?",
            default="-",
            help="JSON-lines file of event envelopes, or - for stdin (default -).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: human text)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Apply the events and print the outcome counts.

        Without query logging: under DEBUG, Django would keep every statement of the batch.
        """
        with override_settings(DEBUG=False):
            self.apply(**options)

    def apply(self, **options: Any) -> None:
        """Apply the events and print the outcome counts."""
        source: str = options["file"]
        if source == "-":
            report = apply_stream(options.get("stdin") or sys.stdin)
        else:
            path = Path(source)
            try:
                with path.open(encoding="utf-8") as stream:
                    report = apply_stream(stream)
            except OSError as error:
                message = f"Cannot read {path} ({error.strerror}); give an existing JSON-lines file or -."
                raise CommandError(message) from None
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(
            f"Events: {report[APPLIED]} applied, {report[DUPLICATE]} duplicate, "
            f"{report['deferred']} deferred, {report[IGNORED]} ignored."
        )
