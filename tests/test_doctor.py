"""``inv doctor``: each check on its own, then the real ``inv doctor`` in copies of the repo with
each broken setup built for real (a bad key, a taken port, a missing database, a broken venv).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
from colorama import Fore
from invoke import Config

from devstack import config, doctor, registry, venvs, workers
from devstack.config import Settings
from devstack.console import Console
from devstack.doctor import Check
from devstack.lock import run_lock
from tests.conftest import fresh_copy, inv_env, seeded_copy
from tests.test_venvs import LOCK, fake_dist

# -- rows and output ---------------------------------------------------------------------------


def test_a_row_is_one_line_with_its_fix() -> None:
    failed = Check("port", False, "helpdesk 8000 is taken by PID 12 (python)", "set devstack.ports.helpdesk")
    assert failed.line() == (
        "FAIL port        helpdesk 8000 is taken by PID 12 (python): set devstack.ports.helpdesk"
    )
    passed = Check("python", True, "3.11.7 with venv and ensurepip", "never shown")
    assert passed.line() == "OK   python      3.11.7 with venv and ensurepip"
    assert len(passed.line()) <= 80
    assert (
        Check("uv", None, "not found", "pip install uv").line()
        == "WARN uv          not found: pip install uv"
    )
    assert failed.to_json() == {
        "name": "port",
        "status": "fail",
        "ok": False,
        "detail": "helpdesk 8000 is taken by PID 12 (python)",
        "fix": "set devstack.ports.helpdesk",
    }


def test_a_sentence_splits_into_what_is_wrong_and_what_to_do() -> None:
    assert doctor.split_sentence("RabbitMQ at h:1 does not answer (x); start it or fix broker_url.") == (
        "RabbitMQ at h:1 does not answer (x)",
        "start it or fix broker_url",
    )
    assert doctor.split_sentence("No fix here.", "do this") == ("No fix here", "do this")


def test_the_report_exits_1_only_for_a_failure_and_prints_json() -> None:
    passed, warned, failed = (
        Check("a", True, "fine"),
        Check("b", None, "hm", "x"),
        Check("c", False, "bad", "y"),
    )
    out = io.StringIO()
    assert doctor.report([passed, warned], stream=out) == 0
    assert "OK   a           fine" in out.getvalue() and "WARN b           hm: x" in out.getvalue()
    assert "0 failed, 1 warning(s), 1 ok" in out.getvalue()
    out = io.StringIO()
    assert doctor.report([passed, failed], as_json=True, stream=out) == doctor.FAILED == 1
    document = json.loads(out.getvalue())
    assert document["ok"] is False
    assert [c["status"] for c in document["checks"]] == ["ok", "fail"]


def test_the_status_is_coloured_only_when_colour_is_on() -> None:
    out = io.StringIO()
    Console(out, color=True).check("FAIL", "port", "taken")
    assert out.getvalue().startswith(Fore.RED) and "port        taken" in out.getvalue()
    out = io.StringIO()
    Console(out, color=False).check("OK", "port", "free")
    assert out.getvalue() == "OK   port        free\n"


def test_doctor_is_found_on_the_command_line_before_invoke_reads_it() -> None:
    assert doctor.requested(["inv", "doctor"])
    assert doctor.requested(["inv", "doctor", "--json"])
    assert not doctor.requested(["inv", "--help", "doctor"])
    assert not doctor.requested(["inv", "status"])
    assert not doctor.requested(["inv", "manage", "auth", "--", "doctor"])


def test_a_check_that_crashes_is_a_failed_row_and_the_others_still_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(root: Path) -> Check:
        raise RuntimeError("boom at postgres://u:secret@h/db")

    monkeypatch.setattr(doctor, "check_disk", broken)
    monkeypatch.setattr(doctor, "check_rabbit", lambda s: Check("rabbitmq", True, "stub"))
    rows = doctor.run_checks(settings, [Check("config", True, "defaults")])
    disk = [r for r in rows if r.name == "disk"]
    assert len(disk) == 1 and disk[0].ok is False
    assert "RuntimeError" in disk[0].detail and "secret" not in disk[0].detail
    names = [r.name for r in rows]
    assert names[:4] == ["python", "uv", "config", "rabbitmq"]
    assert names.index("port") < names.index("disk") < names.index("venv") < names.index("processes")


# -- Python, uv, disk --------------------------------------------------------------------------


def test_python_version_and_venv_support() -> None:
    assert doctor.check_python((3, 11, 7), "23.2.1", None) == Check(
        "python", True, "3.11.7 with venv and ensurepip (pip 23.2.1)"
    )
    old = doctor.check_python((3, 10, 12), "23.2.1", "/bin/uv")
    assert old.ok is False and "too old" in old.detail and "3.11" in old.fix
    bare = doctor.check_python((3, 11, 2), None, None)
    assert bare.ok is False and "sudo apt install python3-venv" in bare.fix
    with_uv = doctor.check_python((3, 11, 2), None, "/bin/uv")
    assert with_uv.ok is None and "uses uv" in with_uv.detail and "python3-venv" in with_uv.fix


def test_without_ensurepip_there_is_no_bundled_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(
        doctor.importlib.util, "find_spec", lambda name: None if name == "ensurepip" else real(name)
    )
    assert doctor.bundled_pip() is None


def test_uv_found_or_pip_is_the_fallback() -> None:
    assert doctor.check_uv("/bin/uv", "0.5.1") == Check("uv", True, "0.5.1; 'inv install' uses it")
    missing = doctor.check_uv(None)
    assert missing.ok is None and "falls back to pip" in missing.detail
    uv = venvs.find_uv()
    if uv:  # the runner depends on the uv package, so it is normally there
        assert doctor.uv_version(uv)[0].isdigit()


@pytest.mark.parametrize(
    ("free", "ok"), [(5 << 30, True), (800 << 20, None), (250 << 20, False)], ids=["5G", "800M", "250M"]
)
def test_disk_space_thresholds(tmp_path: Path, free: int, ok: bool | None) -> None:
    row = doctor.check_disk(tmp_path, free)
    assert row.ok is ok
    assert "GiB free on the checkout's disk" in row.detail
    assert doctor.check_disk(tmp_path).detail.endswith("free on the checkout's disk")


# -- configuration -----------------------------------------------------------------------------


def invoke_config(root: Path, text: str | None = None) -> Config:
    """The config Invoke builds for ``root``: defaults, ``invoke.yaml`` (``text``), environment."""
    if text is not None:
        (root / "invoke.yaml").write_text(text, encoding="utf-8")
    cfg = Config(project_location=str(root), defaults={"devstack": dict(config.DEFAULTS)})
    cfg.load_project()
    cfg.load_shell_env()
    return cfg


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.upper().startswith("INVOKE_DEVSTACK_")]:
        monkeypatch.delenv(name)
    for name in ("CELERY_BROKER_URL", "DJANGO_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.invoke.yaml of the developer


def config_rows(root: Path, text: str | None = None) -> tuple[list[Check], Settings]:
    cfg = invoke_config(root, text)
    return doctor.check_config(cfg.devstack, config.layers_of(cfg), root)


@pytest.mark.usefixtures("clean_env")
def test_a_bad_key_is_named_with_its_source_and_a_guess(tmp_path: Path) -> None:
    rows, settings = config_rows(tmp_path, "devstack:\n  prots: {helpdesk: 9000}\n")
    failed = [r for r in rows if r.ok is False]
    assert failed == [
        Check(
            "config",
            False,
            "The setting devstack.prots is unknown; did you mean devstack.ports (invoke.yaml)",
            "rename it in invoke.yaml",
        )
    ]
    assert settings.ports == {}  # the other checks go on with the defaults


@pytest.mark.usefixtures("clean_env")
def test_bad_values_are_named_and_the_good_ones_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_DEVSTACK_LOCK_TIMEOUT", "soon")
    monkeypatch.setenv("INVOKE_DEVSTACK_BROKER_ULR", "amqp://x")
    text = "devstack:\n  ports: {helpdesk: abc, auth: 9100, helpdsk: 1}\n  seed: {tickets: x, tickts: 5}\n"
    rows, settings = config_rows(tmp_path, text)
    failed = {r.detail: r.fix for r in rows if r.ok is False}
    expected = {
        "The setting devstack.lock_timeout must be a finite number of seconds, got 'soon' "
        "(INVOKE_DEVSTACK_LOCK_TIMEOUT)": "fix or unset INVOKE_DEVSTACK_LOCK_TIMEOUT",
        "devstack.ports.helpdesk must be a port number from 1 to 65535, got 'abc' (invoke.yaml)": (
            "fix it in invoke.yaml"
        ),
        "devstack.ports names the unknown service helpdsk; did you mean helpdesk (invoke.yaml)": (
            "rename it in invoke.yaml"
        ),
        "The setting devstack.seed.tickets must be a whole number, got 'x' (invoke.yaml)": (
            "fix it in invoke.yaml"
        ),
        "The setting devstack.seed.tickts is unknown; did you mean devstack.seed.tickets (invoke.yaml)": (
            "rename it in invoke.yaml"
        ),
        "INVOKE_DEVSTACK_BROKER_ULR is not a setting, so Invoke ignores it; did you mean "
        "INVOKE_DEVSTACK_BROKER_URL": "rename or unset INVOKE_DEVSTACK_BROKER_ULR",
    }
    assert failed == expected
    assert Check("config", True, "devstack.ports.auth = 9100 (invoke.yaml)") in rows
    assert settings.ports == {"auth": 9100} and settings.lock_timeout == 10.0


@pytest.mark.usefixtures("clean_env")
def test_where_each_value_comes_from_with_passwords_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVOKE_DEVSTACK_BROKER_URL", "amqp://me:s3cret@mq.example:5672/v")
    text = "devstack:\n  databases: {helpdesk: 'postgres://u:pw0rd@127.0.0.1/hd'}\n"
    rows, settings = config_rows(tmp_path, text)
    assert rows == [
        Check(
            "config",
            True,
            "devstack.broker_url = amqp://me:***@mq.example:5672/v (INVOKE_DEVSTACK_BROKER_URL)",
        ),
        Check("config", True, "devstack.databases.helpdesk = postgres://u:***@127.0.0.1/hd (invoke.yaml)"),
    ]
    assert settings.database_url("helpdesk") == "postgres://u:pw0rd@127.0.0.1/hd"


@pytest.mark.usefixtures("clean_env")
def test_defaults_and_the_services_broker_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config_rows(tmp_path)[0] == [Check("config", True, "every setting is the default")]
    monkeypatch.setenv("CELERY_BROKER_URL", "amqp://a:b@h//")
    monkeypatch.setenv("DJANGO_ENV", "production")
    rows, settings = config_rows(tmp_path)
    assert rows[0] == Check("config", True, "broker URL amqp://a:***@h// (CELERY_BROKER_URL)")
    assert rows[1].ok is None and "DJANGO_ENV says production" in rows[1].detail
    assert settings.broker_url == "amqp://a:b@h//"


def test_a_config_invoke_cannot_load_is_reported_with_what_needs_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = doctor.unreadable(
        tmp_path, [f"{tmp_path / 'invoke.yaml'} is not valid YAML at line 3; fix or remove it."], False
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL config      invoke.yaml is not valid YAML at line 3: fix or remove it" in out
    for name in ("python", "uv", "disk"):  # these need no configuration
        assert any(
            line[5:].startswith(f"{name} ") and not line.startswith("WARN") for line in out.splitlines()
        )
    assert "WARN venv        not checked until the configuration can be read" in out


# -- RabbitMQ ----------------------------------------------------------------------------------


def test_rabbitmq_that_does_not_answer(settings: Settings) -> None:
    row = doctor.check_rabbit(Settings(root=settings.root, broker_url="amqp://guest:guest@127.0.0.1:9//"), 1)
    assert row.ok is False
    assert row.detail.startswith("RabbitMQ at 127.0.0.1:9 does not answer")
    assert row.fix == "start it (see README, 'Start RabbitMQ') or fix broker_url"


def test_a_broker_url_that_does_not_parse(settings: Settings) -> None:
    row = doctor.check_rabbit(Settings(root=settings.root, broker_url="redis://u:pw@h/0"), 1)
    assert row.ok is False and "not an amqp:// URL" in row.detail and "pw" not in row.line()
    assert row.fix == "fix broker_url"


@pytest.mark.rabbitmq
def test_rabbitmq_that_answers(settings: Settings) -> None:
    row = doctor.check_rabbit(Settings(root=settings.root, broker_url="amqp://guest:guest@127.0.0.1:5672//"))
    assert row == Check(
        "rabbitmq", True, "amqp://guest:***@127.0.0.1:5672//: login as 'guest', virtual host '/'"
    )


# -- databases ---------------------------------------------------------------------------------

URL = "postgres://app:pw@127.0.0.1:5432/hd_dev"


def pg(error: str, **extra: Any) -> dict[str, Any]:
    return {"ok": False, "error": f'connection failed: connection to server at "127.0.0.1", {error}', **extra}


@pytest.mark.parametrize(
    ("report", "detail", "fix"),
    [
        (
            pg('port 5432 failed: FATAL:  database "hd_dev" does not exist',
               maintenance={"ok": True, "role": "app", "createdb": True, "superuser": False}),
            "helpdesk: database hd_dev does not exist on 127.0.0.1:5432 (role app may create it)",
            "createdb -h 127.0.0.1 -p 5432 -U app hd_dev, or point devstack.databases.helpdesk at an "
            "existing database",
        ),
        (
            pg('port 5432 failed: FATAL:  database "hd_dev" does not exist',
               maintenance={"ok": True, "role": "app", "createdb": False, "superuser": False}),
            "helpdesk: database hd_dev does not exist on 127.0.0.1:5432 (role app may not create databases)",
            "run 'createdb -O app hd_dev' as a role that may create databases (sudo -u postgres on Debian), "
            "or fix devstack.databases.helpdesk",
        ),
        (
            pg('port 5432 failed: FATAL:  password authentication failed for user "app"'),
            "helpdesk: PostgreSQL refused the password of role app (postgres://app:***@127.0.0.1:5432/hd_dev)",
            "put the right password in the URL, postgres://app:PASSWORD@127.0.0.1:5432/hd_dev, in "
            "devstack.databases.helpdesk",
        ),
        (
            pg('port 5432 failed: FATAL:  role "app" does not exist'),
            "helpdesk: PostgreSQL at 127.0.0.1:5432 has no role app",
            "create it as a superuser ('createuser --createdb app'), or name another role in "
            "devstack.databases.helpdesk",
        ),
        (
            pg("port 5432 failed: Connection refused\n\tIs the server running on that host?"),
            "helpdesk: PostgreSQL at 127.0.0.1:5432 does not answer",
            "start it, or fix the host and port in devstack.databases.helpdesk",
        ),
        (
            {"ok": False, "error": "failed to resolve host 'db.invalid': [Errno -2] Name not known"},
            "helpdesk: the host of postgres://app:***@127.0.0.1:5432/hd_dev is unknown",
            "fix the host in devstack.databases.helpdesk",
        ),
        (
            pg("port 5432 failed: FATAL:  sorry, too many clients already"),
            "helpdesk: cannot connect to postgres://app:***@127.0.0.1:5432/hd_dev (connection to server "
            'at "127.0.0.1", port 5432 failed: FATAL:  sorry, too many clients already)',
            "check devstack.databases.helpdesk",
        ),
    ],
    ids=["no-db", "no-db-no-right", "password-wrong", "no-role", "down", "host", "other"],
)  # fmt: skip
def test_each_postgres_failure_has_its_fix(report: dict[str, Any], detail: str, fix: str) -> None:
    row = doctor.postgres_check("helpdesk", URL, report, remote=False, allow_remote=False)
    assert (row.name, row.ok, row.detail, row.fix) == ("database", False, detail, fix)
    assert ":pw@" not in row.line()


def test_a_role_that_needs_a_password_gets_it_in_the_url() -> None:
    url = "postgres://app@127.0.0.1:5432/hd_dev"
    report = pg("port 5432 failed: fe_sendauth: no password supplied")
    row = doctor.postgres_check("helpdesk", url, report, remote=False, allow_remote=False)
    assert row == Check(
        "database",
        False,
        "helpdesk: PostgreSQL asks role app for a password and postgres://app@127.0.0.1:5432/hd_dev has none",
        "put it in the URL, postgres://app:PASSWORD@127.0.0.1:5432/hd_dev, in devstack.databases.helpdesk",
    )


def test_a_postgres_that_answers_and_where_it_is() -> None:
    report = {"ok": True, "role": "app", "database": "hd_dev", "server": "15.2 (Debian)"}
    local = doctor.postgres_check("helpdesk", URL, report, remote=False, allow_remote=False)
    assert local == Check(
        "database",
        True,
        "helpdesk: postgres://app:***@127.0.0.1:5432/hd_dev as role app (PostgreSQL 15.2)",
    )
    remote = doctor.postgres_check("helpdesk", URL, report, remote=True, allow_remote=False)
    assert remote.ok is None and "not on this machine; writing tasks refuse it" in remote.detail
    assert "--allow-remote" in remote.fix
    allowed = doctor.postgres_check("helpdesk", URL, report, remote=True, allow_remote=True)
    assert allowed.ok is True and allowed.detail.endswith(", not on this machine")
    unchecked = doctor.postgres_check(
        "helpdesk", URL, {"ok": False, "driver": False, "error": "helpdesk has no virtualenv"}, False, False
    )
    assert unchecked.ok is None and unchecked.fix == "run 'inv install --service helpdesk'"


def test_sqlite_and_other_databases(settings: Settings) -> None:
    helpdesk = registry.get("helpdesk")
    row = doctor.check_database(settings, helpdesk)
    assert row == Check(
        "database", True, "helpdesk: sqlite services/helpdesk/db.sqlite3 (inv seed-all creates it)"
    )
    helpdesk.default_sqlite(settings.root).touch()
    assert doctor.check_database(settings, helpdesk).detail == "helpdesk: sqlite services/helpdesk/db.sqlite3"
    elsewhere = Settings(root=settings.root, databases={"helpdesk": "sqlite:///no/such/folder/db.sqlite3"})
    row = doctor.check_database(elsewhere, helpdesk)
    assert row.ok is False and "does not exist" in row.detail and "devstack.databases.helpdesk" in row.fix
    mysql = Settings(root=settings.root, databases={"helpdesk": "mysql://u:pw@127.0.0.1/hd"})
    row = doctor.check_database(mysql, helpdesk)
    assert row.ok is None and "postgres" not in row.detail and "pw" not in row.detail


def test_postgres_is_probed_with_the_configured_url(settings: Settings) -> None:
    seen: list[str] = []

    def probe(settings: Settings, service: registry.Service, url: str) -> dict[str, Any]:
        seen.append(url)
        return {"ok": True, "role": "app", "server": "16.1"}

    remote = Settings(root=settings.root, databases={"auth": "postgres://app:pw@db.example.com/auth"})
    row = doctor.check_database(remote, registry.get("auth"), probe)
    assert seen == ["postgres://app:pw@db.example.com/auth"]
    assert row.ok is None and "postgres://app:***@db.example.com/auth as role app" in row.detail


def test_the_probe_runs_in_the_services_virtualenv(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Here the 'virtualenv' is the runner's Python, which has no psycopg: the report says so."""
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(
        doctor.importlib.util, "find_spec", lambda name: None if name == "psycopg" else real(name)
    )
    python = venvs.venv_python(settings.venv_dir(registry.get("auth")))
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    report = doctor.run_pgprobe(settings, registry.get("auth"), "postgres://u:pw@127.0.0.1/x")
    if importlib.util.find_spec("psycopg") is None:
        assert report["driver"] is False and report["error"].startswith("psycopg is not installed")
    row = doctor.postgres_check("auth", "postgres://u:pw@127.0.0.1/x", report, False, False)
    assert "pw" not in row.line()


def test_the_probe_without_a_virtualenv_says_so(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    real = doctor.importlib.util.find_spec
    monkeypatch.setattr(
        doctor.importlib.util, "find_spec", lambda name: None if name == "psycopg" else real(name)
    )
    report = doctor.run_pgprobe(settings, registry.get("auth"), "postgres://u@127.0.0.1/x")
    assert report == {"ok": False, "driver": False, "error": "auth has no virtualenv"}


# -- ports -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening() -> Iterator[int]:
    """A port this test process listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_ports_free_taken_or_shared(settings: Settings, listening: int) -> None:
    free = free_port()
    chosen = Settings(root=settings.root, ports={"helpdesk": listening, "workflow": free, "auth": free})
    rows = {r.detail.split(" ")[0]: r for r in doctor.check_ports(chosen, {})}
    assert rows["auth"] == Check("port", True, f"auth {free} is free")
    assert rows["workflow"] == Check(
        "port", False, f"workflow {free} is auth's port too", "set devstack.ports.workflow"
    )
    taken = rows["helpdesk"]
    assert taken.ok is False and taken.detail.startswith(f"helpdesk {listening} is taken by ")
    assert taken.fix == "stop it, or set devstack.ports.helpdesk"
    if sys.platform.startswith("linux"):  # other systems may hide who holds a port from its user
        assert f"PID {os.getpid()}" in taken.detail


def test_a_port_of_the_runners_own_server_is_fine(settings: Settings, listening: int) -> None:
    chosen = Settings(root=settings.root, ports={"helpdesk": listening})
    rows = doctor.check_ports(chosen, {"helpdesk-server": psutil.Process()})
    assert (
        Check("port", True, f"helpdesk {listening}: the runner's helpdesk-server (PID {os.getpid()})") in rows
    )


# -- virtualenvs -------------------------------------------------------------------------------


@pytest.fixture
def built(settings: Settings) -> Path:
    """A helpdesk virtualenv as 'inv install' leaves it: the lock's packages, a stamp with its snapshot."""
    folder = registry.get("helpdesk").folder(settings.root)
    requirements = folder / "requirements.txt"
    requirements.write_text("Django==5.2.19\ndj-database-url==3.1.2\nsix==1.17.0\n", encoding="utf-8")
    venvs.lock_path(requirements).write_text(
        LOCK.replace("services/x", "services/helpdesk"), encoding="utf-8"
    )
    venv = settings.venv_dir(registry.get("helpdesk"))
    site = venvs.site_packages(venv)[0]
    fake_dist(site, "Django", "5.2.19", ["django/__init__.py"])
    fake_dist(site, "six", "1.17.0", ["six.py"])
    fake_dist(site, "dj-database-url", "3.1.2", ["dj_database_url/__init__.py"])
    fake_dist(site, "asgiref", "3.13.0", ["asgiref/__init__.py"])
    python = venvs.venv_python(venv)
    python.parent.mkdir(parents=True)
    python.touch()
    record = {**venvs.stamp_for(requirements), "installed": venvs.snapshot(venvs.installed(venv))}
    (venv / venvs.STAMP).write_text(json.dumps(record), encoding="utf-8")
    return venv


def test_a_current_venv_passes(settings: Settings, built: Path) -> None:
    row = doctor.check_venv(settings, registry.get("helpdesk"))
    assert row == Check("venv", True, "helpdesk: services/helpdesk/.venv matches requirements.lock")


def test_a_venv_with_a_deleted_package_is_flagged(settings: Settings, built: Path) -> None:
    shutil.rmtree(venvs.site_packages(built)[0] / "django")
    row = doctor.check_venv(settings, registry.get("helpdesk"))
    assert row == Check(
        "venv",
        False,
        "helpdesk: services/helpdesk/.venv differs from requirements.lock (broken django)",
        "run 'inv install --service helpdesk'",
    )


def test_a_venv_of_another_python_is_flagged(settings: Settings, built: Path) -> None:
    record = json.loads((built / venvs.STAMP).read_text(encoding="utf-8"))
    record["python"] = "/usr/bin/python3.12 3.12.1"
    (built / venvs.STAMP).write_text(json.dumps(record), encoding="utf-8")
    (built / "pyvenv.cfg").write_text("version = 3.12.1\n", encoding="utf-8")
    row = doctor.check_venv(settings, registry.get("helpdesk"))
    assert row.ok is False and "was built with Python /usr/bin/python3.12 3.12.1, not " in row.detail
    if sys.version_info[:2] != (3, 12):
        assert "is a Python 3.12 virtualenv" in row.detail


def test_a_missing_venv_and_a_stale_lock(settings: Settings, built: Path) -> None:
    requirements = built.parent / "requirements.txt"
    requirements.write_text(
        "Django==5.2.19\ndj-database-url==3.1.2\nsix==1.17.0\nidna==3.10\n", encoding="utf-8"
    )
    row = doctor.check_venv(settings, registry.get("helpdesk"))
    assert row.ok is False and "idna==3.10 is not in requirements.lock" in row.detail
    assert row.fix.startswith("regenerate it: uv pip compile")
    row = doctor.check_venv(settings, registry.get("auth"))
    assert row == Check(
        "venv", False, "auth: services/auth/requirements.txt is missing", "restore it from git"
    )
    (registry.get("auth").folder(settings.root) / "requirements.txt").write_text("six\n", encoding="utf-8")
    row = doctor.check_venv(settings, registry.get("auth"))
    assert row == Check("venv", False, "auth: no virtualenv at services/auth/.venv", "run 'inv install'")


# -- leftover workers and servers --------------------------------------------------------------


@pytest.fixture
def spawn() -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def run(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd)
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.kill()
        proc.wait()


def test_stale_pid_files_are_reported_not_removed(settings: Settings) -> None:
    relay = workers.relay()
    path = workers.pid_file(settings, relay)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": 2**22 + 7, "created": 1.0}), encoding="utf-8")
    alive, stale = doctor.tracked_processes(settings)
    assert alive == {} and stale == [relay]
    rows = doctor.check_processes(settings, alive, stale)
    assert rows == [
        Check(
            "processes",
            None,
            "auth-relay's PID file names a process that is gone",
            "'inv down' (or 'inv status') drops it",
        )
    ]
    assert path.exists()


def test_processes_the_runner_did_not_start_are_flagged(settings: Settings, spawn: Any) -> None:
    helpdesk = registry.get("helpdesk").folder(settings.root)
    (helpdesk / "manage.py").write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    server = spawn(["manage.py", "runserver", "127.0.0.1:1"], helpdesk)
    worker = spawn(
        ["-c", "import time; time.sleep(60)", "-m", "celery", "worker"],
        registry.get("workflow").folder(settings.root),
    )
    elsewhere = spawn(["-c", "import time; time.sleep(60)", "celery", "worker"], settings.root)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(doctor.strays(settings)) < 2:
        time.sleep(0.05)
    rows = doctor.check_processes(settings, {}, [])
    failed = {r.detail.split(" ")[2]: r for r in rows if r.ok is False}
    assert set(failed) == {str(server.pid), str(worker.pid)}  # not the one outside the services
    assert failed[str(server.pid)].detail.endswith(
        "runs helpdesk's manage.py runserver, not started by the runner"
    )
    assert failed[str(worker.pid)].detail.startswith("workflow: PID")
    assert "is a Celery worker of workflow" in failed[str(worker.pid)].detail
    assert failed[str(worker.pid)].fix.endswith("it takes this checkout's sync events off the broker")
    assert failed[str(server.pid)].fix == (
        "stop it ('inv down' does not know it); writing tasks refuse while it runs, "
        "or stop it with --stop-servers"
    )
    assert elsewhere.poll() is None


def test_the_runners_own_processes_are_not_leftovers(settings: Settings, spawn: Any) -> None:
    helpdesk = registry.get("helpdesk").folder(settings.root)
    (helpdesk / "manage.py").write_text("import time\ntime.sleep(60)\n", encoding="utf-8")
    server = spawn(["manage.py", "runserver", "127.0.0.1:1"], helpdesk)
    proc = psutil.Process(server.pid)
    each = doctor.servers.server(settings, registry.get("helpdesk"))
    path = workers.pid_file(settings, each)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": proc.pid, "created": proc.create_time()}), encoding="utf-8")
    alive, stale = doctor.tracked_processes(settings)
    assert alive == {"helpdesk-server": proc} and stale == []
    rows = doctor.check_processes(settings, alive, stale)
    assert rows == [
        Check("processes", True, f"the runner's helpdesk-server (PID {proc.pid}) run ('inv down' stops them)")
    ]


# -- the real inv doctor in copies of the repo -------------------------------------------------

POSTGRES_ENV = "DEVSTACK_TEST_POSTGRES"


def run_doctor(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "doctor", *args],
        cwd=repo,
        env={**inv_env(), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def lines(done: subprocess.CompletedProcess[str], status: str) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.startswith(status)]


def write_config(
    repo: Path, text: str = "", broker: str = "amqp://guest:guest@127.0.0.1:9//", **ports: int
) -> None:
    """The copy's invoke.yaml: a broker, free dev server ports (others' stacks may hold 8000...), ``text``."""
    chosen = {name: ports.get(name) or free_port() for name in registry.NAMES}
    ports_text = "".join(f"\n    {name}: {port}" for name, port in chosen.items())
    (repo / "invoke.yaml").write_text(
        f"devstack:\n  broker_url: {broker}\n  ports:{ports_text}\n{text}", encoding="utf-8"
    )


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` (links not followed) with its size and modification time."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            info = path.lstat()
            found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.mark.integration
@pytest.mark.rabbitmq
def test_a_healthy_stack_passes_and_doctor_writes_nothing(tmp_path: Path, seeded_template: Path) -> None:
    repo = seeded_copy(seeded_template, tmp_path / "repo")
    write_config(repo, broker="amqp://guest:guest@127.0.0.1:5672//")  # doctor only probes the broker
    settings = Settings(root=repo)
    with run_lock(settings):  # another run holds the lock: doctor needs none
        before = tree(repo)
        done = run_doctor(repo, PYTHONDONTWRITEBYTECODE="1")
        assert tree(repo) == before, "inv doctor wrote to the checkout"
    assert done.returncode == 0, done.stdout + done.stderr
    assert not lines(done, "FAIL")
    for name in ("python", "uv", "config", "rabbitmq", "database", "port", "disk", "venv", "processes"):
        assert any(line[5:].startswith(f"{name} ") for line in done.stdout.splitlines()), name
    assert "OK   venv        helpdesk: services/helpdesk/.venv matches requirements.lock" in done.stdout
    assert "OK   database    helpdesk: sqlite services/helpdesk/db.sqlite3\n" in done.stdout
    document = json.loads(run_doctor(repo, "--json").stdout)
    assert document["ok"] is True and {c["name"] for c in document["checks"]} >= {"python", "venv"}


@pytest.mark.integration
def test_a_bad_key_fails_with_its_source_and_a_guess(tmp_path: Path, seeded_template: Path) -> None:
    repo = fresh_copy(seeded_template, tmp_path / "repo")
    write_config(repo, "  prots: {helpdesk: 9000}\n")
    done = run_doctor(repo, INVOKE_DEVSTACK_LOCK_TIMOUT="3")
    assert done.returncode == 1
    assert (
        "FAIL config      The setting devstack.prots is unknown; did you mean devstack.ports (invoke.yaml): "
        "rename it in invoke.yaml" in done.stdout
    )
    assert (
        "did you mean INVOKE_DEVSTACK_LOCK_TIMEOUT: rename or unset INVOKE_DEVSTACK_LOCK_TIMOUT"
        in done.stdout
    )
    assert (
        "OK   venv        auth: services/auth/.venv matches requirements.lock" in done.stdout
    )  # the rest ran
    assert "Traceback" not in done.stdout + done.stderr
    status = subprocess.run(
        [sys.executable, "-m", "invoke", "status"],
        cwd=repo,
        env=inv_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 2 and "devstack.prots is unknown" in status.stderr  # other tasks still refuse


@pytest.mark.integration
def test_a_config_file_invoke_cannot_load_is_still_a_row(tmp_path: Path, seeded_template: Path) -> None:
    repo = fresh_copy(seeded_template, tmp_path / "repo")
    (repo / "invoke.yaml").write_text("devstack:\n  lock_timeout: [\n", encoding="utf-8")
    done = run_doctor(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL config      invoke.yaml is not valid YAML at line 3: fix or remove it" in done.stdout
    assert lines(done, "OK   python") and lines(done, "OK   disk")
    assert json.loads(run_doctor(repo, "--json").stdout)["ok"] is False


@pytest.mark.integration
def test_a_taken_dev_server_port_fails_naming_its_holder(
    tmp_path: Path, seeded_template: Path, listening: int
) -> None:
    repo = fresh_copy(seeded_template, tmp_path / "repo")
    write_config(repo, helpdesk=listening)
    done = run_doctor(repo)
    assert done.returncode == 1
    (taken,) = lines(done, "FAIL port")
    assert taken.startswith(f"FAIL port        helpdesk {listening} is taken by ")
    assert taken.endswith(": stop it, or set devstack.ports.helpdesk")
    if sys.platform.startswith("linux"):
        assert f"PID {os.getpid()}" in taken


@pytest.mark.integration
@pytest.mark.postgres
def test_a_missing_postgres_database_fails_with_createdb(
    tmp_path: Path, seeded_template: Path, postgres_server: str
) -> None:
    repo = fresh_copy(seeded_template, tmp_path / "repo")
    name = f"devstack_doctor_missing_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(postgres_server)
    missing = urlunsplit(parts._replace(path=f"/{name}"))
    write_config(repo, f"  databases:\n    helpdesk: '{missing}'\n    auth: '{postgres_server}'\n")
    done = run_doctor(repo)
    assert done.returncode == 1, done.stdout + done.stderr
    (row,) = lines(done, "FAIL database")
    assert f"helpdesk: database {name} does not exist on {parts.hostname}" in row
    assert f"createdb -h {parts.hostname}" in row and row.split(",")[0].endswith(name)
    assert "OK   database    auth: " in done.stdout and " as role " in done.stdout
    if parts.password:
        assert parts.password not in done.stdout + done.stderr


@pytest.mark.integration
@pytest.mark.slow
def test_a_venv_with_a_deleted_package_fails(tmp_path: Path, seeded_template: Path) -> None:
    repo = fresh_copy(seeded_template, tmp_path / "repo")
    write_config(repo)
    own = repo / "services" / "helpdesk" / ".venv"
    own.unlink()  # the template's, linked: this copy gets a virtualenv of its own to break
    shutil.copytree(seeded_template / "services" / "helpdesk" / ".venv", own, symlinks=True)
    assert "OK   venv        helpdesk: " in run_doctor(repo).stdout
    site = venvs.site_packages(own)[0]
    shutil.rmtree(site / "sqlparse")
    done = run_doctor(repo)
    assert done.returncode == 1
    assert (
        "FAIL venv        helpdesk: services/helpdesk/.venv differs from requirements.lock "
        "(broken sqlparse): run 'inv install --service helpdesk'" in done.stdout
    )
    assert (venvs.site_packages(seeded_template / "services" / "helpdesk" / ".venv")[0] / "sqlparse").is_dir()
