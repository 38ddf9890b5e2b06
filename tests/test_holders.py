from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from devstack import holders, registry, retry
from devstack.config import Settings


@pytest.fixture
def database(settings: Settings) -> Path:
    path = registry.get("helpdesk").default_sqlite(settings.root)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
    return path


@pytest.fixture
def holder(database: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process with the helpdesk SQLite file (and its WAL) open."""
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
    """A stand-in for helpdesk's ``manage.py runserver``, started from the service folder."""
    folder = registry.get("helpdesk").folder(settings.root)
    (folder / "manage.py").write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "manage.py", "runserver", "8123"], cwd=folder)
    assert retry.wait_until(lambda: "runserver" in " ".join(psutil.Process(proc.pid).cmdline()), 10)
    yield proc
    proc.kill()
    proc.wait()


def test_finds_a_process_holding_the_sqlite_file(
    settings: Settings, database: Path, holder: subprocess.Popen[bytes]
) -> None:
    found = holders.find_holders(database, database.parent)
    assert [h.pid for h in found] == [holder.pid]
    assert "open" in found[0].why
    assert holders.find_holders(database, database.parent, exclude=[holder.pid]) == []


def test_finds_runserver_by_command_line_and_working_directory(
    settings: Settings, database: Path, runserver: subprocess.Popen[bytes]
) -> None:
    found = holders.find_holders(database, database.parent)
    assert [h.pid for h in found] == [runserver.pid]
    assert found[0].why == "runs this service's manage.py runserver"
    assert holders.find_holders(database, registry.get("auth").folder(settings.root)) == []


def test_is_runserver_resolves_relative_paths(tmp_path: Path) -> None:
    service = tmp_path / "services" / "auth"
    service.mkdir(parents=True)
    assert holders.is_runserver(["python", "manage.py", "runserver"], str(service), service)
    assert holders.is_runserver(["python", str(service / "manage.py"), "runserver"], None, service)
    assert not holders.is_runserver(["python", "manage.py", "migrate"], str(service), service)
    assert not holders.is_runserver(["python", "manage.py", "runserver"], str(tmp_path), service)


def test_is_runserver_ignores_case_only_on_windows(tmp_path: Path) -> None:
    service = tmp_path / "services" / "auth"
    service.mkdir(parents=True)
    shouted = ["python", "MANAGE.PY", "runserver"]
    assert holders.is_runserver(shouted, str(service), service, windows=True)
    assert not holders.is_runserver(shouted, str(service), service, windows=False)


def test_normcase_per_platform() -> None:
    assert holders.normcase("C:/Data/DB.sqlite3", windows=True) == "c:\\data\\db.sqlite3"
    assert holders.normcase("/Data/DB.sqlite3", windows=False) == "/Data/DB.sqlite3"


def test_sqlite_path_from_urls(settings: Settings) -> None:
    auth = registry.get("auth")
    assert holders.sqlite_path(settings, auth) == auth.default_sqlite(settings.root)
    custom = replace(settings, databases={"auth": "sqlite:////data/auth.db"})
    assert holders.sqlite_path(custom, auth) == Path("/data/auth.db")
    relative = replace(settings, databases={"auth": "sqlite:///local.db"})
    assert holders.sqlite_path(relative, auth) == auth.folder(settings.root) / "local.db"
    memory = replace(settings, databases={"auth": "sqlite://:memory:"})
    assert holders.sqlite_path(memory, auth) is None
    pg = replace(settings, databases={"auth": "postgres://u@127.0.0.1/auth"})
    assert holders.sqlite_path(pg, auth) is None


def test_short_command_fits_one_line() -> None:
    assert holders.short_command(["python", "manage.py\n", "runserver"]) == "python manage.py runserver"
    assert holders.short_command(["x" * 200], limit=10) == "xxxxxxx..."
