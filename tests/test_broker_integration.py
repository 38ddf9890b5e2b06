"""Sync over the real RabbitMQ, driven by the real ``inv`` in temporary copies of the repo."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pika
import psutil
import pytest

from devstack import registry
from devstack.venvs import venv_python
from devstack.workspace import copy_checkout
from tests.test_integration import EXPECTED, REPO, counts, inv, ok

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

#: Mirror tables compared between transports (columns that differ by time or run excluded).
MIRRORS = {
    "workflow": {
        "workflows_role": "role_id, name, system",
        "workflows_roleuser": "role_id, user_id, user_full_name, is_active, settings",
    },
    "helpdesk": {
        "helpdesk_hdtsuser": "hdts_user_id, email, first_name, last_name, company_id, role, status",
        "helpdesk_externalemployee": "external_employee_id, email, first_name, last_name, company_id, status",
    },
}


def purge_queues() -> None:
    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", 5672))
    try:
        for queue in registry.QUEUE_NAMES:
            channel = connection.channel()
            try:
                channel.queue_purge(queue)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                pass  # the queue does not exist yet
    finally:
        connection.close()


def rows(repo: Path, service: str) -> dict[str, list[tuple[object, ...]]]:
    database = repo / "services" / service / "db.sqlite3"
    with sqlite3.connect(database) as db:
        return {
            table: db.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2").fetchall()
            for table, columns in MIRRORS[service].items()
        }


def runner_processes(repo: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if str(repo) in " ".join(proc.info["cmdline"] or []) or str(repo) in proc.cwd():
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def broker_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    purge_queues()
    copy = copy_checkout(REPO, tmp_path_factory.mktemp("broker") / "repo")
    ok(copy, "seed-all", "--sync", "broker", "--report", "first.json")
    return copy


def test_seed_all_over_the_broker_reaches_the_expected_state(broker_repo: Path) -> None:
    first = json.loads((broker_repo / "first.json").read_text(encoding="utf-8"))
    sync = next(s for s in first["steps"] if s["step"] == "sync")
    assert sync["status"] == "ran" and "relayed with confirms" in sync["detail"]
    assert counts(broker_repo) == EXPECTED
    ok(broker_repo, "verify")
    assert runner_processes(broker_repo) == []
    assert not list((broker_repo / ".devstack" / "workers").glob("*.json"))


def test_second_broker_run_changes_nothing(broker_repo: Path) -> None:
    ok(broker_repo, "seed-all", "--sync", "broker", "--report", "second.json")
    second = json.loads((broker_repo / "second.json").read_text(encoding="utf-8"))
    assert second["changed"] is False


def test_local_and_broker_transports_give_identical_rows(
    broker_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    local = copy_checkout(REPO, tmp_path_factory.mktemp("local") / "repo")
    ok(local, "seed-all", "--sync", "local")
    for service in MIRRORS:
        assert rows(local, service) == rows(broker_repo, service)


def test_broker_down_keeps_events_pending_and_a_later_run_delivers(broker_repo: Path) -> None:
    ok(broker_repo, "seed.auth", "--auth-employees", "5")
    pending = json.loads(ok(broker_repo, "status", "--json").stdout)["services"]["auth"]["pending_events"]
    assert sum(pending.values()) == 5
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    (broker_repo / "invoke.yaml").write_text(
        f"devstack:\n  broker_url: amqp://guest:guest@127.0.0.1:{closed}//\n", encoding="utf-8"
    )
    try:
        done = inv(broker_repo, "sync", "--via", "broker")
    finally:
        (broker_repo / "invoke.yaml").unlink()
    assert done.returncode == 4
    assert "does not answer" in done.stderr
    status = json.loads(ok(broker_repo, "status", "--json").stdout)["services"]
    assert sum(status["auth"]["pending_events"].values()) == 5
    ok(broker_repo, "sync", "--via", "broker")
    after = counts(broker_repo)
    assert after["helpdesk"]["ExternalEmployee"] == 13
    assert after["auth"]["Employee"] == 13
    ok(broker_repo, "verify")


def test_live_sync_with_workers_started(broker_repo: Path) -> None:
    ok(broker_repo, "workers.start")
    try:
        status = json.loads(ok(broker_repo, "workers.status", "--json").stdout)
        assert all(w["pid"] for w in status["workers"].values())
        create_user = (
            "from identity.models import Role, System, User, UserSystemRole\n"
            "hdts = System.objects.get(slug='hdts')\n"
            "user = User.objects.create_user(email='live.user@example.com', username='live.user',"
            " first_name='Live', last_name='User', company_id='MA0999', department='IT Department',"
            " status='Approved')\n"
            "UserSystemRole.objects.create(user=user, system=hdts,"
            " role=Role.objects.get(system=hdts, name='Ticket Coordinator'))\n"
        )
        auth = broker_repo / "services" / "auth"
        subprocess.run(
            [str(venv_python(auth / ".venv")), "manage.py", "shell", "-c", create_user],
            cwd=auth, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        database = broker_repo / "services" / "helpdesk" / "db.sqlite3"
        while True:
            with sqlite3.connect(database) as db:
                found = db.execute(
                    "SELECT count(*) FROM helpdesk_hdtsuser WHERE email = 'live.user@example.com'"
                ).fetchone()[0]
            if found:
                break
            assert time.monotonic() < deadline, "the new user did not reach helpdesk within 10 s"
            time.sleep(0.05)
    finally:
        ok(broker_repo, "workers.stop")
    assert runner_processes(broker_repo) == []
