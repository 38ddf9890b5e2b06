"""Mark outbox events delivered, reading their ids from JSON lines."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity import outbox


def event_ids(lines: Iterable[str]) -> Iterator[str]:
    """Yield the event id of each line: an envelope, an object with "id", or a bare id."""
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(("{", '"')):
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CommandError(f"Line {number} is not valid JSON ({exc.msg}); fix the input.") from exc
            if isinstance(value, dict):
                if "id" not in value:
                    raise CommandError(f'Line {number} has no "id" field; give envelopes or ids.')
                value = value["id"]
            yield str(value)
        else:
            yield line


class Command(BaseCommand):
    """Mark outbox events delivered, reading their ids from JSON lines."""

    help = "Mark pending outbox events delivered; ids come from JSON lines or bare ids (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the input file and --json."""
        parser.add_argument(
            "file",
            nargs="?",
            default="-",
            help='JSON lines file (envelopes, {"id": ...} objects or bare ids); - is stdin (default: -).',
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help='Print {"marked": n, "unknown": n} on stdout (default: human text).',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read the ids, mark the pending events and print the counts."""
        source = options["file"]
        if source == "-":
            ids = list(event_ids(sys.stdin))
        else:
            path = Path(source)
            if not path.is_file():
                raise CommandError(f"File {path} does not exist; pass an exported events file or -.")
            with path.open(encoding="utf-8") as handle:
                ids = list(event_ids(handle))
        result = outbox.mark_delivered(ids)
        if options["json"]:
            self.stdout.write(json.dumps({"marked": result.marked, "unknown": result.unknown}))
        else:
            self.stdout.write(f"Marked {result.marked} events delivered; {result.unknown} ids unknown.")
