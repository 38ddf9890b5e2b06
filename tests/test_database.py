"""A service's database that cannot be used: one sentence naming it, the cause and the fix."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from devstack import database, registry
from devstack.config import Settings
from devstack.errors import GuardError, StepError
from devstack.venvs import venv_python
from tests.conftest import inv_env, seeded_copy

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


def test_a_database_in_a_folder_that_does_not_exist(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "db.sqlite3"
    configured = replace(settings, databases={"helpdesk": f"sqlite:///{missing}"})
    stderr = "django.db.utils.OperationalError: unable to open database file\n"
    assert str(database.recognise(configured, HELPDESK, stderr, "x")) == (
        "helpdesk's database no-such-folder/db.sqlite3 cannot be created: its folder does not exist; create "
        "the folder or fix devstack.databases.helpdesk."
    )


def test_a_full_disk_while_a_command_writes(settings: Settings) -> None:
    stderr = "django.db.utils.OperationalError: database or disk is full\n"
    found = database.recognise(settings, HELPDESK, stderr, "full output: logs/x.log")
    assert isinstance(found, StepError)
    assert str(found) == (
        "helpdesk's database services/helpdesk/db.sqlite3 could not be used: the disk holding it is full "
        "(database or disk is full); nothing was committed: free space, then rerun (full output: logs/x.log)."
    )


def test_a_disk_i_o_error_is_a_full_disk_when_the_disk_is_about_full(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stderr = "django.db.utils.OperationalError: disk I/O error\n"
    said = str(database.recognise(settings, HELPDESK, stderr, "full output: logs/x.log"))
    assert "could not be used: the disk failed to read or write it (disk I/O error)" in said
    monkeypatch.setattr(database, "FULL_BELOW", 1 << 62)
    said = str(database.recognise(settings, HELPDESK, stderr, "full output: logs/x.log"))
    assert "could not be used: the disk holding it is full (disk I/O error); nothing was committed" in said


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
    found = database.recognise(
        postgres(settings, "postgres://u:pw@127.0.0.1:1/db"), HELPDESK, stderr, "full output: x"
    )
    assert str(found) == (
        "helpdesk: the PostgreSQL server at 127.0.0.1:1 does not answer; start PostgreSQL or fix "
        "devstack.databases.helpdesk (postgres://u:***@127.0.0.1:1/db) (full output: x)."
    )


# -- the real inv against a real PostgreSQL server, and a server that asks for a password ----------


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path) -> Path:
    return seeded_copy(seeded_template, tmp_path_factory.mktemp("database") / "repo")


def inv_with(repo: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**inv_env(), "INVOKE_DEVSTACK_DATABASES_HELPDESK": url}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.integration
@pytest.mark.postgres
def test_a_missing_postgres_database_says_createdb_with_its_name(repo: Path, postgres_server: str) -> None:
    name = f"devstack_missing_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(postgres_server)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    for args in (("status",), ("verify",), ("migrate.helpdesk",), ("seed.helpdesk",)):
        done = inv_with(repo, url, *args)
        said = done.stderr.strip().splitlines()[-1]
        assert done.returncode == 5, (args, done.stderr)
        assert f"ERROR helpdesk's database {name} does not exist on the PostgreSQL server at " in said
        command = re.search(r"create it with '(createdb [^']*)'", said)
        assert command and command.group(1).endswith(f" {name}"), said
        assert "start PostgreSQL" not in said and "Traceback" not in done.stderr
    exists = subprocess.run(
        [venv_python(repo / "services" / "helpdesk" / ".venv"), "-c", EXISTS, postgres_server, name],
        capture_output=True,
        text=True,
    )
    assert exists.stdout.strip() == "0", exists.stderr  # the runner created nothing


EXISTS = """
import sys, psycopg
with psycopg.connect(sys.argv[1]) as db:
    print(db.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (sys.argv[2],)).fetchone()[0])
"""


@contextmanager
def password_server(refuse: bool) -> Iterator[int]:
    """A local server that speaks PostgreSQL's protocol up to asking for a password.

    The service's real driver (libpq) connects to it: without a password in the URL it stops with
    "no password supplied"; with one, the server answers "password authentication failed".
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                with suppress(OSError):
                    talk(conn, refuse)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def talk(conn: socket.socket, refuse: bool) -> None:
    def read(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    while True:
        (length,) = struct.unpack("!i", read(4))
        (code,) = struct.unpack("!i", read(4))
        read(length - 8)
        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: no
            conn.sendall(b"N")
            continue
        break
    conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
    kind = read(1)
    (length,) = struct.unpack("!i", read(4))
    read(length - 4)
    if kind == b"p" and refuse:
        fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "me"\0\0'
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("password", "said"),
    [("", "wants a password for the role me"), ("s3cr%2Ft", "refused the password of the role me")],
)
def test_the_real_driver_asked_for_a_password_is_told_to_put_it_in_the_url(
    repo: Path, password: str, said: str
) -> None:
    with password_server(refuse=True) as port:
        userinfo = f"me:{password}" if password else "me"
        done = inv_with(repo, f"postgres://{userinfo}@127.0.0.1:{port}/helpdesk", "status")
    line = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 5, done.stderr
    assert line.startswith(f"ERROR helpdesk: the PostgreSQL server at 127.0.0.1:{port} {said}; put the right")
    assert "devstack.databases.helpdesk" in line
    logs = "".join(p.read_text(encoding="utf-8") for p in (repo / "logs").glob("*.log"))
    for leaked in ("s3cr%2Ft", "s3cr/t"):
        assert leaked not in done.stdout + done.stderr + logs
