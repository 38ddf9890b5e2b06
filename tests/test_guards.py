from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from devstack import guards, holders, registry
from devstack.config import Settings
from devstack.errors import GuardError, UsageError
from tests import test_holders

database = test_holders.database
holder = test_holders.holder
runserver = test_holders.runserver


def test_refuses_to_write_naming_the_pid(
    settings: Settings, database: Path, holder: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(GuardError, match=rf"PID {holder.pid} .*--stop-servers") as caught:
        guards.check_writable(settings, registry.get("helpdesk"))
    assert caught.value.code == 3
    guards.check_writable(settings, registry.get("auth"))  # another service is not held
    guards.check_writable(settings, registry.get("helpdesk"), exclude=[holder.pid])  # the runner's own


def test_stop_servers_ends_them_and_then_allows_the_write(
    settings: Settings, database: Path, runserver: subprocess.Popen[bytes]
) -> None:
    said: list[str] = []
    guards.check_writable(settings, registry.get("helpdesk"), stop_servers=True, report=said.append)
    assert runserver.wait(timeout=10) is not None
    assert said and str(runserver.pid) in said[0]


def test_stop_returns_only_the_holders_still_alive(
    settings: Settings, database: Path, holder: subprocess.Popen[bytes]
) -> None:
    found = holders.find_holders(database, database.parent)
    gone = holders.Holder(999_999_999, "gone", "has db.sqlite3 open")
    assert guards.stop([*found, gone], grace=5) == []
    assert holder.wait(timeout=10) is not None


def test_remote_and_production_databases_are_refused(settings: Settings) -> None:
    auth = registry.get("auth")
    remote = replace(settings, databases={"auth": "postgres://u:secret@db.example.com/auth"})
    with pytest.raises(GuardError) as caught:
        guards.check_target(remote, auth, {})
    assert "secret" not in str(caught.value) and "--allow-remote" in str(caught.value)
    with pytest.raises(GuardError, match="production"):
        guards.check_target(settings, auth, {"DJANGO_ENV": "production"})
    guards.check_target(replace(remote, allow_remote=True), auth, {"DJANGO_ENV": "production"})


@pytest.mark.parametrize("value", ["production\r", " Production ", "prod\n"])
def test_production_is_recognised_however_it_is_written(settings: Settings, value: str) -> None:
    with pytest.raises(GuardError, match="production"):
        guards.check_target(settings, registry.get("helpdesk"), {"DJANGO_ENV": value})


def test_a_malformed_database_url_is_one_sentence_and_keeps_the_password(settings: Settings) -> None:
    broken = replace(settings, databases={"auth": "postgres://u:S3cret@[::1/auth"})
    with pytest.raises(UsageError) as caught:
        guards.check_target(broken, registry.get("auth"), {})
    assert "malformed" in str(caught.value) and "S3cret" not in str(caught.value)
