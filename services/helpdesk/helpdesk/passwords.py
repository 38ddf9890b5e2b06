"""Provide the one password of every seeded account of the checkout, without ever printing it.

``SEED_USER_PASSWORD`` wins. Otherwise the password is generated once per checkout into
``<checkout>/.devstack/seed-password`` (``SEED_PASSWORD_FILE`` overrides the path), so the
accounts of auth, workflow and helpdesk share it. The file is created owner-only (0600) with
``O_EXCL``: services seeding in parallel agree, since the one that loses the race reads what
the winner wrote. A checkout whose services kept their own ``services/<svc>/.seed-password``
(before the file was shared) adopts the first of them (auth's first), so the accounts already
seeded with it keep their password; those old files are only read, never changed.

This file is the same in every service (the runner's tests/test_shared_copies.py checks it):
edit one copy, then copy it over the others.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.management.base import CommandError

PASSWORD_ENV = "SEED_USER_PASSWORD"
FILE_ENV = "SEED_PASSWORD_FILE"
STATE_DIR = ".devstack"
FILE_NAME = "seed-password"
LEGACY_FILE_NAME = ".seed-password"
#: How long a reader waits for the password a parallel seed is writing into a new file.
WRITE_WAIT_SECONDS = 2.0


class SeedPasswordError(CommandError):
    """Signal a password file that cannot be used (one sentence: what is wrong and what to do)."""


def checkout_root() -> Path:
    """Return the checkout holding this service (the service lives at ``services/<svc>``)."""
    return Path(settings.BASE_DIR).resolve().parent.parent


def password_file() -> Path:
    """Return the file holding the generated password (env SEED_PASSWORD_FILE overrides)."""
    override = os.environ.get(FILE_ENV, "").strip()
    return Path(override) if override else checkout_root() / STATE_DIR / FILE_NAME


def legacy_password(root: Path) -> tuple[str, Path] | None:
    """Return the first non-empty ``services/<svc>/.seed-password`` of ``root`` and its path."""
    for path in sorted((root / "services").glob(f"*/{LEGACY_FILE_NAME}")):
        try:
            stored = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if stored:
            return stored, path
    return None


def read_stored(path: Path) -> str:
    """Return the password in ``path``, waiting briefly while a parallel seed writes it."""
    deadline = time.monotonic() + WRITE_WAIT_SECONDS
    while True:
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored
        if time.monotonic() >= deadline:
            raise SeedPasswordError(
                f"The seed password file {path} is empty; delete it to generate a new one."
            )
        time.sleep(0.05)


def read_or_create_password(path: Path, adopt_from: Path | None = None) -> tuple[str, bool]:
    """Return the password stored in ``path``, creating it (mode 0600) when missing.

    A new file gets the password of the first legacy file under ``adopt_from`` (a checkout
    root), else a generated one. The second value tells whether the file was created now.
    """
    if path.exists():
        return read_stored(path), False
    adopted = legacy_password(adopt_from) if adopt_from is not None else None
    password = adopted[0] if adopted else secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_stored(path), False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password + "\n")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return password, True


def password_and_note() -> tuple[str, str | None]:
    """Return the seed password and, when it comes from a file, a note naming the file."""
    given = os.environ.get(PASSWORD_ENV, "")
    if given:
        return given, None
    override = os.environ.get(FILE_ENV, "").strip()
    path = password_file()
    password, created = read_or_create_password(path, None if override else checkout_root())
    verb = "Generated" if created else "Used"
    return password, f"{verb} the seed password stored in {path}."


def seed_password() -> str:
    """Return the seed password: the env value, else the stored or a new generated one."""
    return password_and_note()[0]


@dataclass
class PasswordSource:
    """Read and hash the seed password once per run, and only when a row needs it."""

    notes: list[str] = field(default_factory=list)
    _password: str | None = None
    _hash: str | None = None

    def plain(self) -> str:
        """Return the seed password, reading (or generating) it on first use."""
        if self._password is None:
            self._password, note = password_and_note()
            if note:
                self.notes.append(note)
        return self._password

    def hashed(self) -> str:
        """Return the hash of the seed password, computing it on first use."""
        if self._hash is None:
            self._hash = make_password(self.plain())
        return self._hash
