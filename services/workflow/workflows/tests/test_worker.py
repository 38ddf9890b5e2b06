"""Run real workers against RabbitMQ: delivery, order, duplicates, a killed worker, two workers."""

import sys
import time
from pathlib import Path
from typing import Any

import pytest

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
    workers.kill(first)  # it held up to 16 prefetched, unacknowledged messages
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
