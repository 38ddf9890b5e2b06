"""What each service's database holds, read with one ``stack_state`` process per service."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from devstack import database
from devstack.commands import manage_json
from devstack.config import Settings
from devstack.holders import sqlite_path
from devstack.registry import Service

#: A pending-events key for events a step of this run recorded but nobody has counted yet.
UNCOUNTED = "(recorded by this run, not counted yet)"


@dataclass
class ServiceState:
    """A service's database as ``manage.py stack_state --json`` reports it."""

    service: str
    vendor: str = "sqlite"
    database: str = ""
    pending_migrations: list[str] = field(default_factory=list)
    counts: dict[str, int] | None = None
    pending_events: dict[str, int] = field(default_factory=dict)
    delivered_events: int = 0
    processed_events: int = 0
    deferred_events: int = 0
    last_seed: dict[str, int] | None = None
    #: Per seed-owned model, for the last seed: rows it owns (expected), absent (missing), made
    #: by people (extra) and, when asked for, seeded rows people changed (edited). None: unknown.
    seeded: dict[str, dict[str, int]] | None = None
    integrity_ok: bool = True
    problems: list[str] = field(default_factory=list)
    exists: bool = True

    @property
    def pending_event_total(self) -> int:
        return sum(self.pending_events.values())

    @property
    def missing_seeded(self) -> int:
        """Seeded rows that are gone (0 when the service does not say)."""
        return sum(int(m.get("missing", 0)) for m in (self.seeded or {}).values())

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> ServiceState:
        integrity = report.get("integrity") or {}
        database = report.get("database") or {}
        return cls(
            service=str(report["service"]),
            vendor=str(database.get("vendor", "")),
            database=str(database.get("name", "")),
            pending_migrations=list(report.get("migrations", {}).get("pending", [])),
            counts=report.get("counts"),
            pending_events=dict(report.get("pending_events") or {}),
            delivered_events=int(report.get("delivered_events") or 0),
            processed_events=int(report.get("processed_events") or 0),
            deferred_events=int(report.get("deferred_events") or 0),
            last_seed=report.get("last_seed"),
            seeded=report.get("seeded"),
            integrity_ok=bool(integrity.get("ok", True)),
            problems=list(integrity.get("problems", [])),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "database": self.database,
            "exists": self.exists,
            "pending_migrations": self.pending_migrations,
            "counts": self.counts,
            "pending_events": self.pending_events,
            "delivered_events": self.delivered_events,
            "processed_events": self.processed_events,
            "deferred_events": self.deferred_events,
            "last_seed": self.last_seed,
            "seeded": self.seeded,
            "integrity": {"ok": self.integrity_ok, "problems": self.problems},
        }


def read(settings: Settings, service: Service) -> ServiceState:
    """Read one service's state; a missing SQLite file needs no process at all.

    A SQLite file the service could not use (a folder, an empty or unreadable file, no SQLite
    header) is refused before its process starts, which would write to it or fail with a traceback.
    """
    path = sqlite_path(settings, service)
    if path is not None:
        if not path.exists():
            return ServiceState(
                service.name,
                database=str(path),
                exists=False,
                pending_migrations=["(all: the database does not exist yet)"],
            )
        database.check(settings, service)
    return ServiceState.from_report(manage_json(settings, service, "stack_state"))


def read_all(settings: Settings, services: tuple[Service, ...]) -> dict[str, ServiceState]:
    """Read several services' states in parallel (one process each)."""
    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
        states = list(pool.map(lambda s: read(settings, s), services))
    return {state.service: state for state in states}
