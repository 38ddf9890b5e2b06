"""The raw AMQP limit of a broker sync: N persistent messages published with confirms and consumed.

On a private virtual host (created with ``rabbitmqctl``, deleted afterwards), one process
consumes a durable queue with a prefetch and acknowledges every message, while this one
publishes N persistent messages to it on a channel in confirm mode, pipelined (pika's
asynchronous connection), until the broker confirmed them all. The figure is the time from the
first publish to the last acknowledgement::

    python benchmarks/amqp_raw.py --messages 9991

The message body is a sync event's envelope of the same size as auth's; ``seed_all.py`` runs
this in the same run as the broker sync it compares with it.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection as Pipe
from typing import Any

import pika
import pika.channel
import pika.spec

#: Messages the consumer may hold unacknowledged (a sync worker prefetches as many).
PREFETCH = 400
QUEUE = "raw-benchmark"
#: An envelope shaped like auth's employee events (the body of the Celery message is a bit larger).
BODY = json.dumps(
    [
        [
            {
                "id": str(uuid.uuid4()),
                "queue": "hdts.employee.sync",
                "action": "create",
                "occurred_at": "2026-01-01T00:00:00.000000+00:00",
                "payload": {
                    "employee_id": 12345,
                    "email": "firstname.lastname12345@example.com",
                    "username": "firstname.lastname12345",
                    "first_name": "Firstname",
                    "last_name": "Lastname",
                    "company_id": "MA2345",
                    "department": "Information Technology",
                    "status": "Approved",
                },
            }
        ],
        {},
        {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
    ]
).encode()


def rabbitmqctl(*args: str) -> None:
    """Run one rabbitmqctl command; exit with its output when it fails."""
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"rabbitmqctl {' '.join(args)} failed: {done.stdout}{done.stderr}")


@contextmanager
def private_vhost(host: str, user: str, password: str) -> Iterator[str]:
    """A virtual host of the benchmark only; yield its URL, delete it (and its queue) afterwards."""
    if shutil.which("rabbitmqctl") is None:
        sys.exit("rabbitmqctl is not installed: the raw AMQP benchmark needs it for a private virtual host.")
    name = f"devstack-bench-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield f"amqp://{user}:{password}@{host}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


def consume(url: str, count: int, ready: Pipe, done: Pipe) -> None:
    """Consume ``count`` messages with a prefetch, acknowledging each; report when the last is acked."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=PREFETCH)
    seen = 0

    def on_message(
        ch: Any, method: pika.spec.Basic.Deliver, _props: pika.spec.BasicProperties, body: bytes
    ) -> None:
        nonlocal seen
        json.loads(body)  # a consumer reads what it gets
        ch.basic_ack(delivery_tag=method.delivery_tag)
        seen += 1
        if seen == count:
            done.send(time.perf_counter())
            ch.stop_consuming()

    channel.basic_consume(QUEUE, on_message)
    ready.send(True)
    channel.start_consuming()
    connection.close()


def publish(url: str, count: int) -> float:
    """Publish ``count`` persistent messages pipelined in confirm mode; return when the first was sent."""
    outstanding: collections.deque[int] = collections.deque()
    started = 0.0
    properties = pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json"
    )

    def on_open(connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=on_channel)

    def on_channel(channel: pika.channel.Channel) -> None:
        channel.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _frame: send(channel))

    def send(channel: pika.channel.Channel) -> None:
        nonlocal started
        started = time.perf_counter()
        for tag in range(1, count + 1):
            channel.basic_publish("", QUEUE, BODY, properties)
            outstanding.append(tag)

    def on_confirm(frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            sys.exit("The broker refused (nacked) a message of the raw benchmark.")
        if method.multiple:
            while outstanding and outstanding[0] <= method.delivery_tag:
                outstanding.popleft()
        else:
            outstanding.remove(method.delivery_tag)
        if not outstanding:
            connection.close()

    def on_closed(_connection: Any, _reason: Exception) -> None:
        connection.ioloop.stop()

    connection = pika.SelectConnection(
        pika.URLParameters(url), on_open_callback=on_open, on_close_callback=on_closed
    )
    connection.ioloop.start()
    if outstanding:
        sys.exit(f"The broker did not confirm {len(outstanding)} of {count} messages of the raw benchmark.")
    return started


def measure(url: str, count: int) -> float:
    """Seconds from the first publish to the last acknowledgement of ``count`` messages on ``url``."""
    setup = pika.BlockingConnection(pika.URLParameters(url))
    setup.channel().queue_declare(QUEUE, durable=True)
    setup.close()
    ready_in, ready_out = multiprocessing.Pipe(duplex=False)
    done_in, done_out = multiprocessing.Pipe(duplex=False)
    consumer = multiprocessing.Process(target=consume, args=(url, count, ready_out, done_out))
    consumer.start()
    try:
        if not ready_in.poll(30):
            sys.exit("The raw benchmark's consumer did not start within 30 s.")
        ready_in.recv()
        started = publish(url, count)
        if not done_in.poll(300):
            sys.exit(f"The raw benchmark's consumer did not get {count} messages within 300 s.")
        finished: float = done_in.recv()
    finally:
        consumer.join(30)
        if consumer.is_alive():
            consumer.kill()
    return finished - started


def raw_seconds(count: int, runs: int, host: str, user: str, password: str) -> list[float]:
    """``runs`` measurements of ``count`` messages, each on a fresh queue of one private virtual host."""
    results = []
    with private_vhost(host, user, password) as url:
        for _ in range(runs):
            results.append(measure(url, count))
            purge = pika.BlockingConnection(pika.URLParameters(url))
            purge.channel().queue_delete(QUEUE)
            purge.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=9991, help="messages per run (9,991)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is printed (3)")
    parser.add_argument("--host", default="127.0.0.1:5672", help="broker host:port (127.0.0.1:5672)")
    parser.add_argument("--user", default="guest")
    parser.add_argument("--password", default="guest")
    args = parser.parse_args()
    seconds = sorted(raw_seconds(args.messages, args.runs, args.host, args.user, args.password))
    median = seconds[len(seconds) // 2]
    print(
        f"raw AMQP, {args.messages:,} persistent messages published with confirms and consumed with acks: "
        f"{median:.2f} s median of {args.runs} ({args.messages / median:,.0f} messages/s)"
    )


if __name__ == "__main__":
    main()
