"""Remember a verified stack so a re-run with nothing to do starts no service process.

After ``seed-all`` verifies the stack, the runner records what it verified: the options and a
fingerprint of everything that could change the answer: for each SQLite file and its
write-ahead log, the inode number, size, mtime and inode change time (ctime); the migration
files; the virtualenv stamps. While the fingerprint is unchanged, the previous verification
still holds. Any write to a database changes the ctime, which user space cannot set back (a
``touch -d`` that restores the mtime sets the ctime to now), and replacing the file changes the
inode. A new migration, a requirements change or a failed ``verify`` invalidates the record
too.

A PostgreSQL database is described by its identity (name and oid) and its server's next
transaction id (``pgprobe.marks``, asked through a service's interpreter, which has the driver):
every transaction that writes, in any database of that server, takes a transaction id, so any
write moves it and reads never do. Writes elsewhere on the server make the fast path re-check
(safe), never the other way round.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devstack import pgprobe, registry
from devstack.config import Settings
from devstack.holders import sqlite_path
from devstack.options import SeedOptions
from devstack.venvs import STAMP, venv_python

RECORD = "verified.json"


def fingerprint(settings: Settings) -> dict[str, Any] | None:
    """Describe the stack's databases cheaply; None when one of them cannot be described."""
    result: dict[str, Any] = {}
    postgres: dict[str, str] = {}
    for service in registry.SERVICES:
        database = sqlite_path(settings, service)
        if database is None:
            postgres[service.name] = settings.database_url(service.name)
            described: list[Any] = []
        elif settings.database_url(service.name):
            return None  # a SQLite file configured by URL: read the long way
        else:
            try:
                stat = database.stat()
            except OSError:
                return None
            described = [*_describe(stat), *_describe_optional(Path(f"{database}-wal"))]
        result[service.name] = {
            "database": described,
            "migrations": _migrations_digest(service.folder(settings.root)),
            "venv": _read(settings.venv_dir(service) / STAMP),
        }
    if postgres:
        found = postgres_marks(settings, postgres)
        if found is None or any(found.get(name) is None for name in postgres):
            return None
        for name in postgres:
            result[name]["database"] = found[name]
    return result


def postgres_marks(settings: Settings, urls: dict[str, str]) -> dict[str, Any] | None:
    """Ask ``pgprobe.marks`` for ``urls`` through the first of their services' interpreters."""
    python = venv_python(settings.venv_dir(registry.get(next(iter(urls)))))
    if not python.exists():
        return None
    env = {**os.environ, pgprobe.MARKS_VARIABLE: json.dumps(urls)}  # never on a command line
    try:
        done = subprocess.run(
            [str(python), "-I", "-B", str(Path(pgprobe.__file__).resolve())],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        found: dict[str, Any] = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return found


def _describe(stat: os.stat_result) -> list[int]:
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _describe_optional(path: Path) -> list[int]:
    try:
        return _describe(path.stat())
    except OSError:
        return [0, 0, 0, 0]


def _migrations_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*/migrations/*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def save(
    settings: Settings,
    options: SeedOptions,
    counts: dict[str, Any],
    info: Sequence[str] = (),
    states: Mapping[str, Any] | None = None,
) -> None:
    """Record a verified stack (call after every service process has exited).

    ``info`` is what the verify said besides passing (people's rows, their edits): a ``verify``
    of the unchanged stack says it again without reading the databases. ``states`` are the
    services' states as that verify read them (``status`` shows them while nothing changed).
    """
    current = fingerprint(settings)
    path = settings.state_dir() / RECORD
    if current is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "options": options.to_json(),
        "counts": counts,
        "fingerprint": current,
        "at": time.time(),
        "info": list(info),
        "states": dict(states or {}),
    }
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(record, indent=2), encoding="utf-8")
    os.replace(temp, path)


def load(settings: Settings) -> dict[str, Any] | None:
    """Return the record of the last verified stack if nothing changed since, else None."""
    path = settings.state_dir() / RECORD
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint(settings):
        return None
    return record


def forget(settings: Settings) -> None:
    """Drop the record; on a read-only checkout it stays (and neither can what it describes change)."""
    try:
        (settings.state_dir() / RECORD).unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise


def last_seeds(record: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Give the recorded options the shape of the services' last seeds."""
    options = SeedOptions.from_json(record["options"])
    return {service.name: options.for_service(service) for service in registry.SERVICES}
