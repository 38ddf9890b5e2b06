from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from devstack import registry
from devstack.config import Settings
from devstack.errors import GuardError
from devstack.reset import backup_sqlite, reset


def make_wal_database(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    db.commit()
    return db  # left open: the rows may still live only in the -wal file


def test_backup_copies_rows_still_in_the_wal(tmp_path: Path) -> None:
    source = tmp_path / "db.sqlite3"
    db = make_wal_database(source)
    try:
        copy = backup_sqlite(source, tmp_path / "backups", "auth")
    finally:
        db.close()
    with sqlite3.connect(copy) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (100,)


def test_reset_backs_up_then_removes(settings: Settings) -> None:
    auth = registry.get("auth")
    database = auth.default_sqlite(settings.root)
    make_wal_database(database).close()
    said = reset(settings, auth, backup=True, yes=False)
    assert not database.exists()
    assert not Path(f"{database}-wal").exists()
    assert "backup at backups" in said
    (backup,) = (settings.root / "backups").iterdir()
    with sqlite3.connect(backup) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (100,)


def test_reset_without_backup_and_of_nothing(settings: Settings) -> None:
    auth = registry.get("auth")
    make_wal_database(auth.default_sqlite(settings.root)).close()
    assert reset(settings, auth, backup=False, yes=False) == "removed db.sqlite3"
    assert not (settings.root / "backups").exists()
    assert "nothing to reset" in reset(settings, auth, backup=True, yes=False)


def test_postgres_needs_yes(settings: Settings) -> None:
    pg = replace(settings, databases={"auth": "postgres://u:secret@127.0.0.1/auth"})
    with pytest.raises(GuardError, match="--yes") as caught:
        reset(pg, registry.get("auth"), backup=True, yes=False)
    assert "secret" not in str(caught.value)


def test_backup_of_a_path_with_uri_characters(tmp_path: Path) -> None:
    folder = tmp_path / "odd ?#% name"
    folder.mkdir()
    make_wal_database(folder / "db.sqlite3").close()
    copy = backup_sqlite(folder / "db.sqlite3", tmp_path / "backups", "auth")
    with sqlite3.connect(copy) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (100,)
