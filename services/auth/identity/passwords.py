"""Provide the password of seeded accounts without ever printing it."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import make_password

from .errors import SeedError

PASSWORD_ENV = "SEED_USER_PASSWORD"
FILE_ENV = "SEED_PASSWORD_FILE"
FILE_NAME = ".seed-password"


def password_file() -> Path:
    """Return the file holding the generated password (env SEED_PASSWORD_FILE overrides)."""
    override = os.environ.get(FILE_ENV, "").strip()
    return Path(override) if override else Path(settings.BASE_DIR) / FILE_NAME


def read_or_create_password(path: Path) -> tuple[str, bool]:
    """Return the password stored in `path`, creating it (mode 0600) when missing.

    The second value tells whether the file was created now.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored, False
        raise SeedError(f"The seed password file {path} is empty; delete it to generate a new one.") from None
    password = secrets.token_urlsafe(18)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    return password, True


@dataclass
class PasswordSource:
    """Hash the seed password once per run, and only when a new row needs it."""

    notes: list[str] = field(default_factory=list)
    _hash: str | None = None

    def hashed(self) -> str:
        """Return the hash of the seed password, computing it on first use."""
        if self._hash is None:
            password = os.environ.get(PASSWORD_ENV, "")
            if not password:
                path = password_file()
                password, created = read_or_create_password(path)
                verb = "Generated" if created else "Used"
                self.notes.append(f"{verb} the seed password stored in {path}.")
            self._hash = make_password(password)
        return self._hash
