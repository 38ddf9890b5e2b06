"""Run real workers against RabbitMQ: delivery, duplicates, a killed worker, two workers."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

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
    workers.kill(first)  # it held up to 16 prefetched, unacknowledged messages
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
