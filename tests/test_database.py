"""A service's database that cannot be used: one sentence naming it, the cause and the fix."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from devstack import database, registry
from devstack.config import Settings
from devstack.errors import GuardError, StepError

HELPDESK = registry.get("helpdesk")


def real_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make(kind: str, path: Path) -> None:
    """Put a database of ``kind`` at ``path``: what users find after a crash, a bad copy or a typo."""
    if kind == "random":
        path.write_bytes(os.urandom(50_000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("not a database\n", encoding="utf-8")
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "sentence"),
    [
        (
            "random",
            "helpdesk's database services/helpdesk/db.sqlite3 is not a SQLite database (file is not a "
            "database); move it aside with 'inv reset.helpdesk' or restore a backup.",
        ),
        (
            "text",
            "helpdesk's database services/helpdesk/db.sqlite3 is not a SQLite database (file is not a "
            "database); move it aside with 'inv reset.helpdesk' or restore a backup.",
        ),
        (
            "empty",
            "helpdesk's database services/helpdesk/db.sqlite3 is an empty file (0 bytes), not a SQLite "
            "database; remove it with 'inv reset.helpdesk' (it holds no data) or restore a backup.",
        ),
        (
            "folder",
            "helpdesk's database services/helpdesk/db.sqlite3 is a folder, not a SQLite file; move that "
            "folder away yourself (the runner never deletes a folder), then rerun.",
        ),
    ],
)
def test_an_unusable_file_is_one_sentence_and_stays_as_it_was(
    settings: Settings, kind: str, sentence: str
) -> None:
    path = HELPDESK.default_sqlite(settings.root)
    make(kind, path)
    before = sorted(p.name for p in path.parent.iterdir())
    content = digest(path) if path.is_file() else None
    with pytest.raises(GuardError) as caught:
        database.check(settings, HELPDESK)
    assert str(caught.value) == sentence
    assert caught.value.code == 3
    assert sorted(p.name for p in path.parent.iterdir()) == before  # no -wal, no -shm either
    assert (digest(path) if path.is_file() else None) == content


def test_a_real_database_passes_and_a_missing_one_is_no_fault(settings: Settings) -> None:
    path = HELPDESK.default_sqlite(settings.root)
    database.check(settings, HELPDESK)  # missing: the service creates it when it migrates
    real_database(path)
    database.check(settings, HELPDESK)
    assert database.inspect(path) is None


def test_an_empty_file_with_a_write_ahead_log_is_left_to_sqlite(settings: Settings) -> None:
    path = HELPDESK.default_sqlite(settings.root)
    path.write_bytes(b"")
    Path(f"{path}-wal").write_bytes(b"x" * 100)
    assert database.inspect(path) is database.NOT_SQLITE


def test_a_file_this_user_cannot_read(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    path = HELPDESK.default_sqlite(settings.root)
    real_database(path)

    def refused(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refused)
    with pytest.raises(GuardError) as caught:
        database.check(settings, HELPDESK)
    assert str(caught.value) == (
        "helpdesk's database services/helpdesk/db.sqlite3 cannot be read by this user (Permission "
        "denied); fix its permissions, or move it aside with 'inv reset.helpdesk'."
    )


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0,
    reason="root reads any file; the monkeypatched test covers it",
)
def test_a_file_this_user_cannot_read_for_real(settings: Settings) -> None:
    path = HELPDESK.default_sqlite(settings.root)
    real_database(path)
    path.chmod(0)
    try:
        with pytest.raises(GuardError, match="cannot be read by this user"):
            database.check(settings, HELPDESK)
    finally:
        path.chmod(0o600)


def test_a_database_outside_the_checkout_is_named_in_full(settings: Settings, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.sqlite3"
    outside.write_bytes(os.urandom(200))
    try:
        configured = replace(settings, databases={"helpdesk": f"sqlite:///{outside}"})
        with pytest.raises(GuardError, match=f"helpdesk's database {outside} is not a SQLite database"):
            database.check(configured, HELPDESK)
    finally:
        outside.unlink()


# -- what a failed service command said -----------------------------------------------------------


def test_sqlite_damage_past_the_header_is_recognised_in_a_command_s_output(settings: Settings) -> None:
    real_database(HELPDESK.default_sqlite(settings.root))
    stderr = "Traceback ...\ndjango.db.utils.DatabaseError: database disk image is malformed\n"
    found = database.recognise(settings, HELPDESK, stderr, "logs/helpdesk-seed.log")
    assert isinstance(found, GuardError)
    assert str(found) == (
        "helpdesk's database services/helpdesk/db.sqlite3 is damaged (database disk image is malformed); "
        "move it aside with 'inv reset.helpdesk' or restore a backup."
    )


def test_a_full_disk_while_a_command_writes(settings: Settings) -> None:
    stderr = "django.db.utils.OperationalError: database or disk is full\n"
    found = database.recognise(settings, HELPDESK, stderr, "logs/x.log")
    assert isinstance(found, StepError)
    assert str(found).startswith(
        "helpdesk's database services/helpdesk/db.sqlite3 could not be written: the disk holding it is "
        "full (database or disk is full); its transaction was rolled back"
    )


def test_an_unknown_failure_is_left_to_the_command_s_own_sentence(settings: Settings) -> None:
    assert database.recognise(settings, HELPDESK, "CommandError: Roles are missing\n", "x") is None
    pg = replace(settings, databases={"helpdesk": "postgres://u:pw@127.0.0.1/db"})
    assert database.recognise(pg, HELPDESK, "CommandError: Roles are missing\n", "x") is None


def postgres(settings: Settings, url: str) -> Settings:
    return replace(settings, databases={"helpdesk": url})


def test_a_missing_postgres_database_names_createdb(settings: Settings) -> None:
    url = "postgres://me:s%40cret@127.0.0.1:5433/devstack_helpdesk"
    stderr = (
        'connection to server at "127.0.0.1", port 5433 failed: FATAL:  database "devstack_helpdesk" '
        "does not exist\n"
    )
    found = database.recognise(postgres(settings, url), HELPDESK, stderr, "x")
    assert str(found) == (
        "helpdesk's database devstack_helpdesk does not exist on the PostgreSQL server at 127.0.0.1:5433; "
        "create it with 'createdb -h 127.0.0.1 -p 5433 -U me devstack_helpdesk' (or point "
        "devstack.databases.helpdesk at one that exists), then rerun."
    )


@pytest.mark.parametrize(
    ("stderr", "said"),
    [
        ("fe_sendauth: no password supplied", "wants a password for the role me"),
        ('FATAL:  password authentication failed for user "me"', "refused the password of the role me"),
    ],
)
def test_a_role_that_needs_a_password_is_told_to_put_it_in_the_url(
    settings: Settings, stderr: str, said: str
) -> None:
    url = "postgres://me:p/a?s#s@w@127.0.0.1:5432/db"  # pasted raw
    found = str(database.recognise(postgres(settings, url), HELPDESK, f"connection failed: {stderr}\n", "x"))
    assert f"helpdesk: the PostgreSQL server at 127.0.0.1:5432 {said}" in found
    assert "put the right password in the URL of devstack.databases.helpdesk" in found
    assert "p/a?s#s@w" not in found and "postgres://me:***@127.0.0.1:5432/db" in found


def test_a_postgres_server_that_does_not_answer(settings: Settings) -> None:
    stderr = 'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
    found = database.recognise(postgres(settings, "postgres://u:pw@127.0.0.1:1/db"), HELPDESK, stderr, "x")
    assert str(found) == (
        "helpdesk: the PostgreSQL server at 127.0.0.1:1 does not answer; start PostgreSQL or fix "
        "devstack.databases.helpdesk (postgres://u:***@127.0.0.1:1/db) (full output: x)."
    )
