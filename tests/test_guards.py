from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from devstack import guards, registry
from devstack.config import Settings
from devstack.errors import GuardError


def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def database(settings: Settings) -> Path:
    path = registry.get("helpdesk").default_sqlite(settings.root)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    return path


def spawn(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=cwd)


@pytest.fixture
def holder(database: Path) -> Iterator[subprocess.Popen[bytes]]:
    script = textwrap.dedent(f"""
        import sqlite3, sys, time
        db = sqlite3.connect({str(database)!r})
        db.execute("INSERT INTO t VALUES (1)")
        db.commit()
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def runserver(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    folder = registry.get("helpdesk").folder(settings.root)
    (folder / "manage.py").write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    proc = spawn(["manage.py", "runserver", "8123"], folder)
    wait_until(lambda: "runserver" in " ".join(psutil.Process(proc.pid).cmdline()))
    yield proc
    proc.kill()
    proc.wait()


def test_finds_a_process_holding_the_sqlite_file(
    settings: Settings, database: Path, holder: subprocess.Popen[bytes]
) -> None:
    found = guards.find_holders(database, database.parent)
    assert [h.pid for h in found] == [holder.pid]
    assert "open" in found[0].why


def test_refuses_to_write_naming_the_pid(
    settings: Settings, database: Path, holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(GuardError, match=rf"PID {holder.pid} .*--stop-servers"):
        guards.check_writable(settings, registry.get("helpdesk"))
    guards.check_writable(settings, registry.get("auth"))  # another service is not held


def test_finds_runserver_by_command_line_and_working_directory(
    settings: Settings, database: Path, runserver: subprocess.Popen[bytes]
) -> None:
    found = guards.find_holders(database, database.parent)
    assert [h.pid for h in found] == [runserver.pid]
    assert found[0].why == "runs this service's manage.py runserver"
    assert guards.find_holders(database, registry.get("auth").folder(settings.root)) == []


def test_stop_servers_ends_them_and_then_allows_the_write(
    settings: Settings, database: Path, runserver: subprocess.Popen[bytes]
) -> None:
    said: list[str] = []
    guards.check_writable(settings, registry.get("helpdesk"), stop_servers=True, report=said.append)
    assert runserver.wait(timeout=10) is not None
    assert said and str(runserver.pid) in said[0]


def test_is_runserver_resolves_relative_paths(tmp_path: Path) -> None:
    service = tmp_path / "services" / "auth"
    service.mkdir(parents=True)
    assert guards.is_runserver(["python", "manage.py", "runserver"], str(service), service)
    assert guards.is_runserver(["python", str(service / "manage.py"), "runserver"], None, service)
    assert not guards.is_runserver(["python", "manage.py", "migrate"], str(service), service)
    assert not guards.is_runserver(["python", "manage.py", "runserver"], str(tmp_path), service)


def test_sqlite_path_from_urls(settings: Settings) -> None:
    auth = registry.get("auth")
    assert guards.sqlite_path(settings, auth) == auth.default_sqlite(settings.root)
    custom = replace(settings, databases={"auth": "sqlite:////data/auth.db"})
    assert guards.sqlite_path(custom, auth) == Path("/data/auth.db")
    pg = replace(settings, databases={"auth": "postgres://u@127.0.0.1/auth"})
    assert guards.sqlite_path(pg, auth) is None


def test_remote_and_production_databases_are_refused(settings: Settings) -> None:
    auth = registry.get("auth")
    remote = replace(settings, databases={"auth": "postgres://u:secret@db.example.com/auth"})
    with pytest.raises(GuardError) as caught:
        guards.check_target(remote, auth, {})
    assert "secret" not in str(caught.value) and "--allow-remote" in str(caught.value)
    with pytest.raises(GuardError, match="production"):
        guards.check_target(settings, auth, {"DJANGO_ENV": "production"})
    guards.check_target(replace(remote, allow_remote=True), auth, {"DJANGO_ENV": "production"})


@pytest.fixture
def other_run(settings: Settings) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run lock of the same checkout."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from devstack.config import Settings
        from devstack.guards import run_lock
        with run_lock(Settings(root=Path({str(settings.root)!r}))):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait()


def test_run_lock_refuses_a_second_live_run(settings: Settings, other_run: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    with (
        pytest.raises(GuardError, match=f"Another run \\(PID {other_run.pid}\\)"),
        guards.run_lock(settings, timeout=0.3),
    ):
        pass
    assert time.monotonic() - started >= 0.3


def test_run_lock_waits_for_the_other_run_to_end(
    settings: Settings, other_run: subprocess.Popen[str]
) -> None:
    assert other_run.stdin is not None
    other_run.stdin.write("done\n")
    other_run.stdin.flush()
    with guards.run_lock(settings, timeout=10):
        assert other_run.wait(timeout=10) == 0


def test_lock_left_by_a_dead_run_is_taken_at_once_and_is_reentrant(settings: Settings) -> None:
    path = settings.state_dir() / "run.lock"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": 999_999_999, "created": 0}), encoding="utf-8")
    with guards.run_lock(settings, timeout=0):
        assert json.loads(path.read_text(encoding="utf-8"))["pid"] == os.getpid()
        with guards.run_lock(settings, timeout=0):
            assert guards.lock_owner(path) == os.getpid()
    assert guards.lock_owner(path) == os.getpid()  # the file stays; the OS lock is gone
    with guards.run_lock(settings, timeout=0):
        pass
