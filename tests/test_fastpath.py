from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack import fastpath, registry
from devstack.config import Settings
from devstack.options import SeedOptions
from devstack.venvs import venv_python


def make_databases(settings: Settings) -> None:
    for service in registry.SERVICES:
        migrations = service.folder(settings.root) / "app" / "migrations"
        migrations.mkdir(parents=True)
        (migrations / "0001_initial.py").write_text("# initial\n", encoding="utf-8")
        with sqlite3.connect(service.default_sqlite(settings.root)) as db:
            db.execute("CREATE TABLE t (x)")


def test_record_holds_until_a_database_changes(settings: Settings) -> None:
    make_databases(settings)
    counts = {"auth": {"System": 4}}
    fastpath.save(settings, SeedOptions(), counts)
    record = fastpath.load(settings)
    assert record is not None and record["counts"] == counts
    assert fastpath.last_seeds(record)["helpdesk"] == {"employees": 50, "tickets": 20, "seed": 7}
    time.sleep(0.01)  # let the file's mtime move on filesystems with coarse timestamps
    with sqlite3.connect(registry.get("helpdesk").default_sqlite(settings.root)) as db:
        db.execute("INSERT INTO t VALUES (1)")
    assert fastpath.load(settings) is None


def test_record_drops_on_a_new_migration(settings: Settings) -> None:
    make_databases(settings)
    fastpath.save(settings, SeedOptions(), {})
    folder = registry.get("workflow").folder(settings.root) / "app" / "migrations"
    (folder / "0002_more.py").write_text("# more\n", encoding="utf-8")
    assert fastpath.load(settings) is None


def test_no_record_for_postgres_or_missing_databases(settings: Settings) -> None:
    assert fastpath.fingerprint(settings) is None  # no database files yet
    make_databases(settings)
    pg = replace(settings, databases={"auth": "postgres://u@127.0.0.1/auth"})
    assert fastpath.fingerprint(pg) is None
    fastpath.save(pg, SeedOptions(), {})
    assert fastpath.load(pg) is None


def test_a_write_that_restores_size_and_mtime_still_invalidates(settings: Settings) -> None:
    make_databases(settings)
    database = registry.get("helpdesk").default_sqlite(settings.root)
    with sqlite3.connect(database) as db:
        db.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(50)])
    fastpath.save(settings, SeedOptions(), {})
    before = database.stat()
    time.sleep(0.01)
    with sqlite3.connect(database) as db:  # rows deleted: SQLite keeps the file's size
        db.execute("DELETE FROM t WHERE x < 10")
    os.utime(database, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -d` would
    assert database.stat().st_size == before.st_size
    assert database.stat().st_mtime_ns == before.st_mtime_ns
    assert fastpath.load(settings) is None


def test_a_replaced_file_invalidates(settings: Settings) -> None:
    make_databases(settings)
    database = registry.get("auth").default_sqlite(settings.root)
    fastpath.save(settings, SeedOptions(), {})
    copy = database.with_name("copy.sqlite3")
    shutil.copy2(database, copy)
    os.replace(copy, database)
    assert fastpath.load(settings) is None


@pytest.mark.postgres
def test_a_postgres_mark_moves_with_a_write_and_not_with_a_read(
    seeded_template: Path, postgres_server: str
) -> None:
    settings = Settings(root=seeded_template)  # its virtualenvs have the driver
    urls = {"auth": postgres_server}
    first = fastpath.postgres_marks(settings, urls)
    assert first is not None and first["auth"] is not None
    name, oid, _ = first["auth"]
    assert name == urlsplit(postgres_server).path.lstrip("/") and oid.isdigit()
    # (Reading takes no transaction id, but other sessions on a shared server may write at any
    # time: that the mark holds while nothing writes is shown by the fast-path tests.)
    python = venv_python(seeded_template / "services" / "auth" / ".venv")
    table = f"devstack_mark_{uuid.uuid4().hex[:8]}"
    script = (
        "import os, sys, psycopg\npsycopg.connect(os.environ['URL'], autocommit=True).execute(sys.argv[1])\n"
    )
    for sql in (f"CREATE TABLE {table} (x int)", f"DROP TABLE {table}"):
        subprocess.run(
            [str(python), "-c", script, sql], env={**os.environ, "URL": postgres_server}, check=True
        )
    assert fastpath.postgres_marks(settings, urls) != first
    assert fastpath.postgres_marks(Settings(root=Path("/nowhere")), urls) is None  # no interpreter: no mark
