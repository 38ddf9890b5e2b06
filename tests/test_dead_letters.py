"""Dead letters on the real RabbitMQ, in a private virtual host: queues, replacement, re-delivery, drain.

Nothing here touches the default virtual host or a developer's queues: each test gets a virtual
host of its own (``rabbitmqctl add_vhost devstack-test-<uuid>``), deleted afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import psutil
import pytest

from devstack import broker, rabbit, registry, workers
from devstack.config import Settings
from devstack.errors import GuardError, StepError
from devstack.venvs import venv_python

pytestmark = pytest.mark.rabbitmq

HOST = "127.0.0.1:5672"
USER_Q = "hdts.user.sync"
EMP_Q = "hdts.employee.sync"


def rabbitmqctl(*args: str) -> str:
    """Run one rabbitmqctl command (quietly) and return its output; fail the test if it fails."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {done.stdout}{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def private_vhost() -> Iterator[str]:
    """A virtual host of the caller only; yield its broker URL, delete it (and all in it) after."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot create a private virtual host")
    name = f"devstack-test-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{HOST}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="module")
def module_vhost() -> Iterator[str]:
    """One private virtual host for the tests of this module (creating one takes seconds)."""
    with private_vhost() as url:
        yield url


@pytest.fixture
def vhost(settings: Settings, module_vhost: str) -> Settings:
    """The ``settings`` fixture pointed at the private virtual host, emptied of every sync queue.

    A broker URL with a virtual host of its own may do without a namespace: the base names.
    """
    private = Settings(root=settings.root, broker_url=module_vhost, project="")
    connection = pika.BlockingConnection(pika.URLParameters(module_vhost))
    try:
        for queue in registry.QUEUE_NAMES:
            for name in (queue, workers.dead_queue(queue)):
                connection.channel().queue_delete(queue=name)
            connection.channel().exchange_delete(exchange=queue)
    finally:
        connection.close()
    return private


@contextlib.contextmanager
def channel_of(settings: Settings) -> Iterator[Any]:
    """A pika channel on the settings' broker."""
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def held_arguments(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each queue of the virtual host with its arguments, as RabbitMQ holds them."""
    vhost = rabbit.parse(settings.broker_url).vhost
    listed = json.loads(rabbitmqctl("list_queues", "-p", vhost, "name", "arguments", "--formatter", "json"))
    return {row["name"]: {key: value for key, _type, value in row["arguments"]} for row in listed}


def depth(settings: Settings, queue: str) -> int:
    with channel_of(settings) as channel:
        return int(channel.queue_declare(queue=queue, passive=True).method.message_count)


def task_message(event_id: str, **headers: Any) -> tuple[pika.BasicProperties, bytes]:
    """A message shaped like the relay's: Celery protocol-2 headers, the envelope as JSON."""
    properties = pika.BasicProperties(
        headers={"id": event_id, "task": USER_Q, "retries": 0, **headers},
        correlation_id=event_id,
        content_type="application/json",
        delivery_mode=2,
    )
    return properties, json.dumps([[{"id": event_id}], {}, {}]).encode()


def publish(settings: Settings, queue: str, event_ids: list[str], **headers: Any) -> None:
    with channel_of(settings) as channel:
        channel.confirm_delivery()
        for event_id in event_ids:
            properties, body = task_message(event_id, **headers)
            channel.basic_publish(queue, queue, body, properties, mandatory=True)


def reject_all(settings: Settings, queue: str) -> None:
    """Do what a worker does when it gives up: reject each message without requeue."""
    with channel_of(settings) as channel:
        while True:
            method, _, _ = channel.basic_get(queue=queue, auto_ack=False)
            if method is None:
                return
            channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)


def ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


def test_declare_queues_dead_letters_every_sync_queue(vhost: Settings) -> None:
    assert workers.declare_queues(vhost) == {}
    held = held_arguments(vhost)
    for queue in registry.QUEUE_NAMES:
        assert held[queue] == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{queue}.dead"}
        assert held[f"{queue}.dead"] == {}
    assert workers.declare_queues(vhost) == {}  # the same arguments again: nothing to replace


def test_an_empty_queue_without_dead_lettering_is_replaced(vhost: Settings) -> None:
    with channel_of(vhost) as channel:  # what an older checkout left in the broker
        channel.queue_declare(queue=USER_Q, durable=True)
    said: list[str] = []
    assert workers.declare_queues(vhost, say=said.append) == {USER_Q: 0}
    assert said == [f"re-declared {USER_Q} with dead-lettering (0 message(s) kept)"]
    assert held_arguments(vhost)[USER_Q]["x-dead-letter-routing-key"] == f"{USER_Q}.dead"


def test_a_queue_with_messages_is_replaced_and_keeps_them_in_order(vhost: Settings) -> None:
    events = ids(3)
    with channel_of(vhost) as channel:
        channel.queue_declare(queue=USER_Q, durable=True)
        channel.exchange_declare(exchange=USER_Q, exchange_type="direct", durable=True)
        channel.queue_bind(queue=USER_Q, exchange=USER_Q, routing_key=USER_Q)
    publish(vhost, USER_Q, events)
    assert workers.declare_queues(vhost) == {USER_Q: 3}
    assert held_arguments(vhost)[USER_Q]["x-dead-letter-exchange"] == ""
    assert depth(vhost, f"{USER_Q}.dead") == 0
    with channel_of(vhost) as channel:
        kept = [channel.basic_get(queue=USER_Q, auto_ack=True) for _ in events]
    assert [properties.headers["id"] for _, properties, _ in kept] == events
    assert json.loads(kept[0][2]) == [[{"id": events[0]}], {}, {}]


def test_a_queue_in_use_is_not_replaced(vhost: Settings) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(vhost.broker_url))
    try:
        channel = connection.channel()
        channel.queue_declare(queue=USER_Q, durable=True)
        channel.basic_consume(queue=USER_Q, on_message_callback=lambda *args: None)
        with pytest.raises(StepError) as caught:
            workers.declare_queues(vhost)
    finally:
        connection.close()
    message = str(caught.value)
    vhost_name = rabbit.parse(vhost.broker_url).vhost
    assert f"RabbitMQ holds the queue {USER_Q} without dead-lettering" in message
    assert "1 consumer(s) still use it" in message and "'inv workers.stop'" in message
    assert f"'rabbitmqctl delete_queue -p {vhost_name} {USER_Q}'" in message
    assert "\n" not in message
    assert held_arguments(vhost)[USER_Q] == {}  # left as it was


def test_dead_letters_are_counted_with_their_reason_and_redelivered_as_new(vhost: Settings) -> None:
    workers.declare_queues(vhost)
    events = ids(2)
    publish(
        vhost, USER_Q, events, retries=4, **{broker.FAILURE_HEADER: "OperationalError: database is locked"}
    )
    reject_all(vhost, USER_Q)

    dead = broker.dead_letters(vhost)
    assert dead[USER_Q] == {"count": 2, "reason": "rejected: OperationalError: database is locked"}
    assert dead[EMP_Q] == {"count": 0, "reason": ""}
    assert depth(vhost, f"{USER_Q}.dead") == 2  # reading the reason took nothing
    assert broker.dead_letter_total(vhost) == 2
    assert broker.status(vhost)["dead_letters"][USER_Q]["count"] == 2

    assert broker.redeliver(vhost) == {USER_Q: events}
    assert depth(vhost, f"{USER_Q}.dead") == 0
    with channel_of(vhost) as channel:
        copies = [channel.basic_get(queue=USER_Q, auto_ack=True) for _ in events]
    for (_, properties, body), event_id in zip(copies, events, strict=True):
        assert properties.headers["id"] == event_id and properties.correlation_id == event_id
        assert properties.headers["retries"] == 0  # every retry again
        assert not {k for k in properties.headers if k.startswith("x-")}  # no death, no failure
        assert json.loads(body)[0][0]["id"] == event_id
    assert broker.redeliver_dead(vhost) == 0


def test_a_dead_letter_without_a_worker_reason_shows_rabbitmqs(vhost: Settings) -> None:
    workers.declare_queues(vhost)
    publish(vhost, EMP_Q, ids(1))
    reject_all(vhost, EMP_Q)
    assert broker.dead_letters(vhost, [EMP_Q]) == {EMP_Q: {"count": 1, "reason": "rejected"}}


def test_death_reason_reads_bytes_and_falls_back() -> None:
    assert broker.death_reason({"x-death": [{"reason": b"expired"}]}) == "expired"
    assert broker.death_reason({"x-first-death-reason": "maxlen"}) == "maxlen"
    assert broker.death_reason({broker.FAILURE_HEADER: b"KeyError: 'x'"}) == "dead-lettered: KeyError: 'x'"


def test_summary_counts_redelivered_events() -> None:
    report = broker.BrokerReport(relayed=2, redelivered=3, applied={"helpdesk": 5})
    assert report.summary() == (
        "2 event(s) relayed with confirms; 3 dead-lettered event(s) re-delivered; helpdesk applied 5"
    )


# --- drain: the waits of the consumers, watched -------------------------------------------------

FAKE_MANAGE = """\
import json, os, sys, time
ids = [line for line in sys.stdin.read().split() if line]
mode = os.environ.get("FAKE_WAIT", "ok")
if mode == "sleep":
    time.sleep(120)
if mode == "fail":
    sys.stderr.write("Traceback...\\nCommandError: 2 of 2 events are not applied after 0.1 s.\\n")
    sys.exit(1)
print(json.dumps({"processed": len(ids), "missing": 0}))
"""


@pytest.fixture
def fake_consumers(vhost: Settings) -> Settings:
    """Consumers whose ``manage.py wait_events`` does what FAKE_WAIT says (ok, sleep, fail)."""
    for consumer in registry.consumers():
        folder = consumer.folder(vhost.root)
        python = venv_python(folder / ".venv")
        python.parent.mkdir(parents=True)
        python.symlink_to(sys.executable)
        (folder / "manage.py").write_text(FAKE_MANAGE, encoding="utf-8")
    return vhost


def waits_of(root: Path) -> list[psutil.Process]:
    """The fake wait_events processes still running (they run in the consumers' folders)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.cwd().startswith(str(root)) and not workers.gone(proc):
                found.append(proc)
    return found


def test_drain_returns_what_each_consumer_applied(
    fake_consumers: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WAIT", "ok")
    applied = broker.drain(fake_consumers, {USER_Q: ids(2), EMP_Q: ids(1), "tts.role.sync": ids(4)}, 10)
    assert applied == {"workflow": 4, "helpdesk": 3}


def test_a_failed_wait_gives_its_sentence_and_the_backlog(
    fake_consumers: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WAIT", "fail")
    with pytest.raises(StepError) as caught:
        broker.drain(fake_consumers, {USER_Q: ids(2)}, 0.1)
    message = str(caught.value)
    assert message.startswith("helpdesk: 2 of 2 events are not applied after 0.1 s. (full output: logs/")
    assert "hdts.user.sync: " in message and "--- helpdesk-worker log:" in message


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL does not exist on Windows")
def test_a_worker_that_dies_ends_the_drain_at_once(
    fake_consumers: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WAIT", "sleep")
    worker = workers.consumers()[1]
    log = workers.log_file(fake_consumers, worker)
    log.parent.mkdir(parents=True)
    log.write_text("[ERROR] the last words of the worker\n", encoding="utf-8")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    proc = psutil.Process(child.pid)
    killer = subprocess.Popen(
        [sys.executable, "-c", f"import os, time; time.sleep(1); os.kill({child.pid}, 9)"]
    )
    try:
        began = time.monotonic()
        with pytest.raises(StepError) as caught:
            broker.drain(fake_consumers, {USER_Q: ids(3)}, 60, {worker.name: proc})
        took = time.monotonic() - began
    finally:
        killer.wait(timeout=30)
        child.kill()
        child.wait()
    assert took < 20, f"the drain took {took:.1f} s to notice (its timeout is far longer)"
    message = str(caught.value)
    assert message.startswith(f"helpdesk-worker (PID {child.pid}) exited")
    assert "while the sync waited for its events" in message
    assert message.endswith(
        "[ERROR] the last words of the worker\n"
        "Its events not yet applied stay in RabbitMQ: run 'inv sync --via broker' again."
    )
    assert waits_of(fake_consumers.root) == []  # the wait was ended, not left behind


def test_an_event_dead_lettered_during_the_drain_ends_it_with_the_reason(
    fake_consumers: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_WAIT", "sleep")
    workers.declare_queues(fake_consumers)
    events = ids(2)
    publish(fake_consumers, USER_Q, events[:1], **{broker.FAILURE_HEADER: "InvalidEvent: email=42"})
    script = (
        "import time, pika\n"
        "time.sleep(1)\n"
        f"c = pika.BlockingConnection(pika.URLParameters({fake_consumers.broker_url!r}))\n"
        "ch = c.channel()\n"
        f"m, _, _ = ch.basic_get({USER_Q!r})\n"
        "ch.basic_reject(m.delivery_tag, requeue=False)\n"
        "c.close()\n"
    )
    rejecter = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    began = time.monotonic()
    try:
        with pytest.raises(StepError) as caught:
            broker.drain(fake_consumers, {USER_Q: events}, 60)
    finally:
        rejecter.wait(timeout=30)
    assert time.monotonic() - began < 5
    message = str(caught.value)
    assert message.startswith(
        f"1 event(s) of {USER_Q} were dead-lettered by helpdesk's worker (rejected: InvalidEvent: email=42); "
        f"they wait in {USER_Q}.dead: remove the cause, then run 'inv sync --via broker' again"
    )
    assert "rabbitmqctl purge_queue -p devstack-test-" in message
    assert waits_of(fake_consumers.root) == []


def test_drain_with_nothing_to_wait_for_needs_no_broker(settings: Settings) -> None:
    assert broker.drain(settings, {}, 1) == {}
    assert broker.workers_for({USER_Q: 2}) == [workers.consumers()[1]]
    assert broker.workers_for({"tts.role.sync": 0, USER_Q: 0}) == []


def test_two_namespaces_on_one_broker_never_share_a_message(vhost: Settings) -> None:
    one, two = replace(vhost, project="clone-one"), replace(vhost, project="clone-two")
    workers.declare_queues(one)
    workers.declare_queues(two)
    held = held_arguments(vhost)
    for settings in (one, two):
        queue = settings.queue(EMP_Q)
        assert held[queue] == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{queue}.dead"}
    event = ids(1)
    publish(vhost, one.queue(EMP_Q), event)
    reject_all(vhost, one.queue(EMP_Q))
    assert broker.dead_letters(one, [EMP_Q]) == {EMP_Q: {"count": 1, "reason": "rejected"}}
    assert broker.dead_letters(two, [EMP_Q]) == {EMP_Q: {"count": 0, "reason": ""}}
    assert broker.redeliver(two) == {}
    assert broker.redeliver(one) == {EMP_Q: event}
    assert depth(vhost, one.queue(EMP_Q)) == 1 and depth(vhost, two.queue(EMP_Q)) == 0


def test_purge_deletes_only_this_namespace_and_only_when_confirmed(vhost: Settings) -> None:
    mine, other = replace(vhost, project="purged"), replace(vhost, project="kept")
    workers.declare_queues(mine)
    workers.declare_queues(other)
    publish(vhost, mine.queue(USER_Q), ids(2))
    with pytest.raises(
        GuardError, match=r"deletes 8 sync queue\(s\) of the namespace 'purged' .* holding 2 message"
    ):
        workers.purge(mine, yes=False)
    with channel_of(vhost) as channel:  # a worker of another clone with this namespace consumes
        channel.basic_consume(queue=mine.queue(EMP_Q), on_message_callback=lambda *args: None)
        with pytest.raises(GuardError, match=f"Something still consumes {mine.queue(EMP_Q)} "):
            workers.purge(mine, yes=True)
    deleted = workers.purge(mine, yes=True)
    assert deleted[mine.queue(USER_Q)] == 2 and len(deleted) == 8
    held = held_arguments(vhost)
    assert not [name for name in held if name.startswith("purged.")]
    assert {other.queue(q) for q in registry.QUEUE_NAMES} <= set(held)
    assert workers.purge(mine, yes=True) == {}  # nothing left: nothing to confirm
