"""Stopping processes: ask them to end, wait, then kill those still alive.

On POSIX, ``terminate`` sends SIGTERM, which Django's dev server and Celery's warm shutdown
honour. On Windows, psutil's ``terminate`` is ``TerminateProcess``: there is no graceful
stop there, the grace only matters for ``kill``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

import psutil

from devstack import retry


def gone(proc: psutil.Process) -> bool:
    """Tell whether a process has ended (a zombie waiting for its parent counts as ended)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``procs`` to end; return those still alive.

    ``psutil.wait_procs`` does the waiting (it returns as soon as they all end and reaps our
    own children); between its waits :func:`gone` looks again, because it never sees a zombie
    of another parent end.
    """
    alive = list(procs)

    def all_gone() -> bool:
        alive[:] = [proc for proc in alive if not gone(proc)]
        return not alive

    def pause(seconds: float) -> None:
        try:
            psutil.wait_procs(alive, timeout=seconds)
        except psutil.Error:  # cannot wait on it (access denied): look again after the pause
            time.sleep(seconds)

    retry.wait_until(all_gone, timeout, sleep=pause)
    return alive


def terminate(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Ask each process to end; return those that were still there, whether or not they may be signalled."""
    asked: list[psutil.Process] = []
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            pass  # another user's process: it stays in the list and is reported as not stopped
        asked.append(proc)
    return asked


def finish(procs: Iterable[psutil.Process], grace: float) -> list[psutil.Process]:
    """Wait ``grace`` seconds for asked processes, kill the rest, wait again; return any survivor."""
    alive = wait_gone(procs, grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()
    return wait_gone(alive, grace) if alive else []


def stop(procs: Iterable[psutil.Process], grace: float) -> list[psutil.Process]:
    """End ``procs`` gracefully, killing those still alive after ``grace`` seconds; return survivors."""
    return finish(terminate(procs), grace)
