"""Wait until sync events are applied here (recorded in ProcessedEvent, not parked).

An event parked until what it needs arrives (a link event waiting for its role)
is recorded with the outcome "deferred"; it counts as missing until it is
applied. Services that never park events simply have no such rows.

This file is shared by the consumers: workflows/waiting.py and
helpdesk/waiting.py must stay byte-identical (tests/test_shared_copies.py at
the repo root checks it); edit both or neither. So it names nothing of one
service: the queues come from settings.SYNC_QUEUES_ON_BROKER.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from .models import ProcessedEvent

CHUNK_SIZE = 500
FIRST_INTERVAL = 0.02
MAX_INTERVAL = 0.05
BACKOFF = 1.5
REPORTED_MISSING_IDS = 20
DEFERRED = "deferred"


class WaitError(Exception):
    """Report input or a database the wait cannot work with (one sentence)."""


def parse_event_ids(lines: Iterable[str]) -> list[uuid.UUID]:
    """Return the distinct event ids of JSON-lines envelopes, {"id": ...} objects or bare ids."""
    ids: dict[uuid.UUID, None] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        raw: Any = text
        if text.startswith("{"):
            try:
                raw = json.loads(text).get("id")
            except (json.JSONDecodeError, AttributeError):
                raise WaitError(
                    f"Line {number} is not a JSON object; give envelopes or bare ids, one per line."
                ) from None
        try:
            ids[uuid.UUID(str(raw))] = None
        except ValueError:
            raise WaitError(f"Line {number} holds no event id ({raw!r}); give one UUID per line.") from None
    return list(ids)


def check_database() -> None:
    """Raise WaitError unless the database exists and has the ProcessedEvent table."""
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        in_memory = name == ":memory:" or "mode=memory" in name
        if not in_memory and not name.startswith("file:") and not Path(name).exists():
            raise WaitError(f"The database {name} does not exist; run migrate and the sync first.")
    if ProcessedEvent._meta.db_table not in connection.introspection.table_names():
        raise WaitError("The database is not migrated (no ProcessedEvent table); run migrate first.")


def still_missing(ids: list[uuid.UUID], *, full: bool) -> list[uuid.UUID]:
    """Return the ids not recorded yet, one short read per chunk of ids.

    Unless ``full``, stop after the first chunk that still misses some: the
    wait is not over anyway, and the later chunks are checked once it is.
    """
    missing: list[uuid.UUID] = []
    for start in range(0, len(ids), CHUNK_SIZE):
        chunk = ids[start : start + CHUNK_SIZE]
        recorded = ProcessedEvent.objects.filter(event_id__in=chunk).exclude(outcome=DEFERRED)
        found = set(recorded.values_list("event_id", flat=True))
        missing += [event_id for event_id in chunk if event_id not in found]
        if missing and not full:
            return missing + ids[start + CHUNK_SIZE :]
    return missing


def count_deferred(ids: list[uuid.UUID]) -> int:
    """Return how many of the ids are parked, waiting for what they need."""
    total = 0
    for start in range(0, len(ids), CHUNK_SIZE):
        chunk = ids[start : start + CHUNK_SIZE]
        total += ProcessedEvent.objects.filter(event_id__in=chunk, outcome=DEFERRED).count()
    return total


@dataclass(frozen=True)
class WaitReport:
    """Tell how many of the awaited events are recorded and which are still missing."""

    total: int
    missing: list[uuid.UUID]
    seconds: float
    timeout: float
    deferred: int = 0

    @property
    def processed(self) -> int:
        """Return the number of awaited events recorded as applied."""
        return self.total - len(self.missing)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON report: a success report, or the missing ids after a timeout."""
        if not self.missing:
            return {"processed": self.processed, "missing": 0, "seconds": round(self.seconds, 3)}
        return {
            "processed": self.processed,
            "missing": len(self.missing),
            "missing_ids": [str(event_id) for event_id in self.missing[:REPORTED_MISSING_IDS]],
        }

    def failure(self) -> str:
        """Return the one-sentence timeout message."""
        parked = f" ({self.deferred} of them wait for what they need)" if self.deferred else ""
        return (
            f"{len(self.missing)} of {self.total} events were not applied within {self.timeout:g} s"
            f"{parked}; "
            f"check that a worker of this service consumes {' and '.join(settings.SYNC_QUEUES_ON_BROKER)} "
            "and that the events were published to it, then wait again."
        )


def pause(seconds: float) -> None:
    """Sleep between two polls (a seam for tests)."""
    time.sleep(seconds)


def wait_for_events(ids: list[uuid.UUID], timeout: float) -> WaitReport:
    """Poll until every id is recorded or the timeout passes; hold no transaction between polls."""
    started = time.monotonic()
    deadline = started + timeout
    missing = list(ids)
    interval = FIRST_INTERVAL
    while True:
        now = time.monotonic()
        final = now >= deadline
        if missing:
            missing = still_missing(missing, full=final)
        if not missing or final:
            return WaitReport(
                total=len(ids),
                missing=missing,
                seconds=time.monotonic() - started,
                timeout=timeout,
                deferred=count_deferred(missing),
            )
        pause(min(interval, max(deadline - time.monotonic(), 0.0)))
        interval = min(interval * BACKOFF, MAX_INTERVAL)
