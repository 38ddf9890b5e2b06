"""Copy a checkout without its local state, for isolated runs (nox sessions, tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

#: Local state that never travels with a copy: virtualenvs, databases, secrets, caches.
LOCAL_STATE = (
    ".git",
    ".venv",
    ".nox",
    ".devstack",
    "backups",
    "logs",
    "db.sqlite3*",
    ".seed-password*",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "*.egg-info",
    "invoke.yaml",
)


def copy_checkout(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` (replacing it) without local state; return ``target``."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*LOCAL_STATE))
    return target
