"""Sync over the real RabbitMQ, driven by the real ``inv`` in temporary copies of the repo.

Everything runs in a RabbitMQ virtual host of this module only (``devstack-test-<uuid>``, given
to the copies as ``broker_url`` in their ``invoke.yaml``), deleted afterwards: a developer's
queues in the default virtual host are never touched.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import psutil
import pytest

from devstack.config import Settings
from devstack.venvs import venv_python
from devstack.workspace import copy_checkout
from tests.conftest import fresh_copy, inv_env, linking_checkout
from tests.test_dead_letters import private_vhost
from tests.test_integration import EXPECTED, REPO, counts, inv, ok, use_broker

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


EMPLOYEE_Q = "hdts.employee.sync"
#: A trigger that makes every write of helpdesk's employee mirror fail with OperationalError,
#: as a broken or locked database would (it names a table that does not exist).
BREAK_HELPDESK = (
    "CREATE TRIGGER broken BEFORE INSERT ON helpdesk_externalemployee "
    "BEGIN INSERT INTO no_such_table VALUES (1); END"
)


def on_broker(repo: Path, queue: str) -> str:
    """The name sync queue ``queue`` has on the broker for the checkout ``repo`` (its namespace)."""
    return Settings(root=repo).queue(queue)


def helpdesk_sql(repo: Path, sql: str) -> None:
    """Run one statement on helpdesk's SQLite file, closing the connection at once."""
    with contextlib.closing(sqlite3.connect(repo / "services" / "helpdesk" / "db.sqlite3")) as db:
        db.execute(sql)
        db.commit()


def start_inv(repo: Path, *args: str) -> subprocess.Popen[str]:
    """Start the real ``inv`` in the copy without waiting (as ``inv()`` runs it)."""
    env = inv_env()
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def draining(repo: Path, timeout: float) -> None:
    """Wait until the runner of the copy waits for its events (``manage.py wait_events`` runs)."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in runner_processes(repo):
            with contextlib.suppress(psutil.Error):
                if "wait_events" in proc.cmdline():
                    return
        assert time.monotonic() < deadline, f"the sync did not start waiting within {timeout:g} s"
        time.sleep(0.05)


def worker_pid(repo: Path, name: str, timeout: float) -> int:
    """Wait until the runner of the copy has started worker ``name``; return its PID."""
    path = repo / ".devstack" / "workers" / f"{name}.json"
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ValueError, OSError, KeyError):
            return int(json.loads(path.read_text(encoding="utf-8"))["pid"])
        assert time.monotonic() < deadline, f"{name} was not started within {timeout:g} s"
        time.sleep(0.05)


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
def vhost_url() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture(autouse=True)
def _copies_link_the_run_venvs(seeded_template: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' own copies of the repo link the run's virtualenvs too (see tests/conftest.py)."""
    monkeypatch.setattr(sys.modules[__name__], "copy_checkout", linking_checkout(seeded_template))


@pytest.fixture(scope="module")
def broker_repo(tmp_path_factory: pytest.TempPathFactory, vhost_url: str, seeded_template: Path) -> Path:
    copy = fresh_copy(seeded_template, tmp_path_factory.mktemp("broker") / "repo")
    use_broker(copy, vhost_url)
    connection = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:  # the queues an older checkout left: no dead-lettering; the first sync replaces them
        for queue in ("hdts.user.sync", EMPLOYEE_Q):
            connection.channel().queue_declare(queue=on_broker(copy, queue), durable=True)
    finally:
        connection.close()
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


def test_queues_without_dead_lettering_were_replaced(broker_repo: Path, vhost_url: str) -> None:
    vhost = vhost_url.rsplit("/", 1)[1]
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "arguments", "--formatter", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    held = {row["name"]: {k: v for k, _, v in row["arguments"]} for row in json.loads(listed.stdout)}
    for base in ("hdts.user.sync", EMPLOYEE_Q, "tts.role.sync", "tts.user_system_role.sync"):
        queue = on_broker(broker_repo, base)
        assert held[queue] == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{queue}.dead"}
        assert held[f"{queue}.dead"] == {}


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


def test_broker_down_keeps_events_pending_and_a_later_run_delivers(broker_repo: Path, vhost_url: str) -> None:
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
        use_broker(broker_repo, vhost_url)
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


def test_an_event_that_keeps_failing_is_dead_lettered_then_delivered_once_fixed(
    broker_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_MAX_RETRIES", "1")  # the workers give up after one retry (1 s)
    employees = counts(broker_repo)["auth"]["Employee"]
    extra = employees - EXPECTED["auth"]["Employee"]
    helpdesk_sql(broker_repo, BREAK_HELPDESK)
    try:
        ok(broker_repo, "seed.auth", "--auth-employees", str(extra + 2))
        began = time.monotonic()
        failed = inv(broker_repo, "sync", "--via", "broker", "--timeout", "60")
        took = time.monotonic() - began
    finally:
        helpdesk_sql(broker_repo, "DROP TRIGGER broken")
    assert failed.returncode == 5, failed.stderr
    queue = on_broker(broker_repo, EMPLOYEE_Q)
    assert f"2 event(s) of {queue} were dead-lettered by helpdesk's worker (rejected: " in failed.stderr
    assert (
        "OperationalError: no such table: main.no_such_table (still failing after 1 retries))"
        in failed.stderr
    )
    assert took < 30, f"the sync took {took:.1f} s to report the dead letters"
    assert runner_processes(broker_repo) == []

    status = json.loads(ok(broker_repo, "workers.status", "--json").stdout)
    dead = status["dead_letters"][EMPLOYEE_Q]
    assert dead["count"] == 2
    assert dead["reason"].startswith("rejected: OperationalError: no such table")
    shown = ok(broker_repo, "workers.status")
    assert f"2 message(s) of {queue} were dead-lettered to {queue}.dead" in shown.stdout + shown.stderr

    # The cause is gone. The sync runs for one more event (with nothing pending, the pipeline
    # skips it) and re-delivers the dead letters first.
    ok(broker_repo, "seed.auth", "--auth-employees", str(extra + 3))
    done = ok(broker_repo, "sync", "--via", "broker")
    assert "2 dead-lettered event(s) re-delivered" in done.stdout + done.stderr
    assert counts(broker_repo)["helpdesk"]["ExternalEmployee"] == employees + 3
    status = json.loads(ok(broker_repo, "workers.status", "--json").stdout)
    assert status["dead_letters"][EMPLOYEE_Q] == {"count": 0, "reason": ""}
    assert runner_processes(broker_repo) == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL does not exist on Windows")
def test_a_worker_killed_during_a_sync_is_reported_at_once(broker_repo: Path) -> None:
    employees = counts(broker_repo)["auth"]["Employee"]
    extra = employees - EXPECTED["auth"]["Employee"]
    helpdesk_sql(broker_repo, BREAK_HELPDESK)  # helpdesk retries its event: the sync keeps waiting
    try:
        ok(broker_repo, "seed.auth", "--auth-employees", str(extra + 1))
        sync = start_inv(broker_repo, "sync", "--via", "broker", "--timeout", "60")
        try:
            pid = worker_pid(broker_repo, "helpdesk-worker", timeout=120)  # after the pre-tasks
            draining(broker_repo, timeout=60)  # the worker consumes, fails, retries; the sync waits
            waiting = time.monotonic()
            time.sleep(1)
            psutil.Process(pid).kill()
            killed = time.monotonic()
            _, stderr = sync.communicate(timeout=120)
            ended = time.monotonic()
        finally:
            if sync.poll() is None:
                sync.kill()
                sync.communicate(timeout=30)
    finally:
        helpdesk_sql(broker_repo, "DROP TRIGGER broken")
    assert sync.returncode == 5, stderr
    assert f"helpdesk-worker (PID {pid}) exited (killed by SIGKILL) while the sync waited" in stderr
    assert "helpdesk-worker.log) ends with:" in stderr
    assert ended - killed < 15, f"the death was reported {ended - killed:.1f} s after the kill"
    assert ended - waiting < 30, f"the sync (--timeout 60) waited {ended - waiting:.1f} s in all"
    assert runner_processes(broker_repo) == []

    # Nothing was lost: the killed worker's event went back to its queue, for the next sync.
    ok(broker_repo, "seed.auth", "--auth-employees", str(extra + 2))
    ok(broker_repo, "sync", "--via", "broker")
    assert counts(broker_repo)["helpdesk"]["ExternalEmployee"] == employees + 2
    pending = json.loads(ok(broker_repo, "status", "--json").stdout)["services"]["auth"]["pending_events"]
    assert sum(pending.values()) == 0
