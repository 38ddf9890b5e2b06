"""Reconcile the HDTSUser and ExternalEmployee mirrors with auth's snapshot (JSON lines)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from helpdesk.handlers import QUEUES
from helpdesk.management.base import HelpdeskCommand
from helpdesk.reconcile import Report, Snapshot, SnapshotError, iso, parse_moment, read_snapshot, reconcile


def describe(report: Report, check: bool) -> list[str]:
    """Return the human report, one line each."""
    head = "Check only, nothing written" if check else "Reconciled"
    lines = [f"{head}: {report.service} against auth's snapshot taken at {iso(report.taken_at)}."]
    for queue, counts in report.queues.items():
        lines.append(
            f"{queue}: {counts.created} created, {counts.updated} updated, {counts.deleted} deleted, "
            f"{counts.unchanged} unchanged, {counts.newer} newer than the snapshot"
        )
    lines += [f"Problem: {problem}" for problem in report.problems]
    if not report.changed:
        lines.append("Nothing to do: the mirrors match the snapshot.")
    return lines


class Command(HelpdeskCommand):
    """Make the mirrors equal auth's snapshot: upsert its entities, delete rows it lacks."""

    stealth_options = ("stdin",)
    help = (
        "Reconcile the hdts.user.sync and hdts.employee.sync mirrors with auth's snapshot "
        "(export_events --snapshot JSON lines), in one transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """Declare the input, --json, --check, --taken-at and --queue."""
        parser.add_argument(
            "file",
            nargs="?",
            default="-",
            help="JSON-lines snapshot of auth (any queues), or - for stdin (default -).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON report on stdout (default: human text)."
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
            choices=QUEUES,
            default=None,
            help="Reconcile only this queue; repeat for several (default: every queue consumed here).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read the snapshot, reconcile and print the report."""
        queues: list[str] = options["queue"] or list(QUEUES)
        try:
            taken_at = None
            if options["taken_at"] is not None:
                taken_at = parse_moment(options["taken_at"], "--taken-at")
            source: str = options["file"]
            snapshot: Snapshot
            if source == "-":
                snapshot = read_snapshot(options.get("stdin") or sys.stdin, queues, taken_at)
            else:
                path = Path(source)
                try:
                    with path.open(encoding="utf-8") as stream:
                        snapshot = read_snapshot(stream, queues, taken_at)
                except OSError as error:
                    message = f"Cannot read {path} ({error.strerror}); give an existing JSON-lines file or -."
                    raise CommandError(message) from None
        except SnapshotError as error:
            raise CommandError(f"{error} Nothing was written.") from None
        report = reconcile(snapshot, check=options["check"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
            return
        for line in describe(report, options["check"]):
            self.stdout.write(line)
