"""Copy a checkout without its local state, for isolated runs (nox sessions, tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: What never travels with a copy of a folder that is not a git checkout: virtualenvs,
#: databases, secrets, caches. In a git checkout, ``.gitignore`` says it instead.
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

#: Variables that would point git at another repository than the one in ``source``.
GIT_LOCATION = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")


def copy_checkout(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` (replacing it) without local state; return ``target``.

    When ``source`` is the top of a git work tree, the copy holds what
    ``git ls-files --cached --others --exclude-standard`` lists: the tracked files and the new
    files git does not ignore, as they are in the work tree (uncommitted edits included),
    without the tracked files deleted from it. When ``source`` is not a git checkout (or git
    is not installed), everything is copied but the ``LOCAL_STATE`` patterns.
    """
    shutil.rmtree(target, ignore_errors=True)
    files = checkout_files(source)
    if files is None:
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(*LOCAL_STATE))
        return target
    target.mkdir(parents=True)
    for name in files:
        origin = source / name
        if not origin.exists():  # deleted from the work tree (or a dangling link): not in the copy
            continue
        copy = target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():  # a submodule: git lists only its folder
            shutil.copytree(origin, copy, ignore=shutil.ignore_patterns(*LOCAL_STATE))
        else:
            shutil.copy2(origin, copy)
    return target


def checkout_files(source: Path) -> list[str] | None:
    """The files of the git checkout at ``source``, relative to it; None when it is not one."""
    top = git(source, "rev-parse", "--show-toplevel")
    if top is None or not _same(Path(os.fsdecode(top.rstrip(b"\r\n"))), source):
        return None  # no git, no work tree, or a folder inside another one's work tree
    listed = git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is None:
        return None
    return sorted({os.fsdecode(name) for name in listed.split(b"\0") if name})


def git(folder: Path, *args: str) -> bytes | None:
    """Run git in ``folder``; return its output, or None when git is missing or fails."""
    env = {k: v for k, v in os.environ.items() if k not in GIT_LOCATION}
    try:
        done = subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
