"""Guards before writing: processes holding a SQLite file, remote data, one run at a time."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psutil

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

from devstack.config import Settings
from devstack.errors import GuardError
from devstack.registry import Service
from devstack.urls import is_local, mask_url

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


def is_runserver(cmdline: list[str], cwd: str | None, service_dir: Path) -> bool:
    """Tell whether a command line is ``manage.py runserver`` of the service in ``service_dir``."""
    if "runserver" not in cmdline:
        return False
    target = os.path.normcase(str(service_dir.resolve() / "manage.py"))
    for arg in cmdline:
        if not arg.endswith("manage.py"):
            continue
        path = Path(arg)
        if not path.is_absolute():
            if cwd is None:
                continue
            path = Path(cwd) / path
        if os.path.normcase(str(path.resolve())) == target:
            return True
    return False


def short_command(cmdline: list[str], limit: int = 120) -> str:
    """Return a command line on one line, cut to ``limit`` characters."""
    text = " ".join(" ".join(cmdline).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _own_family() -> set[int]:
    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.parents())}


def find_holders(database: Path, service_dir: Path, exclude: Iterable[int] = ()) -> list[Holder]:
    """Find processes that hold ``database`` (or its -wal/-journal) open, or serve the service."""
    skip = set(exclude) | _own_family()
    files = {os.path.normcase(str(database.resolve())) + s for s in SQLITE_SUFFIXES}
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
                opened = {os.path.normcase(f.path) for f in proc.open_files()}
            except (psutil.Error, OSError):
                opened = set()
            held = sorted(opened & files)
            if held:
                why = f"has {Path(held[0]).name} open"
        if why:
            holders.append(Holder(proc.pid, short_command(cmdline) or proc.name(), why))
    return holders


def gone(proc: psutil.Process) -> bool:
    """Tell whether a process has ended (a zombie waiting for its parent counts as ended)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``procs`` to end; return those still alive."""
    alive = list(procs)
    deadline = time.monotonic() + timeout
    delay = 0.02
    while alive:
        alive = [p for p in alive if not gone(p)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.25)
    return alive


def stop(holders: list[Holder], grace: float) -> list[Holder]:
    """End holders gracefully, killing those still alive after ``grace`` seconds."""
    procs = []
    for holder in holders:
        try:
            proc = psutil.Process(holder.pid)
            proc.terminate()
            procs.append(proc)
        except psutil.NoSuchProcess:
            continue
    alive = wait_gone(procs, grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    left = {p.pid for p in wait_gone(alive, grace)}
    return [h for h in holders if h.pid in left]


def check_target(settings: Settings, service: Service, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to write to a database that is not this machine's dev data."""
    if settings.allow_remote:
        return
    url = settings.database_url(service.name)
    if url and not is_local(url):
        raise GuardError(
            f"{service.name}: its database {mask_url(url)} is not on this machine; "
            "rerun with --allow-remote if you really mean to write to it "
            "(prerequisite steps take it from INVOKE_DEVSTACK_ALLOW_REMOTE=1)."
        )
    if environ.get("DJANGO_ENV", "").lower() in {"prod", "production"}:
        raise GuardError(
            f"{service.name}: DJANGO_ENV says production; unset it or rerun with --allow-remote "
            "(prerequisite steps take it from INVOKE_DEVSTACK_ALLOW_REMOTE=1)."
        )


def check_writable(
    settings: Settings,
    service: Service,
    stop_servers: bool = False,
    report: Callable[[str], None] | None = None,
    exclude: Iterable[int] = (),
) -> None:
    """Run every guard before writing to ``service``'s database.

    ``exclude`` names processes allowed to hold the file: the runner's own workers.
    """
    check_target(settings, service)
    database = sqlite_path(settings, service)
    if database is None or not database.exists():
        return
    holders = find_holders(database, service.folder(settings.root), exclude)
    if not holders:
        return
    if not stop_servers:
        first = holders[0]
        others = f" and {len(holders) - 1} more" if len(holders) > 1 else ""
        raise GuardError(
            f"{service.name}: PID {first.pid} ({first.cmdline}) {first.why}{others}; "
            "stop it before writing, or rerun with --stop-servers "
            "(prerequisite steps take it from INVOKE_DEVSTACK_STOP_SERVERS=1)."
        )
    left = stop(holders, settings.stop_grace)
    if report:
        for holder in holders:
            report(f"stopped PID {holder.pid} ({holder.cmdline}): it {holder.why}")
    if left:
        raise GuardError(f"{service.name}: PID {left[0].pid} did not stop; end it yourself and rerun.")


#: How deep this process holds each lock: a task and its pre-tasks each take the same lock.
_HELD: dict[Path, int] = {}


@contextmanager
def run_lock(settings: Settings, name: str = "run", timeout: float | None = None) -> Iterator[None]:
    """Hold the runner's lock; wait up to ``timeout`` seconds for another run, then refuse.

    The operating system's file lock (``flock``, or ``msvcrt.locking`` on Windows) ends with
    the process that holds it, so a crashed run never blocks the next one.
    """
    folder = settings.state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{name}.lock").resolve()
    if _HELD.get(path):
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + (settings.lock_timeout if timeout is None else timeout)
        delay = 0.05
        while not try_lock(fd):
            if time.monotonic() >= deadline:
                owner = lock_owner(path)
                raise GuardError(
                    f"Another run (PID {owner or 'unknown'}) is already working on the stack; "
                    "wait for it to finish and try again."
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        me = psutil.Process()
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": me.pid, "created": me.create_time()}).encode())
        _HELD[path] = 1
        try:
            yield
        finally:
            del _HELD[path]
            unlock(fd)
    finally:
        os.close(fd)


def try_lock(fd: int) -> bool:
    """Take the exclusive lock on an open file without waiting; tell whether it worked."""
    try:
        if sys.platform == "win32":
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)


def lock_owner(path: Path) -> int | None:
    """Return the PID recorded in lock file ``path`` if that process still lives, else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        proc = psutil.Process(int(data["pid"]))
        if abs(proc.create_time() - float(data["created"])) > 1.0:
            return None
        return proc.pid
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
