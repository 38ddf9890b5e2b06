"""Reconcile the Role and RoleUser mirrors with auth's snapshot (JSON lines)."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.handlers import CONSUMED_QUEUES
from workflows.reconcile import Report, SnapshotError, iso, parse_moment, read_snapshot, reconcile


@contextmanager
def _open_source(source: str, stdin: TextIO) -> Iterator[TextIO]:
    """Yield the text stream to read: stdin for '-', else the named file."""
    if source == "-":
        yield stdin
        return
    path = Path(source)
    if not path.is_file():
        raise CommandError(f"Snapshot file {source} does not exist: pass a JSON-lines file or - for stdin.")
    with path.open(encoding="utf-8") as stream:
        yield stream


def describe(report: Report, check: bool) -> list[str]:
    """Return the human report, one line each."""
    head = "Check only, nothing written" if check else "Reconciled"
    lines = [f"{head}: {report.service} against auth's snapshot taken at {iso(report.taken_at)}."]
    for queue, counts in report.queues.items():
        lines.append(
            f"{queue}: {counts.created} created, {counts.updated} updated, {counts.deleted} deleted, "
            f"{counts.unchanged} unchanged, {counts.newer} newer than the snapshot"
        )
    if report.deferred_superseded:
        lines.append(f"Parked events superseded by the snapshot: {report.deferred_superseded}")
    lines += [f"Problem: {problem}" for problem in report.problems]
    if not report.changed:
        lines.append("Nothing to do: the mirrors match the snapshot.")
    return lines


class Command(BaseCommand):
    """Make the mirrors equal auth's snapshot: upsert its entities, delete rows it lacks."""

    help = (
        "Reconcile the tts.role.sync and tts.user_system_role.sync mirrors with auth's snapshot "
        "(export_events --snapshot JSON lines), in one transaction."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the source, --json, --check, --taken-at and --queue."""
        parser.add_argument(
            "source",
            nargs="?",
            default="-",
            help="JSON-lines snapshot of auth (any queues), or - to read stdin (default: -).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: off)."
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Report what reconciling would change without writing anything (default: off).",
        )
        parser.add_argument(
            "--taken-at",
            default=None,
            help=(
                "ISO 8601 time the snapshot was taken: rows missing from it are deleted only if synced "
                "at or before it (default: the lines' taken_at, else their latest occurred_at, else now)."
            ),
        )
        parser.add_argument(
            "--queue",
            action="append",
            choices=CONSUMED_QUEUES,
            default=None,
            help="Reconcile only this queue; repeat for several (default: every queue consumed here).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read the snapshot, reconcile and print the report."""
        stdin: TextIO = options.get("stdin") or sys.stdin
        try:
            taken_at = None
            if options["taken_at"] is not None:
                taken_at = parse_moment(options["taken_at"], "--taken-at")
            with _open_source(options["source"], stdin) as stream:
                snapshot = read_snapshot(stream, options["queue"] or CONSUMED_QUEUES, taken_at)
        except SnapshotError as exc:
            raise CommandError(f"{exc} Nothing was written.") from exc
        report = reconcile(snapshot, check=options["check"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
            return
        for line in describe(report, options["check"]):
            self.stdout.write(line)
