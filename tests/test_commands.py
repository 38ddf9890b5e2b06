from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devstack import registry
from devstack.commands import child_env, failure_sentence, manage, run_child
from devstack.config import Settings
from devstack.errors import StepError


def test_failure_sentence_prefers_the_command_error() -> None:
    stderr = "Traceback...\nSomething\nCommandError: --count must be 0 or more; pass a smaller number.\n"
    assert failure_sentence(stderr) == "--count must be 0 or more; pass a smaller number."
    assert failure_sentence("boom\nlast line\n") == "last line"
    assert failure_sentence("") == "the command failed without output"


def test_child_env_gives_each_service_its_own_database(settings: Settings) -> None:
    from dataclasses import replace

    configured = replace(settings, databases={"auth": "postgres://u@127.0.0.1/auth"})
    environ = {"DATABASE_URL": "postgres://leak@127.0.0.1/x", "PATH": "/bin"}
    auth_env = child_env(configured, registry.get("auth"), environ)
    helpdesk_env = child_env(configured, registry.get("helpdesk"), environ)
    assert auth_env["DATABASE_URL"] == "postgres://u@127.0.0.1/auth"
    assert "DATABASE_URL" not in helpdesk_env
    assert helpdesk_env["CELERY_BROKER_URL"] == configured.broker_url
    assert helpdesk_env["SYNC_NAMESPACE"] == settings.namespace() != ""


def test_manage_without_a_virtualenv_says_to_install(settings: Settings) -> None:
    with pytest.raises(StepError, match="run 'inv install' first"):
        manage(settings, registry.get("auth"), "check")


def test_run_child_hands_over_progress_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "assert os.environ['DEVSTACK_PROGRESS'] == '1'\n"
        'sys.stderr.write(\'PROGRESS {"model": "Ticket", "done": 2000, "total": 4000}\\n\')\n'
        "sys.stderr.write('a warning\\n')\n"
        "sys.stderr.write('PROGRESS not json\\n')\n"
        "print(sys.stdin.read().upper())\n"
    )
    seen: list[tuple[str, int, int]] = []
    done = run_child(
        [sys.executable, "-c", script], tmp_path, dict(os.environ), "in", lambda *a: seen.append(a)
    )
    assert done.returncode == 0, done.stderr
    assert seen == [("Ticket", 2000, 4000)]
    assert done.stdout == "IN\n"
    assert done.stderr == "a warning\nPROGRESS not json\n"
