"""Share fixtures of the identity tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command


@pytest.fixture(autouse=True)
def isolated_passwords(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Any) -> Path:
    """Keep the seed password file in a temp folder and hash quickly."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    path = tmp_path / ".seed-password"
    monkeypatch.setenv("SEED_PASSWORD_FILE", str(path))
    monkeypatch.delenv("SEED_USER_PASSWORD", raising=False)
    return path


@pytest.fixture
def run() -> Callable[..., tuple[str, str]]:
    """Run a management command; return its stdout and stderr."""

    def _run(*args: str, **options: Any) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        call_command(*args, stdout=out, stderr=err, **options)
        return out.getvalue(), err.getvalue()

    return _run


@pytest.fixture
def seed_json(run: Callable[..., tuple[str, str]]) -> Callable[..., dict[str, Any]]:
    """Run `seed --json` with extra arguments; return the parsed document."""

    def _seed(*args: str) -> dict[str, Any]:
        out, _ = run("seed", "--json", *args)
        document: dict[str, Any] = json.loads(out)
        return document

    return _seed


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Keep the SQLite test database in a file, so a relay subprocess can open it too."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
