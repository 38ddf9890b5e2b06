"""Run real workers against RabbitMQ: delivery, order, duplicates, killed or two workers, dead letters."""

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
from .factories import DEFAULT_LINKS, default_auth_events, link_event, role_event

pytestmark = pytest.mark.rabbitmq

ROLE_Q = "tts.role.sync"
LINK_Q = "tts.user_system_role.sync"


def ids(events: list[dict[str, Any]]) -> list[str]:
    """Return the event ids."""
    return [event["id"] for event in events]


def wait_for(database: Path, sql: str, at_least: int, timeout: float = 60) -> int:
    """Poll the SQLite file until the count query reaches at_least; return the count."""
    deadline = time.monotonic() + timeout
    while (found := int(query(database, sql)[0][0])) < at_least:
        assert time.monotonic() < deadline, f"{sql} gave {found}, expected {at_least}"
        time.sleep(0.005)
    return found


def test_worker_applies_events_in_any_order_and_ignores_a_duplicate(
    broker: Broker, workers: Workers, worker_db: Path
) -> None:
    role_queue, link_queue = broker.queue(ROLE_Q), broker.queue(LINK_Q)
    events = default_auth_events()
    roles, links = events[:4], events[4:]
    broker.publish(LINK_Q, links)  # every link before its role
    workers.start(role_queue, link_queue)
    parked = "SELECT COUNT(*) FROM workflows_deferredevent"
    assert wait_for(worker_db, parked, len(links)) == len(links)
    broker.publish(ROLE_Q, roles)
    report = wait_events(worker_db, ids(events))
    assert (report["processed"], report["missing"]) == (13, 0)
    assert count(worker_db, "workflows_role") == 4
    assert count(worker_db, "workflows_roleuser") == len(DEFAULT_LINKS)
    assert count(worker_db, "workflows_deferredevent") == 0

    duplicate = {**roles[0], "payload": {**roles[0]["payload"], "name": "Renamed"}}
    sentinel = role_event(99, "Sentinel", seconds=500)
    broker.publish(ROLE_Q, [duplicate, sentinel])  # one queue, one worker: handled in order
    wait_events(worker_db, [sentinel["id"]])
    assert query(worker_db, "SELECT name FROM workflows_role WHERE role_id = 2") == [("Admin",)]
    assert count(worker_db, "workflows_processedevent") == 14


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL does not exist on Windows")
def test_killed_worker_loses_nothing_and_applies_each_event_once(
    broker: Broker, workers: Workers, worker_db: Path
) -> None:
    role_queue, link_queue = broker.queue(ROLE_Q), broker.queue(LINK_Q)
    role = role_event(5, "Asset Manager")
    links = [link_event(user_id, 5, seconds=1) for user_id in range(1, 1501)]
    broker.publish(ROLE_Q, [role])
    broker.publish(LINK_Q, links)
    first = workers.start(role_queue, link_queue)
    wait_for(worker_db, "SELECT COUNT(*) FROM workflows_processedevent", 50)
    workers.kill(first)  # it held prefetched messages and a batch not yet committed
    assert count(worker_db, "workflows_processedevent") < 1 + len(links), (
        "the worker finished before the kill"
    )
    workers.start(role_queue, link_queue)
    report = wait_events(worker_db, ids([role, *links]))
    assert report["processed"] == 1 + len(links)
    assert count(worker_db, "workflows_processedevent") == 1 + len(links)
    assert count(worker_db, "workflows_roleuser") == len(links)
    assert query(worker_db, "SELECT COUNT(DISTINCT user_id) FROM workflows_roleuser") == [(len(links),)]


def test_two_workers_on_one_queue_apply_each_event_once(
    broker: Broker, workers: Workers, worker_db: Path
) -> None:
    role_queue, link_queue = broker.queue(ROLE_Q), broker.queue(LINK_Q)
    role = role_event(2, "Admin")
    links = [link_event(user_id, 2, seconds=1) for user_id in range(1, 201)]
    broker.publish(ROLE_Q, [role])
    broker.publish(LINK_Q, links + links)  # every link delivered twice
    workers.start(role_queue, link_queue)
    workers.start(role_queue, link_queue)
    report = wait_events(worker_db, ids([role, *links]))
    assert report["processed"] == 201
    deadline = time.monotonic() + 60  # let the second copies drain too
    while broker.connection.default_channel.queue_declare(link_queue, passive=True).message_count:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert count(worker_db, "workflows_processedevent") == 201
    assert count(worker_db, "workflows_roleuser") == 200


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
    with sqlite3.connect(worker_db) as db:  # every role write fails, as with a broken database
        db.execute(
            "CREATE TRIGGER broken BEFORE INSERT ON workflows_role "
            "BEGIN INSERT INTO no_such_table VALUES (1); END"
        )
    failing = role_event(2, "Admin")
    malformed = {**role_event(3, "Agent"), "action": "upsert"}
    publish(private_vhost, ROLE_Q, [failing, malformed])
    workers.start(ROLE_Q, LINK_Q)

    dead = {m.headers["id"]: m for m in take_dead_letters(private_vhost, ROLE_Q, 2)}
    assert set(dead) == {failing["id"], malformed["id"]}
    for message in dead.values():
        (death,) = message.headers["x-death"]
        assert (death["reason"], death["queue"]) == ("rejected", ROLE_Q)
        assert message.decode()[0][0]["id"] == message.headers["id"]  # the event itself, intact
    reason = dead[failing["id"]].headers["x-sync-failure"]
    assert reason.startswith("OperationalError: no such table")
    assert reason.endswith("(still failing after 1 retries)")
    assert dead[malformed["id"]].headers["x-sync-failure"].startswith("InvalidEvent: ")
    assert count(worker_db, "workflows_role") == 0
