from __future__ import annotations

import os
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


# -- a database that is not a usable SQLite file ------------------------------------------------


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_reset_moves_a_corrupt_database_aside_with_its_wal(settings: Settings, damage: str) -> None:
    helpdesk = registry.get("helpdesk")
    database = helpdesk.default_sqlite(settings.root)
    if damage == "random":
        database.write_bytes(os.urandom(50_000))
    else:
        make_wal_database(database).close()
        with database.open("r+b") as file:
            file.truncate(database.stat().st_size // 2)
    Path(f"{database}-wal").write_bytes(b"w" * 10)
    content = database.read_bytes()
    said = reset(settings, helpdesk, backup=True, yes=False)
    assert said.startswith("moved db.sqlite3 aside to backups/helpdesk-corrupt-")
    assert not database.exists() and not Path(f"{database}-wal").exists()
    (moved,) = (settings.root / "backups").glob("helpdesk-corrupt-*.sqlite3")
    assert moved.read_bytes() == content
    assert Path(f"{moved}-wal").read_bytes() == b"w" * 10
    assert not list((settings.root / "backups").glob("helpdesk-2*"))  # no empty "backup" beside it


def test_reset_removes_an_empty_file_without_a_backup(settings: Settings) -> None:
    database = registry.get("helpdesk").default_sqlite(settings.root)
    database.write_bytes(b"")
    said = reset(settings, registry.get("helpdesk"), backup=True, yes=False)
    assert said == "removed the empty db.sqlite3 (0 bytes: there was nothing to back up)"
    assert not database.exists() and not (settings.root / "backups").exists()


def test_reset_refuses_a_folder_where_the_database_belongs(settings: Settings) -> None:
    database = registry.get("helpdesk").default_sqlite(settings.root)
    database.mkdir()
    (database / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(GuardError, match="is a folder, not a SQLite file; reset removes files only"):
        reset(settings, registry.get("helpdesk"), backup=True, yes=False)
    assert (database / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_a_backup_that_cannot_be_written_removes_nothing(settings: Settings) -> None:
    auth = registry.get("auth")
    database = auth.default_sqlite(settings.root)
    make_wal_database(database).close()
    content = database.read_bytes()
    (settings.root / "backups").write_text("a file where the folder belongs", encoding="utf-8")
    with pytest.raises(GuardError) as caught:
        reset(settings, auth, backup=True, yes=False)
    assert str(caught.value).startswith(
        "auth: could not keep a copy of services/auth/db.sqlite3 in backups ("
    )
    assert "so nothing was removed" in str(caught.value) and "--no-backup" in str(caught.value)
    assert database.read_bytes() == content
