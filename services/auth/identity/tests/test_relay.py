"""Test the relay against the real RabbitMQ: order, Celery protocol, confirms, failures, loop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from django.core.management import CommandError
from django.db import connection
from kombu import Connection
from kombu import Queue as KombuQueue

from identity import outbox, relay
from identity.models import Employee, OutboxEvent

from . import broker as test_broker
from .broker import purge_queues, read_all, read_queue, task_call

SERVICE_DIR = Path(__file__).resolve().parents[2]
Run = Callable[..., tuple[str, str]]


def rabbitmqctl(*args: str) -> str:
    """Run one rabbitmqctl command (quietly) and return its output; fail the test if it fails."""
    command = ["rabbitmqctl", "-q", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def private_vhost() -> Iterator[str]:
    """Give these tests a virtual host of their own: a developer's queues in '/' are never touched.

    The test broker's URL (CELERY_BROKER_URL, else the local guest) with another virtual host;
    the helpers of tests/broker.py use it too. The virtual host is deleted afterwards.
    """
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot create a private virtual host")
    name = f"devstack-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        url = Connection(test_broker.BROKER_URL).clone(virtual_host=name).as_uri(include_password=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(test_broker, "BROKER_URL", url)
            yield url
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture
def broker(settings: Any, private_vhost: str) -> Iterator[str]:
    """Point the relay at the test broker and empty the sync queues before and after."""
    settings.CELERY_BROKER_URL = private_vhost
    purge_queues()
    yield private_vhost
    purge_queues()


def pending_ids() -> list[str]:
    """Return the ids of undelivered events in seq order."""
    rows = OutboxEvent.objects.filter(delivered_at__isnull=True).order_by("seq")
    return [str(event_id) for event_id in rows.values_list("event_id", flat=True)]


def envelopes_by_queue() -> dict[str, list[dict[str, Any]]]:
    """Return the envelopes of pending events per queue, in seq order."""
    grouped: dict[str, list[dict[str, Any]]] = {queue: [] for queue in outbox.QUEUES}
    for event in outbox.pending_events():
        grouped[event.queue].append(outbox.envelope(event))
    return grouped


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `condition` until it holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(0.05)


@pytest.mark.django_db
def test_relay_rejects_bad_options(run: Run) -> None:
    """Bad numbers and one-shot options with --loop are CommandErrors (no broker needed)."""
    for args, message in [
        (("--batch", "0"), "1 or more"),
        (("--batch", "x"), "whole number"),
        (("--limit", "0"), "1 or more"),
        (("--interval", "0"), "more than 0"),
        (("--interval", "soon"), "number of seconds"),
        (("--loop", "--json"), "one-shot"),
        (("--loop", "--limit", "3"), "one-shot"),
    ]:
        with pytest.raises(CommandError, match=message):
            run("relay_events", *args)


def test_task_message_is_celery_protocol_2() -> None:
    """A relay message carries Celery's protocol-2 headers and a JSON [args, kwargs, embed] body."""
    envelope = {"id": "0f8fad5b-d9cb-469f-a165-70867728950e", "queue": "hdts.employee.sync"}
    message = relay.task_message({**envelope, "action": "update", "occurred_at": "x", "payload": {}})
    headers = message.properties["application_headers"]
    assert headers["task"] == "hdts.employee.sync"
    assert headers["id"] == headers["root_id"] == envelope["id"]
    assert headers["lang"] == "py"
    assert headers["argsrepr"].startswith("({")
    assert headers["retries"] == 0  # read by the dead-letter code; Celery's defaults are left out
    assert not {"eta", "expires", "group", "timelimit", "stamps"} & set(headers)
    assert message.properties["correlation_id"] == envelope["id"]
    assert message.properties["delivery_mode"] == 2
    assert message.properties["content_type"] == "application/json"
    args, kwargs, embed = json.loads(message.body)
    assert args[0]["id"] == envelope["id"]
    assert (kwargs, embed["chain"]) == ({}, None)


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_relay_publishes_pending_events_in_order(run: Run, broker: str) -> None:
    """Every pending event becomes a persistent Celery task message, in order; a re-run sends nothing."""
    run("seed")
    expected = envelopes_by_queue()
    order = pending_ids()
    out, _ = run("relay_events", "--json", "--batch", "10")
    report = json.loads(out)
    assert report["published"] == 27
    assert report["ids"] == {queue: [e["id"] for e in envelopes] for queue, envelopes in expected.items()}
    assert isinstance(report["seconds"], float)
    assert pending_ids() == []
    delivered = OutboxEvent.objects.order_by("delivered_at", "seq").values_list("event_id", flat=True)
    assert [str(event_id) for event_id in delivered] == order

    messages = read_all()
    for queue, envelopes in expected.items():
        assert len(messages[queue]) == len(envelopes)
        for message, envelope in zip(messages[queue], envelopes, strict=True):
            task, args, kwargs = task_call(message)
            assert (task, args, kwargs) == (queue, [envelope], {})
            assert message.headers["id"] == envelope["id"]
            assert message.properties["correlation_id"] == envelope["id"]
            assert message.properties["delivery_mode"] == 2
            assert message.content_type == "application/json"
            assert message.delivery_info["exchange"] == queue
            assert message.delivery_info["routing_key"] == queue

    again, _ = run("relay_events", "--json")
    assert json.loads(again)["published"] == 0
    assert sum(len(found) for found in read_all().values()) == 0
    text, _ = run("relay_events")
    assert text.startswith("Published 0 events")


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_relay_limit_publishes_the_oldest(run: Run, broker: str) -> None:
    """--limit publishes only the oldest N pending events."""
    run("seed")
    order = pending_ids()
    out, _ = run("relay_events", "--json", "--limit", "5", "--batch", "2")
    report = json.loads(out)
    assert report["published"] == 5
    assert sorted(i for ids in report["ids"].values() for i in ids) == sorted(order[:5])
    assert pending_ids() == order[5:]


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_celery_worker_executes_relayed_events(run: Run, broker: str) -> None:
    """A real Celery worker with a task named after the queue runs each relayed event once."""
    received: list[dict[str, Any]] = []
    app = Celery("consumer-test", broker=broker, set_as_current=False)
    app.conf.task_queues = [q for q in relay.sync_queues() if q.name == "hdts.employee.sync"]
    app.conf.task_routes = {"hdts.employee.sync": {"queue": "hdts.employee.sync"}}

    @app.task(name="hdts.employee.sync", acks_late=True, shared=False)
    def employee_sync(event: dict[str, Any]) -> str:
        """Record the event like a consumer would."""
        received.append(event)
        return "applied"

    run("seed")
    expected = envelopes_by_queue()["hdts.employee.sync"]
    run("relay_events")
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING") as worker:
        wait_until(lambda: len(received) >= len(expected), "the worker to run the employee events")
        # Ask the worker to stop and wake its event loop (it would otherwise sleep up to 10 s).
        worker_state.should_terminate = 0
        worker.hub.call_soon(lambda: None)
    assert received == expected
    assert read_queue("hdts.employee.sync") == []


@pytest.mark.rabbitmq
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("amqp://guest:s3cret-pass@127.0.0.1:1//", "Connection refused"),
        ("amqp://guest:s3cret-pass@127.0.0.1:5672//", "ACCESS_REFUSED"),
        ("amqp://guest:guest@127.0.0.1:5672/no-such-vhost", "not found"),
    ],
)
def test_unreachable_broker_marks_nothing(
    run: Run, broker: str, settings: Any, url: str, reason: str
) -> None:
    """A closed port, a refused login or a missing vhost fail in one sentence; a later run delivers all."""
    run("seed")
    order = pending_ids()
    settings.CELERY_BROKER_URL = url
    with pytest.raises(CommandError, match=reason) as caught:
        run("relay_events")
    message = str(caught.value)
    assert "s3cret-pass" not in message
    assert message.startswith("Cannot connect to the broker at amqp://guest:**@")
    assert "\n" not in message
    assert pending_ids() == order

    settings.CELERY_BROKER_URL = broker
    out, _ = run("relay_events", "--json")
    assert json.loads(out)["published"] == 27
    assert pending_ids() == []


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_nack_leaves_its_batch_pending(run: Run, broker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A nack of the second batch keeps it (and the rest) pending; the first batch stays delivered."""
    run("seed")
    order = pending_ids()
    real_ack = relay.Confirms.ack

    def ack_then_nack(self: relay.Confirms, delivery_tag: int, multiple: bool) -> None:
        """Confirm the first batch of 10, refuse the next."""
        if self.next_tag <= 11:
            real_ack(self, delivery_tag, multiple)
        else:
            self.nack(delivery_tag, multiple)

    monkeypatch.setattr(relay.Confirms, "ack", ack_then_nack)
    with pytest.raises(CommandError, match=r"\(nacked\) \d+ of 10 messages"):
        run("relay_events", "--batch", "10")
    assert pending_ids() == order[10:]


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_missing_confirm_leaves_batch_pending(run: Run, broker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Confirms that never arrive time out; nothing is marked delivered."""
    run("seed")
    order = pending_ids()
    monkeypatch.setattr(relay.Confirms, "ack", lambda self, tag, multiple: None)
    started = time.monotonic()
    with pytest.raises(CommandError, match=r"did not confirm 27 of 27 messages within 0\.3 s"):
        run("relay_events", "--confirm-timeout", "0.3")
    assert time.monotonic() - started < 10
    assert pending_ids() == order


def database_url() -> str:
    """Return a DATABASE_URL for the test database, for a subprocess."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user, password = quote(settings_dict["USER"] or ""), quote(settings_dict["PASSWORD"] or "")
    host, port = settings_dict["HOST"] or "localhost", settings_dict["PORT"] or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{settings_dict['NAME']}"


def relay_process(url: str, *args: str) -> subprocess.Popen[str]:
    """Start `manage.py relay_events` on the test database and the broker at `url`."""
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": url}
    return subprocess.Popen(
        [sys.executable, "manage.py", "relay_events", *args],
        cwd=SERVICE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_loop_relays_events_created_after_start(broker: str) -> None:
    """`relay_events --loop` publishes a new employee's event, then stops cleanly on SIGTERM."""
    process = relay_process(broker, "--loop", "--interval", "0.1")
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        if not banner.startswith("Relaying to amqp://"):
            pytest.fail(f"The loop did not start: {banner}{process.stderr.read() if process.stderr else ''}")
        employee = Employee.objects.create(
            email="loop.test@example.com",
            username="loop.test",
            first_name="Loop",
            last_name="Test",
            company_id="MA9998",
        )
        event = OutboxEvent.objects.get(queue="hdts.employee.sync", entity_id=employee.id)
        wait_until(
            lambda: OutboxEvent.objects.filter(pk=event.pk, delivered_at__isnull=False).exists(),
            "the loop to deliver the new employee's event",
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Stopped after publishing 1 events." in out
    (message,) = read_queue("hdts.employee.sync")
    _, (envelope,), _ = task_call(message)
    assert envelope["id"] == str(event.event_id)
    assert envelope["payload"]["email"] == "loop.test@example.com"


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
def test_two_relays_at_once_deliver_each_event_once(run: Run, broker: str) -> None:
    """Two relays running side by side deliver every event, none twice."""
    run("seed", "--employees", "200")
    total = OutboxEvent.objects.count()
    processes = [relay_process(broker, "--json", "--batch", "20") for _ in range(2)]
    reports = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        reports.append(json.loads(out))
    published = [i for report in reports for ids in report["ids"].values() for i in ids]
    assert len(published) == len(set(published)) == total
    assert pending_ids() == []
    messages = read_all()
    assert sum(len(found) for found in messages.values()) == total


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_relay_loop_stops_after_current_batch(run: Run, broker: str) -> None:
    """relay_loop returns once `stop` is set, after delivering what it started."""
    run("seed")
    stop = threading.Event()
    batches: list[int] = []

    def on_batch(envelopes: Any) -> None:
        """Stop the loop after its first batch."""
        batches.append(len(envelopes))
        stop.set()

    report = relay.relay_loop(broker, stop, batch=10, interval=0.05, on_batch=on_batch)
    assert batches == [10]
    assert report.published == 10
    assert len(pending_ids()) == 17


def queue_arguments(vhost_url: str) -> dict[str, dict[str, Any]]:
    """Return each queue of the virtual host with its arguments, as RabbitMQ holds them."""
    vhost = Connection(vhost_url).virtual_host
    listed = json.loads(rabbitmqctl("list_queues", "-p", vhost, "name", "arguments", "--formatter", "json"))
    return {row["name"]: {key: value for key, _type, value in row["arguments"]} for row in listed}


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_relay_declares_dead_lettered_queues(run: Run, broker: str) -> None:
    """Each sync queue dead-letters to its durable `<queue>.dead`, as the consumers declare it."""
    run("seed")
    run("relay_events")
    held = queue_arguments(broker)
    for name in outbox.QUEUES:
        assert held[name] == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{name}.dead"}
        assert held[f"{name}.dead"] == {}


@pytest.mark.rabbitmq
@pytest.mark.django_db
def test_a_queue_without_dead_lettering_is_refused_with_the_fix(run: Run, broker: str) -> None:
    """A queue left by an older checkout (no dead-letter arguments) stops the relay in one sentence."""
    run("seed")
    order = pending_ids()
    with Connection(broker) as conn:
        channel = conn.channel()
        channel.queue_delete("hdts.user.sync")
        KombuQueue("hdts.user.sync", durable=True)(channel).declare()
    try:
        with pytest.raises(CommandError) as caught:
            run("relay_events")
    finally:
        with Connection(broker) as conn:
            conn.channel().queue_delete("hdts.user.sync")
    message = str(caught.value)
    assert "PRECONDITION_FAILED" in message
    assert "rabbitmqctl delete_queue hdts.user.sync" in message
    assert "\n" not in message
    assert pending_ids() == order
