"""The run lock: one writing run at a time per checkout.

The lock is ``filelock.FileLock`` on ``.devstack/<name>.lock``: the operating system's file
lock (filelock uses ``flock`` on POSIX and a Windows byte-range lock on Windows), which ends
with the process that holds it, so a crashed run never blocks the next one. Which lock the
platform gets is filelock's choice; this module has no platform branch of its own.

Who holds it is noted next to it, in ``.devstack/<name>.owner.json`` (PID, start time,
command), written only while holding the lock: filelock may truncate the lock file when it
opens it, or delete it on release on Windows, and Windows does not let another process read
a locked byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from filelock import BaseFileLock, FileLock, Timeout

from devstack.config import Settings
from devstack.errors import GuardError

#: Seconds between two tries while another run holds the lock.
POLL_INTERVAL = 0.05

#: One lock object per lock file in this process, so that a task and its pre-tasks (which
#: take the same lock) nest instead of waiting for themselves.
_LOCKS: dict[Path, BaseFileLock] = {}


def lock_file(settings: Settings, name: str = "run") -> Path:
    return (settings.state_dir() / f"{name}.lock").resolve()


def owner_file(lock: Path) -> Path:
    """Where the holder of lock file ``lock`` notes who it is."""
    return lock.with_suffix(".owner.json")


@contextmanager
def run_lock(settings: Settings, name: str = "run", timeout: float | None = None) -> Iterator[None]:
    """Hold the runner's lock; wait up to ``timeout`` seconds for another run, then refuse.

    ``timeout`` defaults to ``settings.lock_timeout``. Nested calls in one process (a task and
    its pre-tasks) share the hold; the outermost one notes the owner and lets go.
    """
    path = lock_file(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _LOCKS.get(path)
    if lock is None:
        lock = _LOCKS[path] = FileLock(path, mode=0o644, thread_local=False)
    wait = settings.lock_timeout if timeout is None else timeout
    outermost = not lock.is_locked
    try:
        lock.acquire(timeout=wait, poll_interval=POLL_INTERVAL)
    except Timeout:
        raise GuardError(refusal(lock_owner(path), wait)) from None
    try:
        if outermost:
            write_owner(owner_file(path))
        yield
    finally:
        try:
            if outermost:
                owner_file(path).unlink(missing_ok=True)
        finally:
            lock.release()


def refusal(owner: int | None, waited: float) -> str:
    """The one sentence a run refused by the lock prints."""
    return (
        f"Another run (PID {owner or 'unknown'}) is already working on the stack and still held "
        f"the run lock after this run waited {waited:g} s (devstack.lock_timeout); "
        "wait for it to finish and try again."
    )


def write_owner(note: Path) -> None:
    """Note this process as the holder (PID, start time to tell a reused PID, command line)."""
    me = psutil.Process()
    record = {"pid": me.pid, "created": me.create_time(), "command": sys.argv}
    partial = note.with_name(f"{note.name}.{me.pid}.tmp")
    with contextlib.suppress(OSError):  # a missing note only makes a refusal say 'PID unknown'
        partial.write_text(json.dumps(record), encoding="utf-8")
        os.replace(partial, note)


def lock_owner(path: Path) -> int | None:
    """Return the PID noted as holding lock file ``path`` if that process still lives, else None."""
    try:
        data = json.loads(owner_file(path).read_text(encoding="utf-8"))
        proc = psutil.Process(int(data["pid"]))
        if abs(proc.create_time() - float(data["created"])) > 1.0:
            return None
        return proc.pid
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None
