"""Run real workers against RabbitMQ: delivery, duplicates, a killed worker, two workers, dead letters."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from config.celery_app import app
from kombu import Connection, Queue
from kombu.message import Message

from .broker import Broker, Workers, count, query, wait_events
from .conftest import employee_payload, envelope, user_payload

pytestmark = pytest.mark.rabbitmq

USER_Q = "hdts.user.sync"
EMP_Q = "hdts.employee.sync"


def employees(first: int, last: int) -> list[dict[str, Any]]:
    """Return create events for employees first..last."""
    return [envelope(EMP_Q, "create", employee_payload(number)) for number in range(first, last + 1)]


def wait_for_rows(database: Path, table: str, at_least: int, timeout: float = 60) -> int:
    """Poll the SQLite file until the table has at least that many rows; return the count."""
    deadline = time.monotonic() + timeout
    while (found := count(database, table)) < at_least:
        assert time.monotonic() < deadline, f"{table} has {found} rows, expected {at_least}"
        time.sleep(0.005)
    return found


def test_worker_applies_events_and_ignores_a_duplicate(
    broker: Broker, workers: Workers, worker_db: Path
) -> None:
    user_queue, employee_queue = broker.queue(USER_Q), broker.queue(EMP_Q)
    users = [envelope(USER_Q, "create", user_payload(number)) for number in range(1, 6)]
    staff = employees(1, 20)
    broker.publish(USER_Q, users)
    broker.publish(EMP_Q, staff)
    workers.start(user_queue, employee_queue)
    report = wait_events(worker_db, [event["id"] for event in users + staff])
    assert report["processed"] == 25 and report["missing"] == 0
    assert count(worker_db, "helpdesk_hdtsuser") == 5
    assert count(worker_db, "helpdesk_externalemployee") == 20

    duplicate = {**staff[0], "payload": employee_payload(1, first_name="Changed")}
    sentinel = employees(21, 21)
    broker.publish(EMP_Q, [duplicate, *sentinel])  # one queue, one worker: handled in order
    wait_events(worker_db, [sentinel[0]["id"]])
    names = query(
        worker_db, "SELECT first_name FROM helpdesk_externalemployee WHERE external_employee_id = 1"
    )
    assert names == [("Ben",)]
    assert count(worker_db, "helpdesk_processedevent") == 26


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL does not exist on Windows")
def test_killed_worker_loses_nothing_and_applies_each_event_once(
    broker: Broker, workers: Workers, worker_db: Path
) -> None:
    queue = broker.queue(EMP_Q)
    events = employees(1, 2000)
    broker.publish(EMP_Q, events)
    first = workers.start(queue)
    done_before_kill = wait_for_rows(worker_db, "helpdesk_processedevent", 50)
    workers.kill(first)  # it held prefetched messages and a batch not yet committed
    assert count(worker_db, "helpdesk_processedevent") < len(events), "the worker finished before the kill"
    assert done_before_kill >= 50
    workers.start(queue)
    report = wait_events(worker_db, [event["id"] for event in events])
    assert report["processed"] == len(events)
    assert count(worker_db, "helpdesk_processedevent") == len(events)
    assert count(worker_db, "helpdesk_externalemployee") == len(events)
    assert query(worker_db, "SELECT COUNT(DISTINCT external_employee_id) FROM helpdesk_externalemployee") == [
        (len(events),)
    ]


def test_two_workers_on_one_queue_apply_each_event_once(
    broker: Broker, workers: Workers, worker_db: Path
) -> None:
    queue = broker.queue(EMP_Q)
    events = employees(1, 300)
    broker.publish(EMP_Q, events + events)  # every event delivered twice
    workers.start(queue)
    workers.start(queue)
    report = wait_events(worker_db, [event["id"] for event in events])
    assert report["processed"] == 300
    # Both copies of the last events may still be in flight: let the queue drain first.
    deadline = time.monotonic() + 60
    while broker.connection.default_channel.queue_declare(queue, passive=True).message_count:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert count(worker_db, "helpdesk_processedevent") == 300
    assert count(worker_db, "helpdesk_externalemployee") == 300


def rabbitmqctl(*args: str) -> None:
    """Run one rabbitmqctl command (quietly); fail the test with its output."""
    command = ["rabbitmqctl", "-q", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {done.stdout}{done.stderr}"


@pytest.fixture
def private_vhost(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Give the test a RabbitMQ virtual host of its own, so it uses the real queue names safely.

    Workers and ``wait_events`` started by the test get its URL through CELERY_BROKER_URL; the
    virtual host, with everything in it, is deleted afterwards.
    """
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot create a private virtual host")
    name = f"devstack-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        url = Connection(app.conf.broker_url).clone(virtual_host=name).as_uri(include_password=True)
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        yield url
    finally:
        rabbitmqctl("delete_vhost", name)


def publish(url: str, queue: str, events: list[dict[str, Any]]) -> None:
    """Send events as the relay does: Celery task messages routed to the queue of their name."""
    with Connection(url) as connection:
        for event in events:
            app.send_task(queue, args=[event], task_id=event["id"], connection=connection)


def take_dead_letters(url: str, queue: str, expected: int, timeout: float = 60) -> list[Message]:
    """Wait until ``<queue>.dead`` holds ``expected`` messages, then take them all."""
    dead = Queue(f"{queue}.dead", durable=True)
    deadline = time.monotonic() + timeout
    with Connection(url) as connection:
        bound = dead(connection.default_channel)
        while (found := bound.queue_declare(passive=True).message_count) < expected:
            assert time.monotonic() < deadline, f"{dead.name} holds {found} messages, expected {expected}"
            time.sleep(0.05)
        messages = []
        while (message := bound.get(no_ack=True)) is not None:
            messages.append(message)
    return messages


def test_failing_and_malformed_events_are_dead_lettered_with_their_reason(
    private_vhost: str, workers: Workers, worker_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNC_MAX_RETRIES", "1")
    with sqlite3.connect(worker_db) as db:  # every employee write fails, as with a broken database
        db.execute(
            "CREATE TRIGGER broken BEFORE INSERT ON helpdesk_externalemployee "
            "BEGIN INSERT INTO no_such_table VALUES (1); END"
        )
    failing = employees(1, 1)
    malformed = [envelope(EMP_Q, "create", employee_payload(2, email=42))]
    users = [envelope(USER_Q, "create", user_payload(1))]
    publish(private_vhost, EMP_Q, failing + malformed)
    publish(private_vhost, USER_Q, users)
    workers.start(USER_Q, EMP_Q)
    assert wait_events(worker_db, [users[0]["id"]])["processed"] == 1

    dead = {m.headers["id"]: m for m in take_dead_letters(private_vhost, EMP_Q, 2)}
    assert set(dead) == {failing[0]["id"], malformed[0]["id"]}
    for message in dead.values():
        (death,) = message.headers["x-death"]
        assert (death["reason"], death["queue"]) == ("rejected", EMP_Q)
        assert message.decode()[0][0]["id"] == message.headers["id"]  # the event itself, intact
    reason = dead[failing[0]["id"]].headers["x-sync-failure"]
    assert reason.startswith("OperationalError: no such table")
    assert reason.endswith("(still failing after 1 retries)")
    assert dead[malformed[0]["id"]].headers["x-sync-failure"].startswith("InvalidEvent: ")
    assert count(worker_db, "helpdesk_externalemployee") == 0


def test_a_bad_event_in_a_batch_is_dead_lettered_alone_and_the_others_applied_once(
    private_vhost: str, workers: Workers, worker_db: Path, tmp_path: Path
) -> None:
    good = employees(1, 40) + employees(42, 80)
    malformed = envelope(EMP_Q, "create", employee_payload(41, email=42))
    publish(private_vhost, EMP_Q, [*good[:40], malformed, *good[40:]])  # all in the worker's first batch
    workers.start(EMP_Q)
    assert wait_events(worker_db, [event["id"] for event in good])["processed"] == len(good)
    (dead,) = take_dead_letters(private_vhost, EMP_Q, 1)
    assert dead.headers["id"] == malformed["id"]
    assert dead.headers["x-sync-failure"].startswith("InvalidEvent: ")
    assert count(worker_db, "helpdesk_processedevent") == len(good)
    assert count(worker_db, "helpdesk_externalemployee") == len(good)
    log = (tmp_path / "worker-1.log").read_text(encoding="utf-8")
    assert "sync events failed (InvalidEvent" in log  # the batch was tried first, then each alone
