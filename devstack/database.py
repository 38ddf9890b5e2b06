"""What can be wrong with a service's database, in one sentence each.

A SQLite file is looked at by the runner before any service process opens it: a folder where
the file belongs, a file that cannot be read, an empty file, or one without SQLite's header.
The runner reads the first 100 bytes itself rather than opening the file with SQLite, even
read-only (``mode=ro``): a read-only connection to a WAL database creates ``-wal`` and ``-shm``
files it cannot remove again (they would change the fingerprint of a verified stack and appear in
a folder the user may not want written), on a read-only file system it cannot open a WAL
database at all, and a 0-byte file is a valid empty database to SQLite, which Django would then
write to. Reading the header starts no process and changes nothing.

Damage past the header (``database disk image is malformed``) shows only when the pages are
read, which the service command does anyway: its SQLite message, like PostgreSQL's "database
does not exist" or "no password supplied", is recognised in the command's output and turned
into the same kind of sentence (:func:`recognise`).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from devstack.config import Settings
from devstack.errors import GuardError, StackError, StepError
from devstack.holders import sqlite_path
from devstack.registry import Service
from devstack.urls import mask_url

#: The first 16 bytes of every SQLite 3 database file.
MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Damage:
    """Why a SQLite file cannot be used: the cause, SQLite's own words, and whether reset may move it."""

    cause: str
    words: str
    movable: bool = True


NOT_SQLITE = Damage("is not a SQLite database", "file is not a database")
MALFORMED = Damage("is damaged", "database disk image is malformed")
EMPTY = Damage("is an empty file (0 bytes), not a SQLite database", "")
FOLDER = Damage("is a folder, not a SQLite file", "", movable=False)

#: SQLite's messages for a file it cannot use, as a service command prints them.
SQLITE_MESSAGES = {
    "file is not a database": NOT_SQLITE,
    "database disk image is malformed": MALFORMED,
    "malformed database schema": Damage("is damaged", "malformed database schema"),
    "unable to open database file": Damage("cannot be opened", "unable to open database file"),
}


def shown(settings: Settings, path: Path) -> str:
    """A path as users see it: relative to the checkout when it is inside it, with '/'."""
    try:
        return path.relative_to(settings.root).as_posix()
    except ValueError:
        return str(path)


def inspect(path: Path) -> Damage | None:
    """What is wrong with the SQLite file at ``path``; None when it looks usable or does not exist."""
    if path.is_dir():
        return FOLDER
    try:
        with path.open("rb") as file:
            header = file.read(len(MAGIC))
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        return Damage("cannot be read by this user", exc.strerror or "permission denied")
    except OSError as exc:
        return Damage("cannot be read", exc.strerror or type(exc).__name__)
    if not header and not _size(Path(f"{path}-wal")):
        return EMPTY
    if header != MAGIC:
        return NOT_SQLITE
    return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def fault(settings: Settings, service: Service, path: Path, damage: Damage) -> GuardError:
    """The one sentence for a service's unusable SQLite file: the file, the cause, the fix."""
    words = f" ({damage.words})" if damage.words else ""
    where = f"{service.name}'s database {shown(settings, path)} {damage.cause}{words}"
    if not damage.movable:
        fix = "move that folder away yourself (the runner never deletes a folder), then rerun"
    elif damage.cause.startswith("cannot be"):
        fix = f"fix its permissions, or move it aside with 'inv reset.{service.name}'"
    elif damage is EMPTY:
        fix = f"remove it with 'inv reset.{service.name}' (it holds no data) or restore a backup"
    else:
        fix = f"move it aside with 'inv reset.{service.name}' or restore a backup"
    return GuardError(f"{where}; {fix}.")


def check(settings: Settings, service: Service) -> None:
    """Raise the sentence of :func:`fault` when ``service``'s SQLite file cannot be used."""
    path = sqlite_path(settings, service)
    if path is None:
        return
    damage = inspect(path)
    if damage is not None:
        raise fault(settings, service, path, damage)


# -- what a failed service command said -----------------------------------------------------------

#: SQLite's words when the storage under the database failed it: (cause, fix).
SQLITE_STORAGE = {
    "database or disk is full": ("the disk holding it is full", "free space"),
    "disk I/O error": ("the disk failed to read or write it", "check the disk"),
    "attempt to write a readonly database": (
        "it (or its folder) may not be written",
        "fix the permissions or run it in a writable checkout",
    ),
}
#: Less free space than this (bytes) is a full disk: SQLite needs room for its -wal and -shm files.
FULL_BELOW = 1 << 20


def disk_full(path: Path) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing folder) is about full."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free < FULL_BELOW
            except OSError:
                return False
    return False


PG_MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]*)" does not exist')
PG_MISSING_ROLE = re.compile(r'role "(?P<name>[^"]*)" does not exist')
PG_NO_PASSWORD = ("no password supplied", "password authentication failed")
PG_DOWN = ("connection refused", "no such file or directory", "timeout expired", "could not translate host")


def recognise(settings: Settings, service: Service, stderr: str, log: str) -> StackError | None:
    """Turn a failed command's database message into one sentence with the fix; None if unknown.

    ``log`` says where the command's full output was kept ("full output: logs/...").
    """
    text = stderr.lower()
    path = sqlite_path(settings, service)
    if path is not None:
        for words, damage in SQLITE_MESSAGES.items():
            if words in text and not path.parent.is_dir():
                return GuardError(
                    f"{service.name}'s database {shown(settings, path)} cannot be created: its folder "
                    f"does not exist; create the folder or fix devstack.databases.{service.name}."
                )
            if words in text:
                return fault(settings, service, path, inspect(path) or damage)
        for words, (cause, fix) in SQLITE_STORAGE.items():
            if words.lower() in text:
                if disk_full(path):  # SQLite says "disk I/O error" when it cannot grow its -shm file
                    cause, fix = SQLITE_STORAGE["database or disk is full"]
                return StepError(
                    f"{service.name}'s database {shown(settings, path)} could not be used: {cause} "
                    f"({words}); nothing was committed: {fix}, then rerun ({log})."
                )
        return None
    url = settings.database_url(service.name)
    if urlsplit(url).scheme.lower().split("+")[0] not in {"postgres", "postgresql", "pgsql", "postgis"}:
        return None
    return _postgres(service, url, stderr, text, log)


def _postgres(service: Service, url: str, stderr: str, text: str, log: str) -> StackError | None:
    masked = mask_url(url)  # parsed masked: a raw password may hold '/', '?', '#' or '@'
    parts = urlsplit(masked)
    netloc = parts.netloc.rpartition("@")[2]
    server = f"the PostgreSQL server at {netloc or 'the default socket'}"
    user = unquote(parts.username or "") or None
    setting = f"devstack.databases.{service.name}"
    if found := PG_MISSING_DATABASE.search(stderr):
        name = found.group("name")
        try:
            port = parts.port
        except ValueError:  # several hosts: createdb takes the first one it reaches from -h anyway
            port = None
        options = " ".join(
            f"{flag} {value}" for flag, value in (("-h", parts.hostname), ("-p", port), ("-U", user)) if value
        )
        command = f"createdb {options} {name}" if options else f"createdb {name}"
        return StepError(
            f"{service.name}'s database {name} does not exist on {server}; create it with '{command}' "
            f"(or point {setting} at one that exists), then rerun."
        )
    if found := PG_MISSING_ROLE.search(stderr):
        role = found.group("name")
        return StepError(
            f"{service.name}: the role {role} does not exist on {server}; create it with "
            f"'createuser --createdb {role}' or fix the user in {setting} ({masked})."
        )
    if any(words in text for words in PG_NO_PASSWORD):
        said = "refused the password of" if "authentication failed" in text else "wants a password for"
        return StepError(
            f"{service.name}: {server} {said} the role {user or '(default user)'}; put the right password "
            f"in the URL of {setting} (postgres://USER:PASSWORD@HOST:PORT/NAME, with / ? # @ % : "
            f"percent-encoded; now {masked})."
        )
    if "connection to server" in text and any(words in text for words in PG_DOWN):
        return StepError(
            f"{service.name}: {server} does not answer; start PostgreSQL or fix {setting} ({masked}) ({log})."
        )
    return None


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to the new file ``target`` with the backup API
    (consistent, the write-ahead log's content included; the source is opened read-only)."""
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        writer = sqlite3.connect(target)
        try:
            reader.backup(writer)
        finally:
            writer.close()
    finally:
        reader.close()
