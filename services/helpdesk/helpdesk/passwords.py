"""Provide the password given to seeded employees, without ever printing it."""

import os
import secrets
from pathlib import Path

from django.conf import settings

PASSWORD_ENV = "SEED_USER_PASSWORD"
PASSWORD_FILE_ENV = "SEED_PASSWORD_FILE"


def password_file() -> Path:
    """Return the file that keeps the generated seed password."""
    override = os.environ.get(PASSWORD_FILE_ENV, "").strip()
    if override:
        return Path(override)
    return Path(settings.BASE_DIR) / ".seed-password"


def seed_password() -> str:
    """Return the seed password: the env value, else the stored or a new generated one."""
    given = os.environ.get(PASSWORD_ENV)
    if given:
        return given
    path = password_file()
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        return stored
    generated = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(generated + "\n")
    os.chmod(path, 0o600)
    return generated
