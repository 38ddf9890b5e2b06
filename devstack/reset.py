"""Remove a service's data: SQLite files are backed up first, PostgreSQL needs ``--yes``.

A SQLite file that is not a usable database (no SQLite header, damaged pages, unreadable) cannot
be copied with SQLite's backup API: it is moved aside whole instead, with its ``-wal``/``-shm``,
as ``<backup_dir>/<service>-corrupt-<time>.sqlite3``. A backup that fails (a full or read-only
backups folder) deletes its partial copy and removes nothing; an empty file holds nothing to
keep and is removed; a folder where the file belongs is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import time
from pathlib import Path

from devstack import database as db
from devstack import registry
from devstack.commands import manage
from devstack.config import Settings
from devstack.errors import GuardError
from devstack.holders import SQLITE_SUFFIXES, sqlite_path
from devstack.urls import mask_url


def unused(folder: Path, stem: str) -> Path:
    """``folder/<stem>-<time>.sqlite3``, numbered when that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / f"{stem}-{stamp}.sqlite3"
    n = 1
    while any(Path(f"{target}{suffix}").exists() for suffix in SQLITE_SUFFIXES):
        target = folder / f"{stem}-{stamp}-{n}.sqlite3"
        n += 1
    return target


def backup_sqlite(database: Path, folder: Path, service: str) -> Path:
    """Copy ``database`` consistently (SQLite's backup API, WAL included) into ``folder``.

    A copy that fails is deleted before the error is raised: no partial or 0-byte backup stays.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = unused(folder, service)
    try:
        db.copy_sqlite(database, target)
        if target.stat().st_size == 0:  # nothing was copied: not a backup
            raise sqlite3.DatabaseError("the copy is empty")
    except BaseException:
        for suffix in SQLITE_SUFFIXES:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        raise
    return target


def move_aside(database: Path, folder: Path, service: str) -> Path:
    """Move ``database`` and its ``-wal``/``-shm``/``-journal`` into ``folder`` under a clear name.

    A move across file systems copies and then removes; a copy that fails is deleted and the
    files stay where they were.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = unused(folder, f"{service}-corrupt")
    moves = [
        (Path(f"{database}{suffix}"), Path(f"{target}{suffix}"))
        for suffix in SQLITE_SUFFIXES
        if os.path.lexists(f"{database}{suffix}")
    ]
    done: list[tuple[Path, Path]] = []
    try:
        for source, copy in moves:
            try:
                os.rename(source, copy)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                try:
                    shutil.copy2(source, copy)
                except BaseException:
                    copy.unlink(missing_ok=True)
                    raise
                source.unlink()
            done.append((source, copy))
    except BaseException:
        for source, copy in reversed(done):  # put back what was moved: all or nothing
            with contextlib.suppress(OSError):
                shutil.move(copy, source)
        raise
    return target


def reset(settings: Settings, service: registry.Service, backup: bool, yes: bool, plan: bool = False) -> str:
    """Remove ``service``'s data and return one line saying what happened.

    With ``plan`` nothing is touched: the line says what a real reset would do (and the same
    refusals are raised).
    """
    database = sqlite_path(settings, service)
    if database is None:
        url = mask_url(settings.database_url(service.name))
        if not yes:
            raise GuardError(
                f"{service.name}: resetting {url} deletes its PostgreSQL data for good; "
                "rerun with --yes to confirm."
            )
        if plan:
            return f"flush every table of {url}"
        manage(settings, service, "flush", "--noinput")
        return f"flushed every table of {url}"
    if not os.path.lexists(database):
        return f"nothing to reset: {database.name} does not exist"
    folder = settings.root / settings.backup_dir
    damage = db.inspect(database)
    if damage is db.FOLDER:
        raise GuardError(
            f"{service.name}'s database {db.shown(settings, database)} is a folder, not a SQLite file; "
            "reset removes files only: move that folder away yourself, then rerun."
        )
    if plan:
        return planned(settings, database, damage, backup)
    if damage is db.EMPTY:
        remove(database)
        return f"removed the empty {database.name} (0 bytes: there was nothing to back up)"
    if not backup:
        remove(database)
        return f"removed {database.name}"
    if damage is None:
        try:
            path = backup_sqlite(database, folder, service.name)
        except sqlite3.DatabaseError as exc:  # the source's own damage, or the copy could not be written
            damage = next((d for known, d in SOURCE_DAMAGE.items() if known in str(exc).lower()), None)
            if damage is None:
                raise refuse(settings, service, database, folder, exc) from None
        except OSError as exc:
            raise refuse(settings, service, database, folder, exc) from None
        else:
            remove(database)
            return f"removed {database.name}; backup at {db.shown(settings, path)}"
    try:
        path = move_aside(database, folder, service.name)
    except OSError as exc:
        raise refuse(settings, service, database, folder, exc) from None
    words = f" ({damage.words})" if damage.words else ""
    return f"moved {database.name} aside to {db.shown(settings, path)}: it {damage.cause}{words}"


def planned(settings: Settings, database: Path, damage: db.Damage | None, backup: bool) -> str:
    """What :func:`reset` would do with an existing file that is not a folder."""
    folder = db.shown(settings, settings.root / settings.backup_dir)
    if damage is db.EMPTY:
        return f"remove the empty {database.name} (0 bytes: nothing to back up)"
    if not backup:
        return f"remove {database.name} (--no-backup)"
    if damage is None:
        return f"back up {database.name} to {folder} with SQLite's backup API, then remove it"
    return f"move {database.name} aside to {folder}: it {damage.cause}"


#: SQLite's words for a source file that cannot be copied page by page (it is moved aside whole).
SOURCE_DAMAGE = {k: v for k, v in db.SQLITE_MESSAGES.items() if k != "unable to open database file"}


def refuse(
    settings: Settings, service: registry.Service, database: Path, folder: Path, exc: BaseException
) -> GuardError:
    why = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if db.disk_full(folder):  # SQLite says "disk I/O error" when it cannot grow the copy
        why = f"the disk is full: {why}"
    return GuardError(
        f"{service.name}: could not keep a copy of {db.shown(settings, database)} in "
        f"{db.shown(settings, folder)} ({why}), so nothing was removed; free space there or fix its "
        f"permissions (devstack.backup_dir), or rerun with --no-backup to remove the data without a copy."
    )


def remove(database: Path) -> None:
    for suffix in SQLITE_SUFFIXES:
        Path(f"{database}{suffix}").unlink(missing_ok=True)
