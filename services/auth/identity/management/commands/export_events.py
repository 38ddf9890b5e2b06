"""Print pending outbox events (or a snapshot of the synced state) as JSON lines."""

from __future__ import annotations

import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from identity import outbox, snapshot
from identity.errors import SeedError
from identity.seeding import parse_int


def pending_envelopes(limit: int | None) -> Iterator[dict[str, Any]]:
    """Yield the envelopes of pending events in recording order."""
    for event in outbox.pending_events(limit):
        yield outbox.envelope(event)


def write_events(stream: TextIO, envelopes: Iterable[dict[str, Any]]) -> int:
    """Write envelopes as JSON lines; return how many."""
    written = 0
    for envelope in envelopes:
        stream.write(json.dumps(envelope) + "\n")
        written += 1
    return written


def write_atomically(path: Path, envelopes: Iterable[dict[str, Any]]) -> int:
    """Write envelopes to a temporary file beside `path`, then rename it."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            written = write_events(handle, envelopes)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return written


class Command(BaseCommand):
    """Print pending outbox events (or a snapshot of the synced state) as JSON lines."""

    help = (
        "Export undelivered outbox events as JSON lines (stdout, or a file written atomically); "
        "with --snapshot, one update event per current synced entity instead."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare --output, --limit, --snapshot and --queue."""
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
        parser.add_argument(
            "--snapshot",
            action="store_true",
            help=(
                "Export one update event (fresh id) per current synced entity, timed like its latest "
                "outbox event, each with the snapshot's taken_at, to rebuild or reconcile a consumer; "
                "the outbox is not touched (default: off)."
            ),
        )
        parser.add_argument(
            "--queue",
            action="append",
            choices=outbox.QUEUES,
            default=None,
            help="With --snapshot, export only this queue; repeat for several (default: every queue).",
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
        if options["queue"] and not options["snapshot"]:
            raise CommandError("--queue only filters --snapshot; add --snapshot or drop --queue.")
        envelopes: Iterable[dict[str, Any]]
        if options["snapshot"]:
            envelopes = itertools.islice(snapshot.snapshot_events(options["queue"] or outbox.QUEUES), limit)
        else:
            envelopes = pending_envelopes(limit)
        if options["output"] is None:
            try:
                write_events(self.stdout, envelopes)
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
        written = write_atomically(path, envelopes)
        self.stdout.write(f"Wrote {written} events to {path}.")
