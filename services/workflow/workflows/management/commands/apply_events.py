"""Apply sync events from a JSON-lines file or stdin in one transaction."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test.utils import override_settings

from workflows.handlers import EventError, handle_event

RECEIVED = ("applied", "duplicate", "deferred")


@contextmanager
def _open_source(source: str, stdin: TextIO) -> Iterator[TextIO]:
    """Yield the text stream to read: stdin for '-', else the named file."""
    if source == "-":
        yield stdin
        return
    path = Path(source)
    if not path.is_file():
        raise CommandError(f"Event file {source} does not exist: pass a JSON-lines file or - for stdin.")
    with path.open(encoding="utf-8") as stream:
        yield stream


class Command(BaseCommand):
    """Apply tts.role.sync and tts.user_system_role.sync events; ignore other queues."""

    help = "Apply sync events (one JSON object per line) from FILE or stdin in one transaction."
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the source and --json."""
        parser.add_argument(
            "source",
            nargs="?",
            default="-",
            help="JSON-lines file of events, or - to read stdin (default: -).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: off)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Apply every event, all or nothing, and print the outcome counts.

        Without query logging: under DEBUG, Django would keep every statement of the batch.
        """
        with override_settings(DEBUG=False):
            self.apply(**options)

    def apply(self, **options: Any) -> None:
        """Apply every event, all or nothing, and print the outcome counts."""
        stdin: TextIO = options.get("stdin") or sys.stdin
        report: dict[str, Any] = {name: 0 for name in (*RECEIVED, "ignored")}
        ids: list[str] = []
        with _open_source(options["source"], stdin) as stream, transaction.atomic():
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    envelope = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CommandError(
                        f"Line {number} is not valid JSON ({exc.msg}): fix the event file and retry."
                    ) from exc
                try:
                    outcome = handle_event(envelope)
                except EventError as exc:
                    raise CommandError(f"Line {number}: {exc} Nothing was applied.") from exc
                report[outcome] += 1
                if outcome in RECEIVED:
                    ids.append(str(envelope["id"]))
        report["ids"] = ids
        if options["json"]:
            self.stdout.write(json.dumps(report))
        else:
            self.stdout.write(
                f"Applied {report['applied']}, duplicate {report['duplicate']}, "
                f"deferred {report['deferred']}, ignored {report['ignored']} events."
            )
