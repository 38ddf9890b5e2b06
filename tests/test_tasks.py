"""Task wiring: names, pre-tasks, help texts and exit codes, with Invoke's MockContext."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from invoke import Config, MockContext
from invoke.exceptions import Exit

from devstack import config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tasks() -> ModuleType:
    return load_tasks()


def load_tasks() -> ModuleType:
    """Load tasks.py afresh (Invoke's ``get_arguments`` consumes the help texts it reads)."""
    spec = importlib.util.spec_from_file_location("devstack_tasks", REPO / "tasks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["devstack_tasks"] = module
    spec.loader.exec_module(module)
    return module


def context(tmp_path: Path, **overrides: Any) -> MockContext:
    section = {**config.DEFAULTS, "root": str(tmp_path), **overrides}
    return MockContext(config=Config(overrides={"devstack": section}))


def test_task_names(tasks: ModuleType) -> None:
    names = set(tasks.ns.task_names)
    assert {
        "doctor",
        "check-rabbit",
        "install",
        "sync",
        "seed-all",
        "verify",
        "status",
        "reset-all",
        "migrate.auth",
        "migrate.workflow",
        "migrate.helpdesk",
        "seed.auth",
        "seed.workflow",
        "seed.helpdesk",
        "reset.auth",
        "reset.workflow",
        "reset.helpdesk",
    } <= names


def test_every_task_has_a_short_imperative_summary_and_help_on_every_flag(tasks: ModuleType) -> None:
    for name in tasks.ns.task_names:
        task = tasks.ns[name]
        first = (task.__doc__ or "").strip().splitlines()[0]
        assert first and len(first) <= 72, name
        for arg in task.get_arguments():
            assert arg.help and "default" in arg.help, f"{name} --{arg.name}"


def test_seed_workflow_needs_auth_seeded_and_synced(tasks: ModuleType) -> None:
    pre = [t.name for t in tasks.ns["seed.workflow"].pre]
    assert pre[0] == "install"
    assert pre.index("auth") < pre.index("sync")  # seed.auth (migrate.auth comes before it)
    assert tasks.ns["seed.auth"] in tasks.ns["seed.workflow"].pre
    assert tasks.ns["sync"] in tasks.ns["seed.workflow"].pre


def test_seed_flags_come_from_the_registry(tasks: ModuleType) -> None:
    def flags(name: str) -> set[str]:
        return {a.name for a in tasks.ns[name].get_arguments()}

    guards = {"repair", "stop_servers", "allow_remote"}
    assert flags("seed.helpdesk") == {"employees", "tickets", "seed", *guards}
    assert flags("seed.auth") == {"auth_employees", "seed", *guards}
    assert flags("seed.workflow") == {"seed", *guards}


@pytest.mark.parametrize(
    ("name", "kwargs", "code"),
    [
        ("seed.helpdesk", {"employees": "-1"}, 2),
        ("seed.helpdesk", {"tickets": "abc"}, 2),
        ("seed.auth", {"auth_employees": "10000"}, 2),
        ("seed-all", {"timeout": "nan"}, 2),
        ("seed-all", {"employees": "-1"}, 2),
        ("seed-all", {"tickets": "abc"}, 2),
        ("install", {"service": "billing"}, 2),
        ("check-rabbit", {"timeout": "soon"}, 2),
        ("sync", {"via": "pigeon"}, 2),
    ],
)
def test_bad_input_exits_with_a_code_and_writes_nothing(
    tasks: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    kwargs: dict[str, str],
    code: int,
) -> None:
    with pytest.raises(Exit) as caught:
        tasks.ns[name].body(context(tmp_path), **kwargs)
    assert caught.value.code == code
    err = capsys.readouterr().err
    assert err.startswith("ERROR ") and err.count("\n") == 1
    assert not any(tmp_path.rglob("*.sqlite3"))


def test_status_json_on_an_empty_checkout(
    tasks: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    for name in ("auth", "workflow", "helpdesk"):
        (tmp_path / "services" / name).mkdir(parents=True)
    tasks.ns["status"].body(context(tmp_path, broker_url="amqp://guest:secret@127.0.0.1:1//"), json=True)
    report = json.loads(capsys.readouterr().out)
    assert set(report["services"]) == {"auth", "workflow", "helpdesk"}
    assert report["services"]["auth"]["exists"] is False
    assert report["rabbitmq"]["answers"] is False
    assert "secret" not in json.dumps(report)


def test_count_and_duration_flags_are_checked_while_invoke_parses(tasks: ModuleType) -> None:
    from devstack.flags import Checked

    checked = {
        (name, arg.name)
        for name in ("seed.helpdesk", "seed.auth", "seed-all", "verify", "sync", "install", "check-rabbit")
        for arg in tasks.ns[name].get_arguments()
        if isinstance(arg.kind, type) and issubclass(arg.kind, Checked)
    }
    assert {
        ("seed.helpdesk", "employees"),
        ("seed.helpdesk", "tickets"),
        ("seed.helpdesk", "seed"),
        ("seed.auth", "auth_employees"),
        ("seed-all", "tickets"),
        ("seed-all", "auth_employees"),
        ("seed-all", "timeout"),
        ("seed-all", "sync"),
        ("verify", "tickets"),
        ("sync", "via"),
        ("install", "service"),
        ("check-rabbit", "timeout"),
    } <= checked


def test_guard_flags_reach_pre_tasks_through_config(tmp_path: Path) -> None:
    from devstack import cli

    assert cli.stack_of(context(tmp_path)).stop_servers is False
    assert cli.stack_of(context(tmp_path, stop_servers=True)).stop_servers is True
    assert cli.stack_of(context(tmp_path), stop_servers=True).stop_servers is True
    assert cli.stack_of(context(tmp_path, allow_remote=True)).settings.allow_remote is True


def test_a_task_and_its_pre_tasks_share_one_state_cache_until_a_task_bypasses_it(tmp_path: Path) -> None:
    from devstack import cli

    first = cli.guarded(lambda: cli.stack_of(context(tmp_path)), shares_states=True)
    second = cli.guarded(lambda: cli.stack_of(context(tmp_path, stop_servers=True)), shares_states=True)
    assert second.cache is first.cache  # migrate's pre-task read serves sync: one process per service
    assert cli.stack_of(context(tmp_path / "other")).cache is not first.cache  # another checkout
    cli.guarded(lambda: None)  # e.g. reset or snapshot.restore: databases changed behind the cache
    assert cli.stack_of(context(tmp_path)).cache is not first.cache


#: Flags whose object is the task's own: what a timeout waits for, what --yes confirms, what --json shows.
OWN_MEANING = {"timeout", "json", "yes"}


def test_a_flag_means_the_same_on_every_task_and_has_no_short_form() -> None:
    tasks = load_tasks()
    meaning: dict[str, tuple[str, str]] = {}
    for name in tasks.ns.task_names:
        for arg in tasks.ns[name].get_arguments():
            assert all(len(n) > 1 for n in arg.names), (name, arg.names)
            kind = getattr(arg.kind, "placeholder", arg.kind.__name__)
            help_text = arg.help.split(" (default")[0]
            seen = meaning.setdefault(arg.name, (kind, help_text))
            if arg.name not in OWN_MEANING:
                assert seen == (kind, help_text), f"--{arg.name} differs on {name}"


def test_every_value_flag_shows_its_placeholder(tasks: ModuleType) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "invoke", "--help", "seed-all"], cwd=REPO, capture_output=True, text=True
    )
    assert "--employees=N" in done.stdout and "--timeout=SECONDS" in done.stdout
    assert "--report=PATH" in done.stdout and "--sync=LOCAL|BROKER" in done.stdout
    assert " -e" not in done.stdout


def test_flag_values_reach_the_library_typed(tasks: ModuleType, tmp_path: Path, monkeypatch: Any) -> None:
    from devstack import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli, "seed", lambda c, service, given, *rest: seen.update(given))
    tasks.ns["seed.helpdesk"].body(context(tmp_path), employees=tasks.COUNTS["employees"]("12"))
    assert seen == {"employees": 12, "tickets": None, "seed": None}


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("seed-all", {"offline": True}), ("seed.helpdesk", {}), ("migrate.helpdesk", {}), ("sync", {})],
)
def test_writing_tasks_refuse_a_remote_database_before_connecting(
    tasks: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, kwargs: dict[str, Any]
) -> None:
    remote = {n: "" for n in ("auth", "workflow", "helpdesk")}
    remote["helpdesk"] = "postgres://u:p%40ss@/db?host=db.example.invalid"
    with pytest.raises(Exit) as caught:
        tasks.ns[name].body(context(tmp_path, databases=remote), **kwargs)
    assert caught.value.code == 3
    err = capsys.readouterr().err
    assert "may not be on this machine" in err and "p%40ss" not in err


def test_a_fault_of_the_machine_is_one_sentence_not_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    from devstack import cli

    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "services/helpdesk/db.sqlite3")

    with pytest.raises(Exit) as caught:
        cli.guarded(full)
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "services/helpdesk/db.sqlite3 cannot be written: the disk is full" in err
    assert "please report" not in err


def test_a_bug_keeps_its_masked_traceback_where_only_the_user_can_read_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import stat

    from devstack import cli

    def bug() -> None:
        raise RuntimeError("cannot reach amqp://user:Le@k/y@host//")

    with pytest.raises(Exit):
        cli.guarded(bug)
    err = capsys.readouterr().err
    assert "please report it" in err and "Le@k" not in err
    log = Path(err.split("the traceback is in ")[1].split(", please")[0])
    assert "Le@k" not in log.read_text(encoding="utf-8")
    if sys.platform != "win32":
        assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_dry_is_refused_by_every_writing_task_without_a_plan_mode(
    tasks: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tasks with a plan mode run it under --dry (tests/test_plan.py); the others refuse."""
    section = {**config.DEFAULTS, "root": str(tmp_path)}
    dry = MockContext(config=Config(overrides={"devstack": section, "run": {"dry": True}}))
    refusing = ("workers.start", "workers.purge", "snapshot.save", "snapshot.restore", "up")
    for name in refusing:
        with pytest.raises(Exit) as caught:
            tasks.ns[name].body(dry)
        assert caught.value.code == 2, name
    assert capsys.readouterr().err.count("has no plan mode and would still write") == len(refusing)
    assert not any(tmp_path.iterdir())


def test_each_namespace_runs_as_a_whole(tasks: ModuleType) -> None:
    assert tasks.ns.collections["migrate"].default == "all"
    assert tasks.ns.collections["seed"].default == "all"
    assert tasks.ns.collections["reset"].default == "all"
    assert tasks.ns["seed"].body is tasks.ns["seed-all"].body
    assert tasks.ns["reset"].body is tasks.ns["reset-all"].body


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite://:memory:", "sqlite:///:memory:?cache=x"]
)
def test_every_task_refuses_an_in_memory_database_before_anything_runs(
    tasks: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:
    from devstack import cli

    databases = {"auth": "", "workflow": "", "helpdesk": url}
    # doctor reports a bad setting as a failed check row instead (tests/test_doctor.py)
    bodies = {name: tasks.ns[name].body for name in tasks.ns.task_names if name not in ("manage", "doctor")}
    bodies["manage"] = lambda c: cli.manage_service(c, "helpdesk", ["check"], False)
    for name, body in bodies.items():
        with pytest.raises(Exit) as caught:
            body(context(tmp_path, databases=databases))
        assert caught.value.code == 2, name
        err = capsys.readouterr().err
        assert err.startswith("ERROR devstack.databases.helpdesk is an in-memory SQLite database"), name
    assert not any(tmp_path.iterdir())


def test_a_database_url_the_services_cannot_use_is_refused(
    tasks: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    databases = {"auth": "", "workflow": "", "helpdesk": "mysql://me:s3cret@127.0.0.1/helpdesk"}
    with pytest.raises(Exit) as caught:
        tasks.ns["status"].body(context(tmp_path, databases=databases))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "devstack.databases.helpdesk must be a sqlite:///path or postgres://… URL" in err
    assert "s3cret" not in err and "mysql://me:***@127.0.0.1/helpdesk" in err
