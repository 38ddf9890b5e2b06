"""Run a service's ``manage.py`` commands in its own virtualenv: a process each, or a fork of a warm one."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devstack import database, warm
from devstack.config import Settings
from devstack.errors import StepError
from devstack.registry import Service
from devstack.urls import mask_text
from devstack.venvs import venv_python


def child_env(
    settings: Settings, service: Service, environ: Mapping[str, str] = os.environ
) -> dict[str, str]:
    """Return the environment of a service process: its own DATABASE_URL, the broker and namespace."""
    env = dict(environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    url = settings.database_url(service.name)
    if url:
        env["DATABASE_URL"] = url
    else:
        env.pop("DATABASE_URL", None)
    env["CELERY_BROKER_URL"] = settings.broker_url
    env["SYNC_NAMESPACE"] = settings.namespace()  # this checkout's sync queues on the broker
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


#: A running service command: a process of its own, or a fork of its service's warm server.
Child = subprocess.Popen[str] | warm.Forked
_children: set[Child] = set()
_children_lock = threading.Lock()


#: A service command's report of how far it got: ``PROGRESS {"model": ..., "done": n, "total": m}``
#: on stderr, printed when the runner sets this variable (the helpdesk seed does, per chunk).
PROGRESS_ENV = "DEVSTACK_PROGRESS"
PROGRESS_PREFIX = "PROGRESS "
Progress = Callable[[str, int, int], None]


def start_child(command: list[str], cwd: Path, env: dict[str, str], piped_stdin: bool) -> Child:
    """Start a service command: forked from its warm server where there is one (see ``warm``)."""
    forked = warm.start(command, cwd, env, piped_stdin)
    if forked is not None:
        return forked
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if piped_stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
    )


def run_child(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    stdin: str | None = None,
    on_progress: Progress | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a service command to its end, known to :func:`kill_children` while it runs.

    With ``on_progress`` the command is asked for its progress lines (``PROGRESS_ENV``); each is
    handed over as it comes (what, done, total) and left out of the returned stderr.
    """
    if on_progress is not None:
        env = {**env, PROGRESS_ENV: "1"}
    proc = start_child(command, cwd, env, stdin is not None)
    with _children_lock:
        _children.add(proc)
    try:
        out, err = exchange(proc, stdin, on_progress)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        with _children_lock:
            _children.discard(proc)
    return subprocess.CompletedProcess(command, proc.wait(), out, err)


def exchange(proc: Child, stdin: str | None, on_progress: Progress | None) -> tuple[str, str]:
    """Feed ``stdin`` and read stdout and stderr to their ends at once (threads: no pipe fills up).

    With ``on_progress``, stderr's progress lines are handed over as they come and left out.
    """
    kept: list[str] = []

    def read_errors() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if on_progress is not None and line.startswith(PROGRESS_PREFIX):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    report = json.loads(line[len(PROGRESS_PREFIX) :])
                    on_progress(str(report["model"]), int(report["done"]), int(report["total"]))
                    continue
            kept.append(line)
        proc.stderr.close()

    def write_input() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(stdin or "")
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.close()

    helpers = [threading.Thread(target=read_errors, daemon=True)]
    if proc.stdin is not None:
        helpers.append(threading.Thread(target=write_input, daemon=True))
    for helper in helpers:
        helper.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    proc.wait()
    for helper in helpers:
        helper.join()
    return out, "".join(kept)


def kill_children() -> int:
    """Kill every service command still running (its transaction is rolled back); return how many."""
    with _children_lock:
        running = [p for p in _children if p.poll() is None]
    for proc in running:
        proc.kill()
    warm.shutdown()
    return len(running)


def manage(
    settings: Settings,
    service: Service,
    *args: str,
    stdin: str | None = None,
    on_progress: Progress | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py <args>``; on failure raise ``StepError`` with the command's own sentence."""
    command = manage_command(settings, service, *args)
    env = child_env(settings, service)
    done = run_child(command, service.folder(settings.root), env, stdin, on_progress)
    if done.returncode != 0:
        try:
            note = f"full output: {write_log(settings, service, args[0], done)}"
        except OSError as exc:  # a full disk or a read-only checkout must not hide the command's error
            note = f"its full output could not be kept: {exc.strerror or exc}"
        known = database.recognise(settings, service, done.stderr, note)
        if known is not None:
            raise known
        raise StepError(f"{service.name}: {mask_text(failure_sentence(done.stderr))} ({note})")
    return done


def manage_json(
    settings: Settings,
    service: Service,
    *args: str,
    stdin: str | None = None,
    on_progress: Progress | None = None,
) -> Any:
    """Run ``manage.py <args> --json`` and return the decoded JSON document."""
    done = manage(settings, service, *args, "--json", stdin=stdin, on_progress=on_progress)
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
