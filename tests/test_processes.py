from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import psutil
import pytest

from devstack import processes, retry


def python(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True
    )


@pytest.fixture
def stubborn() -> Iterator[subprocess.Popen[str]]:
    """A process that ignores the polite stop (SIGTERM); on Windows terminate kills it anyway."""
    proc = python("""
        import signal, time
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def test_stop_kills_what_ignores_the_polite_stop_after_the_grace(stubborn: subprocess.Popen[str]) -> None:
    target = psutil.Process(stubborn.pid)
    started = time.monotonic()
    assert processes.stop([target], grace=0.3) == []
    took = time.monotonic() - started
    assert processes.gone(target)
    assert took < 3
    if sys.platform != "win32":
        assert took >= 0.3  # it outlived SIGTERM for the whole grace, then was killed
    # psutil reaped our child, so Popen no longer sees its exit status: do not ask it.


def test_wait_gone_returns_the_survivors_after_the_timeout(stubborn: subprocess.Popen[str]) -> None:
    target = psutil.Process(stubborn.pid)
    started = time.monotonic()
    assert processes.wait_gone([target], 0.3) == [target]
    assert 0.3 <= time.monotonic() - started < 2


def test_a_process_that_already_ended_is_not_a_survivor() -> None:
    done = python("pass")
    target = psutil.Process(done.pid)
    done.wait()
    assert processes.gone(target)
    assert processes.stop([target], grace=1) == []
    assert processes.terminate([target]) == []


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has no zombie processes")
def test_a_zombie_of_another_parent_counts_as_stopped_at_once() -> None:
    parent = python("""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        print(child.pid, flush=True)
        time.sleep(60)  # never reaps its child
    """)
    try:
        assert parent.stdout is not None
        zombie = psutil.Process(int(parent.stdout.readline()))
        assert retry.wait_until(lambda: zombie.status() == psutil.STATUS_ZOMBIE, 10)
        _, alive = psutil.wait_procs([zombie], timeout=0.2)
        assert alive == [zombie]  # psutil alone keeps waiting for it
        started = time.monotonic()
        assert processes.wait_gone([zombie], 10) == []
        assert processes.finish([zombie], 10) == []
        assert time.monotonic() - started < 1
    finally:
        parent.kill()
        parent.wait()


class Denied:
    """A process of another user: psutil may not signal it."""

    pid = 1

    def terminate(self) -> None:
        raise psutil.AccessDenied(self.pid)


def test_a_process_that_may_not_be_signalled_stays_to_be_reported() -> None:
    denied = Denied()
    assert processes.terminate([denied]) == [denied]  # type: ignore[list-item]
