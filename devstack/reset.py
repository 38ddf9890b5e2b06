"""Remove a service's data: SQLite files are backed up first, PostgreSQL needs ``--yes``."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from devstack import registry
from devstack.commands import manage
from devstack.config import Settings
from devstack.errors import GuardError
from devstack.holders import SQLITE_SUFFIXES, sqlite_path
from devstack.urls import mask_url


def backup_sqlite(database: Path, folder: Path, service: str) -> Path:
    """Copy ``database`` consistently (SQLite's backup API, WAL included) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{service}-{time.strftime('%Y%m%d-%H%M%S')}.sqlite3"
    n = 1
    while target.exists():
        target = folder / f"{service}-{time.strftime('%Y%m%d-%H%M%S')}-{n}.sqlite3"
        n += 1
    source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    return target


def reset(settings: Settings, service: registry.Service, backup: bool, yes: bool) -> str:
    """Remove ``service``'s data and return one line saying what happened."""
    database = sqlite_path(settings, service)
    if database is None:
        url = mask_url(settings.database_url(service.name))
        if not yes:
            raise GuardError(
                f"{service.name}: resetting {url} deletes its PostgreSQL data for good; "
                "rerun with --yes to confirm."
            )
        manage(settings, service, "flush", "--noinput")
        return f"flushed every table of {url}"
    if not database.exists():
        return f"nothing to reset: {database.name} does not exist"
    saved = ""
    if backup:
        path = backup_sqlite(database, settings.root / settings.backup_dir, service.name)
        saved = (
            f"; backup at {path.relative_to(settings.root) if path.is_relative_to(settings.root) else path}"
        )
    for suffix in SQLITE_SUFFIXES:
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return f"removed {database.name}{saved}"
