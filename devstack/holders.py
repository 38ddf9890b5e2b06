"""Finding the processes a write to a service's SQLite file would collide with.

A holder either has the file (or its -wal/-shm/-journal) open, or runs the service's
``manage.py runserver``, which opens the file on its next request.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psutil

from devstack.config import Settings
from devstack.registry import Service

SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Holder:
    """A process that would collide with a write to a service's SQLite file."""

    pid: int
    cmdline: str
    why: str


def sqlite_path(settings: Settings, service: Service) -> Path | None:
    """Return the SQLite file a service uses, or None when it uses another database."""
    url = settings.database_url(service.name)
    if not url:
        return service.default_sqlite(settings.root)
    parts = urlsplit(url)
    if not parts.scheme.startswith("sqlite"):
        return None
    raw = unquote(parts.path)[1:]  # as dj-database-url reads it: sqlite:////abs, sqlite:///rel
    if not raw or raw == ":memory:":
        return None
    path = Path(raw)
    return path if path.is_absolute() else service.folder(settings.root) / path


def normcase(path: str, windows: bool | None = None) -> str:
    """Fold a path for comparison: Windows paths compare without case and with either slash."""
    windows = os.name == "nt" if windows is None else windows
    return ntpath.normcase(path) if windows else posixpath.normcase(path)


def is_runserver(cmdline: list[str], cwd: str | None, service_dir: Path, windows: bool | None = None) -> bool:
    """Tell whether a command line is ``manage.py runserver`` of the service in ``service_dir``."""
    if "runserver" not in cmdline:
        return False
    target = normcase(str(service_dir.resolve() / "manage.py"), windows)
    for arg in cmdline:
        if not normcase(arg, windows).endswith("manage.py"):
            continue
        path = Path(arg)
        if not path.is_absolute():
            if cwd is None:
                continue
            path = Path(cwd) / path
        if normcase(str(path.resolve()), windows) == target:
            return True
    return False


def short_command(cmdline: list[str], limit: int = 120) -> str:
    """Return a command line on one line, cut to ``limit`` characters."""
    text = " ".join(" ".join(cmdline).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def own_family() -> set[int]:
    """This process and its ancestors: never holders (the runner, ``inv``, the shell)."""
    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.parents())}


def find_holders(database: Path, service_dir: Path, exclude: Iterable[int] = ()) -> list[Holder]:
    """Find processes that hold ``database`` (or its -wal/-journal) open, or serve the service."""
    skip = set(exclude) | own_family()
    files = {normcase(str(database.resolve())) + s for s in SQLITE_SUFFIXES}
    holders: list[Holder] = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid in skip:
            continue
        cmdline = proc.info["cmdline"] or []
        cwd = None
        if "runserver" in cmdline:  # the working directory only matters for a dev server
            try:
                cwd = proc.cwd()
            except (psutil.Error, OSError):
                cwd = None
        why = ""
        if is_runserver(cmdline, cwd, service_dir):
            why = "runs this service's manage.py runserver"
        else:
            try:
                opened = {normcase(f.path) for f in proc.open_files()}
            except (psutil.Error, OSError):
                opened = set()
            held = sorted(opened & files)
            if held:
                why = f"has {Path(held[0]).name} open"
        if why:
            holders.append(Holder(proc.pid, short_command(cmdline) or proc.name(), why))
    return holders
