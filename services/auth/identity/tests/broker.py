"""Reach the real RabbitMQ of the relay tests: purge the sync queues and read them."""

from __future__ import annotations

import os
from typing import Any

import pytest
from kombu import Connection
from kombu.message import Message

from identity import relay

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def connect() -> Connection:
    """Open a connection to the test broker or fail the test with one sentence."""
    connection = Connection(BROKER_URL, connect_timeout=5)
    try:
        connection.connect()
    except (OSError, *connection.connection_errors) as exc:
        pytest.fail(
            f"RabbitMQ is not reachable at {relay.masked(BROKER_URL)} ({exc}); start it "
            "or deselect these tests with -m 'not rabbitmq'."
        )
    return connection


def purge_queues() -> None:
    """Declare the four sync queues as the consumers do and empty them."""
    with connect() as connection:
        channel = connection.channel()
        for queue in relay.sync_queues():
            bound = queue(channel)
            bound.declare()
            bound.purge()


def read_queue(name: str) -> list[Message]:
    """Take every message waiting in a queue (acknowledged, so removed)."""
    messages: list[Message] = []
    with connect() as connection:
        channel = connection.channel()
        queue = next(q for q in relay.sync_queues() if q.name == name)(channel)
        while (message := queue.get(no_ack=True)) is not None:
            messages.append(message)
    return messages


def read_all() -> dict[str, list[Message]]:
    """Take every message of the four sync queues, per queue."""
    return {queue.name: read_queue(queue.name) for queue in relay.sync_queues()}


def task_call(message: Message) -> tuple[str, list[Any], dict[str, Any]]:
    """Return the task name, args and kwargs a Celery worker would run for a message."""
    args, kwargs, embed = message.decode()
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    return message.headers["task"], args, kwargs
