"""Warm service processes: a fork per command behaves as a ``manage.py`` process of its own."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from devstack import commands, processes, registry, warm
from devstack.config import Settings
from tests.conftest import seeded_copy


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {}, True),
        ("linux", {warm.SWITCH: "0"}, False),
        ("linux", {warm.SWITCH: " 0 "}, False),
        ("linux", {warm.SWITCH: "1"}, True),
        ("linux", {warm.SWITCH: "off"}, False),
        ("linux", {warm.SWITCH: "False"}, False),
        ("linux", {warm.SWITCH: "no"}, False),
        ("linux", {warm.SWITCH: ""}, True),
        ("linux", {warm.SWITCH: "yes"}, True),
        ("win32", {}, False),  # no fork: a process per command
        ("darwin", {}, False),  # fork after macOS's system libraries is not safe
        ("cygwin", {}, False),
    ],
)
def test_warm_servers_only_where_fork_is_safe(platform: str, environ: dict[str, str], expected: bool) -> None:
    assert warm.available(platform, environ) is (expected and warm.available("linux", {}))


def test_commands_other_than_manage_py_are_never_forked(tmp_path: Path) -> None:
    assert warm.start(["python", "-c", "pass"], tmp_path, {}, piped_stdin=False) is None
    assert warm.start(["python"], tmp_path, {}, piped_stdin=False) is None


pytestmark_linux = pytest.mark.skipif(not warm.available(), reason="warm servers run on Linux only")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path) -> Path:
    return seeded_copy(seeded_template, tmp_path_factory.mktemp("warm") / "repo")


@pytest.fixture
def helpdesk(repo: Path) -> Iterator[tuple[Settings, registry.Service]]:
    yield Settings(root=repo), registry.get("helpdesk")
    warm.shutdown()


def servers_of(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = proc.info["cmdline"] or []
        if any(part.endswith("warm_server.py") for part in cmdline) and proc.info["cwd"] == str(folder):
            found.append(proc)
    return found


def run(
    settings: Settings, service: registry.Service, *args: str, on_progress: commands.Progress | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py <args>`` as the runner does, keeping its exit code instead of raising."""
    return commands.run_child(
        commands.manage_command(settings, service, *args),
        service.folder(settings.root),
        commands.child_env(settings, service),
        on_progress=on_progress,
    )


@pytest.mark.integration
@pytestmark_linux
def test_a_forked_command_has_its_own_streams_exit_code_and_environment(
    helpdesk: tuple[Settings, registry.Service],
) -> None:
    settings, service = helpdesk
    warm_state = commands.manage_json(settings, service, "stack_state")
    code = "import os, sys; print(sys.stdin.read().upper(), os.environ.get('DEVSTACK_PROGRESS'))"
    echoed = commands.manage(settings, service, "shell", "--no-imports", "-c", code, stdin="über\n" * 20000)
    assert echoed.stdout == "ÜBER\n" * 20000 + " None\n"  # 100 kB through the pipes both ways

    def shell(code: str, on_progress: commands.Progress | None = None) -> subprocess.CompletedProcess[str]:
        """``manage.py shell -c CODE`` through run_child, which keeps a failing exit code."""
        return run(settings, service, "shell", "--no-imports", "-c", code, on_progress=on_progress)

    assert shell("import sys; sys.exit(7)").returncode == 7
    unknown = run(settings, service, "no_such_command")
    assert unknown.returncode == 1 and "Unknown command: 'no_such_command'" in unknown.stderr
    crashed = shell("raise RuntimeError('boom')")
    assert crashed.returncode == 1 and "RuntimeError: boom" in crashed.stderr

    progress: list[tuple[str, int, int]] = []
    reported = shell(
        'import os, sys; print(\'PROGRESS {"model": "Ticket", "done": 1, "total": 2}\', '
        "file=sys.stderr); print(os.environ.get('DEVSTACK_PROGRESS'))",
        on_progress=lambda model, done, total: progress.append((model, done, total)),
    )
    assert (
        reported.stdout.strip() == "1"
        and progress == [("Ticket", 1, 2)]
        and "PROGRESS" not in reported.stderr
    )

    # The same state as a process of its own reports, and one server did all of it.
    assert len(servers_of(service.folder(settings.root))) == 1
    warm.shutdown()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(warm.SWITCH, "0")
        assert commands.manage_json(settings, service, "stack_state") == warm_state
        assert servers_of(service.folder(settings.root)) == []


@pytest.mark.integration
@pytestmark_linux
def test_the_server_holds_no_database_and_writes_are_checkpointed(
    helpdesk: tuple[Settings, registry.Service],
) -> None:
    settings, service = helpdesk
    database = service.folder(settings.root) / "db.sqlite3"
    commands.manage(
        settings,
        service,
        "shell",
        "--no-imports",
        "-c",
        "from helpdesk.models import Ticket; Ticket.objects.update()",
    )
    (server,) = servers_of(service.folder(settings.root))
    held = {Path(f.path).name for f in server.open_files()}
    assert not {name for name in held if name.startswith("db.sqlite3")}, held
    # The child closed its connection as a process ends: SQLite folded its WAL into the file.
    assert not Path(f"{database}-wal").exists() or Path(f"{database}-wal").stat().st_size == 0
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.integration
@pytestmark_linux
def test_a_killed_command_ends_and_shutdown_leaves_no_process(
    helpdesk: tuple[Settings, registry.Service],
) -> None:
    settings, service = helpdesk
    folder = service.folder(settings.root)
    child = commands.start_child(
        commands.manage_command(
            settings, service, "shell", "--no-imports", "-c", "import time; time.sleep(60)"
        ),
        folder,
        commands.child_env(settings, service),
        piped_stdin=False,
    )
    assert isinstance(child, warm.Forked)
    with commands._children_lock:
        commands._children.add(child)
    assert commands.kill_children() == 1
    assert child.wait() < 0
    with contextlib.suppress(psutil.NoSuchProcess):  # its pipes close as it ends; it is gone just after
        assert processes.wait_gone([psutil.Process(child.pid)], timeout=10) == []
    commands._children.discard(child)
    assert servers_of(folder) == []  # kill_children ends the servers too


@pytest.mark.integration
@pytestmark_linux
def test_a_server_that_cannot_start_leaves_the_command_to_a_process_of_its_own(
    helpdesk: tuple[Settings, registry.Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, service = helpdesk
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "config.no_such_settings")
    env = {**commands.child_env(settings, service), "DJANGO_SETTINGS_MODULE": "config.no_such_settings"}
    started = time.monotonic()
    assert (
        warm.start(
            commands.manage_command(settings, service, "check"), service.folder(settings.root), env, False
        )
        is None
    )
    assert time.monotonic() - started < warm.STARTUP_TIMEOUT
    # child_env drops the caller's DJANGO_SETTINGS_MODULE: the real commands still run warm.
    assert commands.manage(settings, service, "check").returncode == 0
    assert len(servers_of(service.folder(settings.root))) == 1


@pytest.mark.integration
@pytestmark_linux
def test_a_process_the_command_leaves_behind_does_not_hold_the_runner(
    helpdesk: tuple[Settings, registry.Service],
) -> None:
    settings, service = helpdesk
    code = (
        "import subprocess, sys; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'], "
        "stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False); "
        "print(child.pid)"
    )
    started = time.monotonic()
    done = commands.manage(settings, service, "shell", "--no-imports", "-c", code)
    try:
        assert time.monotonic() - started < 20  # its exit code came when it ended, not when the sleeper did
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(int(done.stdout.strip())).kill()
