from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from devstack import lock
from devstack.config import Settings
from devstack.errors import GuardError


def holding(settings: Settings) -> subprocess.Popen[str]:
    """Start another process that takes the run lock of the same checkout and keeps it until told."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from devstack.config import Settings
        from devstack.lock import run_lock
        with run_lock(Settings(root=Path({str(settings.root)!r}))):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


@pytest.fixture
def other_run(settings: Settings) -> Iterator[subprocess.Popen[str]]:
    proc = holding(settings)
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_run_is_refused_naming_the_owner_and_the_wait(
    settings: Settings, other_run: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    with (
        pytest.raises(GuardError) as caught,
        lock.run_lock(replace(settings, lock_timeout=0.3)),
    ):
        pass
    assert time.monotonic() - started >= 0.3
    message = str(caught.value)
    assert message.startswith(f"Another run (PID {other_run.pid}) is already working on the stack")
    assert "after this run waited 0.3 s (devstack.lock_timeout)" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert caught.value.code == 3


def test_the_owner_is_noted_next_to_the_lock(settings: Settings, other_run: subprocess.Popen[str]) -> None:
    path = lock.lock_file(settings)
    note = json.loads(lock.owner_file(path).read_text(encoding="utf-8"))
    assert note["pid"] == other_run.pid
    assert lock.lock_owner(path) == other_run.pid


def test_a_waiting_run_gets_the_lock_when_the_other_ends(
    settings: Settings, other_run: subprocess.Popen[str]
) -> None:
    assert other_run.stdin is not None
    other_run.stdin.write("done\n")
    other_run.stdin.flush()
    with lock.run_lock(settings, timeout=10):
        assert other_run.wait(timeout=10) == 0
        assert lock.lock_owner(lock.lock_file(settings)) == os.getpid()


def test_the_lock_dies_with_a_killed_run(settings: Settings) -> None:
    crashed = holding(settings)
    crashed.kill()  # no clean exit: only the operating system lets go
    crashed.wait()
    with lock.run_lock(settings, timeout=0):
        assert lock.lock_owner(lock.lock_file(settings)) == os.getpid()


def test_a_stale_note_is_ignored_and_the_lock_is_reentrant(settings: Settings) -> None:
    path = lock.lock_file(settings)
    path.parent.mkdir(parents=True)
    lock.owner_file(path).write_text(json.dumps({"pid": 999_999_999, "created": 0}), encoding="utf-8")
    assert lock.lock_owner(path) is None
    with lock.run_lock(settings, timeout=0):
        assert json.loads(lock.owner_file(path).read_text(encoding="utf-8"))["pid"] == os.getpid()
        with lock.run_lock(settings, timeout=0):  # a pre-task inside its task
            assert lock.lock_owner(path) == os.getpid()
        assert lock.lock_owner(path) == os.getpid()  # the inner exit does not let go
    assert lock.lock_owner(path) is None  # the outer exit does
    with lock.run_lock(settings, timeout=0):
        pass


def test_a_note_of_a_reused_pid_is_not_the_owner(settings: Settings) -> None:
    path = lock.lock_file(settings)
    path.parent.mkdir(parents=True)
    lock.owner_file(path).write_text(json.dumps({"pid": os.getpid(), "created": 1.0}), encoding="utf-8")
    assert lock.lock_owner(path) is None
    assert lock.refusal(None, 10).startswith("Another run (PID unknown)")
