"""Run a service's ``manage.py`` commands in its own virtualenv, one subprocess each."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.config import Settings
from devstack.errors import StepError
from devstack.registry import Service
from devstack.urls import mask_text
from devstack.venvs import venv_python


def child_env(
    settings: Settings, service: Service, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """Return the environment of a service process: its own DATABASE_URL and the broker."""
    env = dict(environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    url = settings.database_url(service.name)
    if url:
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)
    env["CELERY_BROKER_URL"] = settings.broker_url
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def python_of(settings: Settings, service: Service) -> Path:
    python = venv_python(settings.venv_dir(service))
    if not python.exists():
        raise StepError(
            f"The {service.name} service has no virtualenv at {settings.venv_dir(service)}: "
            "run 'inv install' first."
        )
    return python


def manage_command(settings: Settings, service: Service, *args: str) -> list[str]:
    """Return the command line of ``manage.py <args>`` for ``service``."""
    return [str(python_of(settings, service)), "manage.py", *args]


def manage(
    settings: Settings, service: Service, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py <args>``; on failure raise ``StepError`` with the command's own sentence."""
    command = manage_command(settings, service, *args)
    done = subprocess.run(
        command,
        cwd=service.folder(settings.root),
        env=child_env(settings, service),
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    if done.returncode != 0:
        log = write_log(settings, service, args[0], done)
        raise StepError(f"{service.name}: {mask_text(failure_sentence(done.stderr))} (full output: {log})")
    return done


def manage_json(settings: Settings, service: Service, *args: str, stdin: str | None = None) -> Any:
    """Run ``manage.py <args> --json`` and return the decoded JSON document."""
    done = manage(settings, service, *args, "--json", stdin=stdin)
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise StepError(
            f"{service.name}: 'manage.py {args[0]}' printed no JSON report; "
            "check that the service is up to date with the runner."
        ) from None


def failure_sentence(stderr: str) -> str:
    """Pick the sentence a failed Django command gave: its CommandError, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("CommandError:"):
            return line.removeprefix("CommandError:").strip()
    return lines[-1] if lines else "the command failed without output"


def write_log(
    settings: Settings, service: Service, name: str, done: subprocess.CompletedProcess[str]
) -> Path:
    """Keep a failed command's full output in the logs folder and return its path."""
    folder = settings.root / settings.log_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{service.name}-{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    text = f"$ {' '.join(map(str, done.args))}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    path.write_text(mask_text(text), encoding="utf-8")
    return path.relative_to(settings.root)
