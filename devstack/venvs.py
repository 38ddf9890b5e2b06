"""Per-service virtualenvs: Windows and POSIX layouts, install stamps, uv or pip."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.errors import StepError

STAMP = "devstack-stamp.json"


def venv_python(venv: Path, windows: bool | None = None) -> Path:
    """Return the interpreter of ``venv`` (``Scripts\\python.exe`` on Windows)."""
    if windows if windows is not None else os.name == "nt":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def requirements_digest(requirements: Path) -> str:
    """Hash a requirements file together with every ``-r`` file it includes."""
    digest = hashlib.sha256()
    seen: set[Path] = set()

    def feed(path: Path) -> None:
        path = path.resolve()
        if path in seen:
            return
        seen.add(path)
        text = path.read_text(encoding="utf-8")
        digest.update(path.name.encode() + b"\0" + text.encode())
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in {"-r", "--requirement"}:
                feed(path.parent / parts[1])

    feed(requirements)
    return digest.hexdigest()


def stamp_for(requirements: Path, base_python: str = sys.executable) -> dict[str, str]:
    """Describe what a virtualenv was built from: requirements hash and interpreter."""
    return {
        "requirements": requirements_digest(requirements),
        "python": f"{base_python} {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}",
    }


def is_current(venv: Path, stamp: dict[str, str]) -> bool:
    """Tell whether ``venv`` exists and was built from exactly ``stamp``."""
    try:
        recorded = json.loads((venv / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == stamp and venv_python(venv).exists()


@functools.cache
def find_uv() -> str | None:
    """Return the uv executable, from PATH or from the installed ``uv`` package."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return None


def install_commands(
    venv: Path, requirements: Path, uv: str | None, base_python: str = sys.executable
) -> list[list[str]]:
    """Return the command lines that build ``venv`` from ``requirements``.

    Packages are compiled to bytecode at install time (pip does it by default), so every later
    service process starts fast even where ``PYTHONDONTWRITEBYTECODE`` is set.
    """
    python = str(venv_python(venv))
    if uv:
        return [
            [uv, "venv", "--quiet", "--allow-existing", "--python", base_python, str(venv)],
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--compile-bytecode",
                "--python",
                python,
                "-r",
                str(requirements),
            ],
        ]
    return [
        [base_python, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)],
    ]


def build(venv: Path, requirements: Path, force: bool = False) -> bool:
    """Build ``venv`` unless its stamp matches; return whether anything was installed."""
    stamp = stamp_for(requirements)
    if not force and is_current(venv, stamp):
        return False
    (venv / STAMP).unlink(missing_ok=True)
    for command in install_commands(venv, requirements, find_uv()):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise StepError(
                f"Installing {requirements} failed ({last}); check that the package index "
                "is reachable, then rerun with --force."
            )
    (venv / STAMP).write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    return True
