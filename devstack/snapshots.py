"""Snapshots of the whole stack: every service's database, its outbox and processed events, as one.

A snapshot lives in ``.devstack/snapshots/<name>/``: ``snapshot.json`` (when, which services,
the seed options each was last seeded with) and, per service,

- SQLite: ``<service>.sqlite3``, a copy made with SQLite's backup API (the write-ahead log's
  content included). A restore copies it back the same way into a temporary file beside the
  database and then replaces the database (its old ``-wal``/``-shm`` removed first);
- PostgreSQL: a template database, ``CREATE DATABASE <snapshot> TEMPLATE <database>`` (and
  back), run by the service's own interpreter with its driver: a file-level copy inside the
  server, much faster than a dump and a restore. The snapshot database's name is recorded.

The outbox and the processed-event records live in the services' databases, so a restored
stack holds exactly the events it held: none lost, none applied twice. Messages waiting in this
checkout's sync queues belong to no snapshot: ``save`` refuses while they wait, ``restore``
drops them (they come from a timeline the restore undoes). The caller holds the run lock, has
stopped what writes to the databases and forgets the fast path's record after a restore.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from devstack import database as db
from devstack import registry
from devstack.commands import child_env, python_of
from devstack.config import Settings
from devstack.errors import StepError, UsageError
from devstack.holders import SQLITE_SUFFIXES, sqlite_path

#: A snapshot's name: letters, digits, '.', '-' and '_', as a file name on every platform.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
MANIFEST = "snapshot.json"

#: Run by a service's interpreter (its venv has psycopg): each operation on the server of
#: ``DATABASE_URL``, connected to its maintenance database, in autocommit (CREATE DATABASE needs it).
POSTGRES = r"""
import json, os, sys
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
done = []
try:
    with psycopg.connect(make_conninfo(os.environ["DATABASE_URL"], dbname="postgres"), autocommit=True) as db:
        for verb, *names in json.loads(sys.stdin.read()):
            ids = [sql.Identifier(n) for n in names]
            if verb == "copy":
                db.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ids[1], ids[0]))
            elif verb == "drop":
                db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ids[0]))
            elif verb == "size":
                row = db.execute("SELECT pg_database_size(%s)", (names[0],)).fetchone()
                done.append(row[0])
except psycopg.Error as exc:
    print(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
    sys.exit(3)
print(json.dumps(done))
"""


@dataclass(frozen=True)
class Snapshot:
    name: str
    folder: Path
    manifest: dict[str, Any]

    @property
    def taken_at(self) -> float:
        return float(self.manifest.get("taken_at", 0))

    @property
    def size(self) -> int:
        return sum(int(s.get("size", 0)) for s in self.manifest.get("services", {}).values())


def folder_of(settings: Settings) -> Path:
    return settings.state_dir() / "snapshots"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise UsageError(
            f"A snapshot name is letters, digits, '.', '-' and '_' (at most 63, first a letter or "
            f"digit), got '{name}'."
        )
    return name


def find(settings: Settings, name: str, damaged: bool = False) -> Snapshot:
    """The snapshot called ``name``; UsageError naming the ones there are when it does not exist.

    A snapshot whose manifest cannot be read is refused in one sentence (StepError), unless
    ``damaged`` asks for it anyway (to delete it): then its manifest is empty.
    """
    folder = folder_of(settings) / check_name(name)
    if not folder.is_dir():
        known = ", ".join(s.name for s in every(settings)) or "none yet ('inv snapshot.save NAME')"
        raise UsageError(f"There is no snapshot called '{name}'; snapshots: {known}.")
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("services"), dict):
            raise ValueError("not a snapshot manifest")
    except (OSError, ValueError) as exc:
        if damaged:
            return Snapshot(name, folder, {})
        raise StepError(
            f"The snapshot '{name}' is damaged: its {MANIFEST} cannot be read ({exc}); delete it with "
            f"'inv snapshot.delete {name}'."
        ) from None
    return Snapshot(name, folder, manifest)


def check_files(settings: Settings, snapshot: Snapshot, services: list[registry.Service]) -> None:
    """Refuse, before anything is restored, a snapshot whose SQLite copies are missing or damaged."""
    for service in services:
        entry = snapshot.manifest["services"][service.name]
        if entry.get("kind") != "sqlite":
            continue
        path = snapshot.folder / str(entry.get("file", ""))
        damage = db.inspect(path) if path.exists() else db.Damage("is missing", "")
        if damage is not None:
            words = f" ({damage.words})" if damage.words else ""
            raise StepError(
                f"The snapshot '{snapshot.name}' cannot be restored: its copy of {service.name} "
                f"({db.shown(settings, path)}) {damage.cause}{words}; nothing was restored. Take the "
                f"snapshot again, or delete it with 'inv snapshot.delete {snapshot.name}'."
            )


def every(settings: Settings) -> list[Snapshot]:
    """Every snapshot of the checkout, oldest first (a folder without a readable manifest is skipped)."""
    found = []
    root = folder_of(settings)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append(Snapshot(folder.name, folder, manifest))
    return sorted(found, key=lambda s: s.taken_at)


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def postgres(settings: Settings, service: registry.Service, operations: list[list[str]]) -> list[Any]:
    """Run ``operations`` (see ``POSTGRES``) on the server of ``service``'s database."""
    done = subprocess.run(
        [str(python_of(settings, service)), "-c", POSTGRES],
        input=json.dumps(operations),
        env=child_env(settings, service),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        raise StepError(
            f"{service.name}: PostgreSQL refused the snapshot ({why}); the role needs CREATEDB, and "
            "nothing else may be connected to the database (stop its dev servers and workers)."
        )
    result: list[Any] = json.loads(done.stdout or "[]")
    return result


def save(
    settings: Settings,
    name: str,
    services: list[registry.Service],
    seeds: dict[str, Any],
    replace: bool = False,
) -> Snapshot:
    """Take a snapshot of ``services`` called ``name``; ``seeds`` are their last seed options."""
    check_name(name)
    target = folder_of(settings) / name
    if target.exists() and not replace:
        raise UsageError(
            f"A snapshot called '{name}' exists; choose another name, or replace it with --replace "
            f"(or 'inv snapshot.delete {name}' first)."
        )
    work = folder_of(settings) / f".{name}.{uuid.uuid4().hex[:8]}.partial"
    work.mkdir(parents=True)
    made: dict[str, dict[str, Any]] = {}  # the databases copied so far, dropped if the save fails
    try:
        with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
            futures = {s.name: pool.submit(save_one, settings, s, work, made) for s in services}
            entries = {name: future.result() for name, future in futures.items()}
        manifest = {"name": name, "taken_at": time.time(), "services": entries, "seeds": seeds}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if target.exists():
            delete(settings, find(settings, name, damaged=True))
        os.replace(work, target)
    except BaseException:
        for service_name, entry in made.items():
            postgres(settings, registry.get(service_name), [["drop", entry["database"]]])
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Snapshot(name, target, manifest)


def save_one(
    settings: Settings, service: registry.Service, work: Path, made: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Copy ``service``'s database into the snapshot being made in ``work``; return its entry."""
    database = sqlite_path(settings, service)
    if database is not None:
        if not database.is_file():
            raise StepError(f"{service.name} has no database yet ({database}); run 'inv seed-all' first.")
        db.copy_sqlite(database, work / f"{service.name}.sqlite3")
        size = (work / f"{service.name}.sqlite3").stat().st_size
        return {"kind": "sqlite", "file": f"{service.name}.sqlite3", "size": size}
    source = database_name(settings.database_url(service.name))
    copy = f"devstack_snap_{uuid.uuid4().hex[:12]}"
    made[service.name] = entry = {"kind": "postgres", "database": copy, "source": source}
    entry["size"] = postgres(settings, service, [["copy", source, copy], ["size", copy]])[0]
    return entry


def restore(settings: Settings, snapshot: Snapshot, services: list[registry.Service]) -> list[str]:
    """Put back the databases of ``services`` from ``snapshot``; return what was restored."""
    held = snapshot.manifest.get("services", {})
    missing = [s.name for s in services if s.name not in held]
    if missing:
        raise UsageError(
            f"The snapshot '{snapshot.name}' holds no {', '.join(missing)} "
            f"(it holds {', '.join(held) or 'nothing'}); restore it with --service for those it holds."
        )
    check_files(settings, snapshot, services)
    with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:  # one server process each
        return list(pool.map(lambda service: restore_one(settings, snapshot, service), services))


def restore_one(settings: Settings, snapshot: Snapshot, service: registry.Service) -> str:
    """Put back ``service``'s database from ``snapshot``; return the service's name."""
    entry = snapshot.manifest["services"][service.name]
    database = sqlite_path(settings, service)
    if entry["kind"] == "sqlite":
        if database is None:
            raise UsageError(
                f"The snapshot holds {service.name} as SQLite but the service now uses "
                "PostgreSQL; configure the SQLite database again to restore it."
            )
        temporary = database.with_name(database.name + ".restoring")
        temporary.unlink(missing_ok=True)
        database.parent.mkdir(parents=True, exist_ok=True)
        db.copy_sqlite(snapshot.folder / entry["file"], temporary)
        for suffix in SQLITE_SUFFIXES[1:]:  # the old log must not be applied to the new file
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        os.replace(temporary, database)
        return service.name
    if database is not None:
        raise UsageError(
            f"The snapshot holds {service.name} as PostgreSQL but the service now uses "
            "SQLite; configure its PostgreSQL database again to restore it."
        )
    target = database_name(settings.database_url(service.name))
    postgres(settings, service, [["drop", target], ["copy", entry["database"], target]])
    return service.name


def delete(settings: Settings, snapshot: Snapshot) -> None:
    """Remove a snapshot: its template databases, then its folder."""
    for name, entry in snapshot.manifest.get("services", {}).items():
        if entry.get("kind") == "postgres":
            postgres(settings, registry.get(name), [["drop", entry["database"]]])
    shutil.rmtree(snapshot.folder)


def reset_backups(settings: Settings) -> list[tuple[str, registry.Service, Path]]:
    """The backups ``inv reset`` left (``<service>-<time>.sqlite3``), as (name, service, file)."""
    folder = settings.root / settings.backup_dir
    found = []
    for path in sorted(folder.glob("*.sqlite3")) if folder.is_dir() else []:
        service = next((s for s in registry.SERVICES if path.stem.startswith(f"{s.name}-")), None)
        if service is not None:
            found.append((path.stem, service, path))
    return found


def restore_backup(settings: Settings, service: registry.Service, backup: Path) -> None:
    """Put a ``reset`` backup back as ``service``'s SQLite database."""
    manifest = {"services": {service.name: {"kind": "sqlite", "file": backup.name}}}
    restore(settings, Snapshot(backup.stem, backup.parent, manifest), [service])
