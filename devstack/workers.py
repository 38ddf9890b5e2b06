"""Celery workers and auth's relay loop, started and stopped by the runner (PID + start time).

Also the sync queues as RabbitMQ holds them: each is declared with dead-lettering to its
durable ``<queue>.dead`` queue (the workers reject a message for good there), exactly as
the services declare it; a queue an older checkout declared without it is replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import psutil

from devstack import processes, rabbit, registry, retry
from devstack.commands import child_env, python_of
from devstack.config import Settings
from devstack.errors import BrokerUnreachable, GuardError, StepError
from devstack.processes import gone


@dataclass(frozen=True)
class Worker:
    """A long-running process of one service: a Celery worker or auth's outbox relay."""

    name: str
    service: registry.Service
    queues: tuple[str, ...]

    def command(self, settings: Settings) -> list[str]:
        python = str(python_of(settings, self.service))
        if not self.queues:
            return [python, "manage.py", "relay_events", "--loop"]
        return [
            python, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
            "--queues", ",".join(map(settings.queue, self.queues)), "--hostname", self.node(settings),
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
        ]  # fmt: skip

    def node(self, settings: Settings) -> str:
        """The Celery node name: the service and the checkout's namespace, unique on a shared broker."""
        namespace = settings.namespace()
        return f"{self.service.name}.{namespace}@%h" if namespace else f"{self.service.name}@%h"


def consumers() -> list[Worker]:
    return [Worker(f"{s.name}-worker", s, s.consumes) for s in registry.consumers()]


def relay() -> Worker:
    return Worker(f"{registry.PUBLISHER}-relay", registry.publisher(), ())


def detach_options(windows: bool | None = None) -> dict[str, Any]:
    """Popen options that let a worker outlive the runner and not get its Ctrl-C."""
    if windows if windows is not None else os.name == "nt":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200) | getattr(
            subprocess, "DETACHED_PROCESS", 0x8
        )
        return {"creationflags": flags}
    return {"start_new_session": True}


def pid_file(settings: Settings, worker: Worker) -> Path:
    return settings.state_dir() / "workers" / f"{worker.name}.json"


def log_file(settings: Settings, worker: Worker) -> Path:
    return settings.root / settings.log_dir / f"{worker.name}.log"


def recorded(settings: Settings, worker: Worker) -> tuple[psutil.Process | None, bool]:
    """Read the worker's PID file: its live process (PID and start time match), and whether the
    file is stale (it names a process that is gone). Writes nothing (``inv doctor`` reads this).
    """
    path = pid_file(settings, worker)
    if not path.exists():
        return None, False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        proc = psutil.Process(int(data["pid"]))
        if abs(proc.create_time() - float(data["created"])) < 1.0 and not gone(proc):
            return proc, False
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        pass
    return None, True


def running(settings: Settings, worker: Worker) -> psutil.Process | None:
    """Return the worker's process if the runner started it and it still lives; drop stale files."""
    proc, stale = recorded(settings, worker)
    if stale:
        pid_file(settings, worker).unlink(missing_ok=True)
    return proc


def own_pids(settings: Settings, chosen: Iterable[Worker] | None = None) -> set[int]:
    """PIDs of every live process of ``chosen`` (default: the workers) the runner started, with children."""
    pids: set[int] = set()
    for worker in [*consumers(), relay()] if chosen is None else chosen:
        proc = running(settings, worker)
        if proc is not None:
            pids.add(proc.pid)
            pids.update(child.pid for child in proc.children(recursive=True))
    return pids


def start(settings: Settings, worker: Worker) -> psutil.Process:
    """Start ``worker`` in the background with its output in the logs folder."""
    log = log_file(settings, worker)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = worker.command(settings)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            command,
            cwd=worker.service.folder(settings.root),
            env=child_env(settings, worker.service),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            **detach_options(),
        )
    proc = psutil.Process(child.pid)
    path = pid_file(settings, worker)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": proc.pid, "created": proc.create_time(), "command": command, "log": str(log)}
    path.write_text(json.dumps(record), encoding="utf-8")
    return proc


def stop(settings: Settings, worker: Worker, grace: float) -> bool:
    """Stop ``worker`` gracefully (kill after ``grace`` seconds); return whether it ran."""
    return bool(stop_all(settings, [worker], grace))


def stop_all(settings: Settings, chosen: Iterable[Worker], grace: float) -> list[Worker]:
    """Ask every chosen worker to stop at once, then wait; return those that were running."""
    return finish_stopping(settings, begin_stopping(settings, chosen), grace)


Stopping = list[tuple[Worker, list[psutil.Process]]]


def begin_stopping(settings: Settings, chosen: Iterable[Worker]) -> Stopping:
    """Send each running worker the graceful stop signal; return what to wait for."""
    pending: Stopping = []
    for worker in chosen:
        proc = running(settings, worker)
        if proc is None:
            continue
        family = [proc, *proc.children(recursive=True)]
        processes.terminate([proc])  # the worker stops its own children (Celery's pool)
        pending.append((worker, family))
    return pending


def finish_stopping(settings: Settings, pending: Stopping, grace: float) -> list[Worker]:
    """Wait for stopping workers, kill those still alive after ``grace``, drop their PID files."""
    processes.finish([proc for _, procs in pending for proc in procs], grace)
    for worker, _ in pending:
        pid_file(settings, worker).unlink(missing_ok=True)
    return [worker for worker, _ in pending]


def exit_status(proc: psutil.Process) -> str:
    """How an ended process ended ("exit code 1", "killed by SIGKILL"), or "" when that is unknown."""
    try:
        code: int | None = proc.wait(timeout=0)  # known for the runner's own children only
    except (psutil.TimeoutExpired, psutil.Error, OSError):
        return ""
    if code is None:
        return ""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def death_sentence(settings: Settings, worker: Worker, proc: psutil.Process, when: str) -> str:
    """Say that ``worker`` ended ``when``, how, and how its log ends."""
    status = exit_status(proc)
    how = f" ({status})" if status else ""
    log = log_file(settings, worker)
    return f"{worker.name} (PID {proc.pid}) exited{how} {when}; its log ({log}) ends with:\n{tail(log)}"


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class QueueInfo:
    name: str
    messages: int
    consumers: int


#: Where RabbitMQ moves what a worker rejects: ``<queue>.dead``, through the default exchange.
DEAD_SUFFIX = ".dead"
#: RabbitMQ's reply code to a declaration that does not match the queue it holds.
PRECONDITION_FAILED = 406


def dead_queue(queue: str) -> str:
    """The dead-letter queue of sync queue ``queue``."""
    return queue + DEAD_SUFFIX


def queue_arguments(queue: str) -> dict[str, Any]:
    """The arguments of sync queue ``queue``: the same as the services' (``SyncQueue``, the relay)."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead_queue(queue)}


def rabbitmqctl(broker: rabbit.Broker, *args: str) -> str:
    """The ``rabbitmqctl`` command line that does ``args`` in ``broker``'s virtual host."""
    vhost = [] if broker.vhost == "/" else ["-p", broker.vhost]
    return " ".join(["rabbitmqctl", *args[:1], *vhost, *args[1:]])


@contextlib.contextmanager
def connected(broker: rabbit.Broker, timeout: float = 3.0) -> Iterator[pika.BlockingConnection]:
    """One connection to ``broker``, closed afterwards; StepError in one sentence when it fails."""
    try:
        connection = pika.BlockingConnection(rabbit.connection_parameters(broker, timeout))
    except pika.exceptions.AMQPError as exc:
        raise BrokerUnreachable(
            f"RabbitMQ at {broker.masked} is not reachable ({type(exc).__name__}); start it, or fix "
            "broker_url ('inv check-rabbit' names the stage that fails)."
        ) from None
    try:
        yield connection
    finally:
        with contextlib.suppress(pika.exceptions.AMQPError):
            connection.close()


def queue_info(
    broker: rabbit.Broker, queues: Iterable[str], timeout: float = 3.0
) -> dict[str, QueueInfo | None]:
    """Ready messages and consumers per queue (None when the queue does not exist yet)."""
    result: dict[str, QueueInfo | None] = {}
    with connected(broker, timeout) as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                frame = channel.queue_declare(queue=queue, passive=True)
                result[queue] = QueueInfo(queue, frame.method.message_count, frame.method.consumer_count)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                result[queue] = None
    return result


Rewrite = Callable[[pika.BasicProperties], pika.BasicProperties]


def move(
    connection: pika.BlockingConnection,
    source: str,
    exchange: str,
    routing_key: str,
    rewrite: Rewrite | None = None,
) -> list[str]:
    """Move the messages ``source`` holds now to ``exchange``/``routing_key``; return their task ids.

    Each message is taken unacknowledged, published (mandatory) on a channel in confirm mode,
    and acknowledged only once the broker confirmed the copy: a failure part-way leaves it in
    ``source`` (at worst delivered twice, which the consumers ignore). Messages that arrive in
    ``source`` meanwhile wait for the next move.
    """
    take = connection.channel()
    put = connection.channel()
    put.confirm_delivery()
    count = take.queue_declare(queue=source, passive=True).method.message_count
    moved: list[str] = []
    for _ in range(count):
        method, properties, body = take.basic_get(queue=source, auto_ack=False)
        if method is None:
            break
        if rewrite is not None:
            properties = rewrite(properties)
        put.basic_publish(exchange, routing_key, body, properties, mandatory=True)
        take.basic_ack(method.delivery_tag)
        headers = properties.headers or {}
        moved.append(str(headers.get("id") or properties.correlation_id or ""))
    take.close()
    put.close()
    return moved


def declare_queues(
    settings: Settings,
    queues: Iterable[str] = registry.QUEUE_NAMES,
    say: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Declare each sync queue with dead-lettering, its exchange and ``<queue>.dead``, as the services do.

    ``queues`` are base names; what is declared are their names in the checkout's namespace.
    A queue RabbitMQ holds with other arguments (declared by an older checkout, without
    dead-lettering) is replaced, its messages kept (see :func:`replace_queue`), and ``say``
    hears it. Return the replaced queues (names on the broker) with the messages each held.
    """
    broker = rabbit.parse(settings.broker_url)
    replaced: dict[str, int] = {}
    with connected(broker) as connection:
        for queue in map(settings.queue, queues):
            try:
                channel = connection.channel()
                channel.queue_declare(queue=dead_queue(queue), durable=True)
                channel.exchange_declare(exchange=queue, exchange_type="direct", durable=True)
                try:
                    channel.queue_declare(queue=queue, durable=True, arguments=queue_arguments(queue))
                except pika.exceptions.ChannelClosedByBroker as exc:
                    if exc.reply_code != PRECONDITION_FAILED:
                        raise
                    replaced[queue] = held = replace_queue(settings, broker, connection, queue)
                    if say is not None:
                        say(f"re-declared {queue} with dead-lettering ({held} message(s) kept)")
                    channel = connection.channel()
                channel.queue_bind(queue=queue, exchange=queue, routing_key=queue)
                channel.close()
            except pika.exceptions.AMQPError as exc:
                raise StepError(
                    f"RabbitMQ at {broker.masked} refused to declare the sync queue {queue} ({exc}); "
                    f"check its state with '{rabbitmqctl(broker, 'list_queues', 'name', 'arguments')}'."
                ) from None
    return replaced


def replace_queue(
    settings: Settings, broker: rabbit.Broker, connection: pika.BlockingConnection, queue: str
) -> int:
    """Re-declare ``queue`` with dead-lettering; return how many messages it held (they are kept).

    RabbitMQ cannot change a queue's arguments: the queue is deleted and declared again. Its
    messages wait in ``<queue>.dead`` meanwhile (a crash leaves them there, where the next broker
    sync finds them) and come back after. Nothing may use the queue while this happens: a
    consumer, or the runner's relay, refuses the replacement in one sentence.
    """
    channel = connection.channel()
    users = channel.queue_declare(queue=queue, passive=True).method.consumer_count
    relay_proc = running(settings, relay())
    if users or relay_proc is not None:
        who = f"{users} consumer(s)"
        if relay_proc is not None:
            who = f"{relay().name} (PID {relay_proc.pid})" + (f" and {who}" if users else "")
        raise StepError(
            f"RabbitMQ holds the queue {queue} without dead-lettering (an older checkout declared it) "
            f"and {who} still use it; stop them ('inv workers.stop', and any worker of another checkout) "
            f"and run again, or delete it yourself with '{rabbitmqctl(broker, 'delete_queue', queue)}' "
            "(its messages are lost)."
        )
    held = len(move(connection, queue, "", dead_queue(queue)))
    try:
        channel.queue_delete(queue=queue, if_unused=True, if_empty=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise StepError(
            f"RabbitMQ would not delete the queue {queue} to re-declare it with dead-lettering "
            f"({exc.reply_text}): something uses it right now; stop it ('inv workers.stop') and run again."
        ) from None
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True, arguments=queue_arguments(queue))
    channel.queue_bind(queue=queue, exchange=queue, routing_key=queue)
    channel.close()
    move(connection, dead_queue(queue), queue, queue)
    return held


def purge(settings: Settings, yes: bool) -> dict[str, int]:
    """Delete this checkout's sync queues, their dead-letter queues and exchanges from the broker.

    Return each deleted queue (name on the broker) with the messages it held. Without ``yes``
    nothing is deleted: GuardError lists what would be. A queue something consumes is refused:
    the runner's workers must be stopped first, and another process of this namespace too.
    """
    broker = rabbit.parse(settings.broker_url)
    own = [w.name for w in [*consumers(), relay()] if running(settings, w) is not None]
    if own:
        raise GuardError(
            f"{', '.join(own)} of this checkout still run; stop them ('inv workers.stop', or 'inv down') "
            "and run 'inv workers.purge' again."
        )
    names = [n for q in registry.QUEUE_NAMES for n in (settings.queue(q), dead_queue(settings.queue(q)))]
    found = {n: i for n, i in queue_info(broker, names).items() if i is not None}
    where = f"namespace '{settings.namespace()}'" if settings.namespace() else "the base names"
    if not found:
        return {}
    used = [f"{n} ({i.consumers} consumer(s))" for n, i in found.items() if i.consumers]
    if used:
        raise GuardError(
            f"Something still consumes {', '.join(used)} at {broker.masked}: a worker of another "
            f"checkout with the {where} (or started by hand); stop it and run 'inv workers.purge' again."
        )
    if not yes:
        held = sum(i.messages for i in found.values())
        raise GuardError(
            f"Purging deletes {len(found)} sync queue(s) of the {where} at {broker.masked}, holding "
            f"{held} message(s); "
            "events still in them are dropped (the next 'inv sync' repairs the mirrors from auth's "
            "snapshot). Rerun with --yes to confirm."
        )
    deleted: dict[str, int] = {}
    with connected(broker) as connection:
        for name, info in found.items():
            channel = connection.channel()
            try:
                channel.queue_delete(queue=name, if_unused=True)
                if not name.endswith(DEAD_SUFFIX):
                    channel.exchange_delete(exchange=name)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise GuardError(
                    f"RabbitMQ would not delete {name} ({exc.reply_text}): a consumer came back; "
                    "stop it and run 'inv workers.purge' again."
                ) from None
            deleted[name] = info.messages
    return deleted


def drop_messages(settings: Settings) -> int:
    """Purge this checkout's sync queues and their dead letters; return how many messages went."""
    broker = rabbit.parse(settings.broker_url)
    names = [n for q in registry.QUEUE_NAMES for n in (settings.queue(q), dead_queue(settings.queue(q)))]
    found = [n for n, i in queue_info(broker, names).items() if i is not None and i.messages]
    dropped = 0
    with connected(broker) as connection:
        for name in found:
            channel = connection.channel()
            dropped += channel.queue_purge(queue=name).method.message_count
            channel.close()
    return dropped


def wait_consuming(
    settings: Settings,
    started: dict[str, psutil.Process],
    baseline: dict[str, int],
    timeout: float,
) -> None:
    """Wait until every started worker consumes all its queues (not a fixed sleep)."""
    broker = rabbit.parse(settings.broker_url)
    wanted = {w.name: w for w in consumers() if w.name in started}
    queues = [settings.queue(q) for w in wanted.values() for q in w.queues]
    for _ in retry.attempts(timeout):
        for name, proc in started.items():
            if gone(proc):
                worker = wanted.get(name) or relay()
                raise StepError(death_sentence(settings, worker, proc, "during start-up"))
        if not queues:
            return
        info = queue_info(broker, queues)
        if all((i := info[q]) is not None and i.consumers > baseline.get(q, 0) for q in queues):
            return
    logs = "\n".join(f"--- {w.name}\n{tail(log_file(settings, w))}" for w in wanted.values())
    raise StepError(f"The workers did not start consuming within {timeout:g} s.\n{logs}")


def start_missing(
    settings: Settings,
    include_relay: bool,
    say: Callable[[str], None],
    only: Iterable[Worker] | None = None,
) -> tuple[dict[str, psutil.Process], dict[str, int]]:
    """Start the workers that are not running; return them and each queue's prior consumers.

    The consumers are counted per queue name on the broker (see ``Settings.queue``).
    """
    broker = rabbit.parse(settings.broker_url)
    wanted = {w.name for w in (consumers() if only is None else only)}
    todo = [w for w in consumers() if w.name in wanted and running(settings, w) is None]
    queues = [q for w in todo for q in w.queues]
    if queues:  # a worker refuses a queue declared without dead-lettering: replace it first
        declare_queues(settings, queues, say)
    found = queue_info(broker, map(settings.queue, queues))
    baseline = {q: (i.consumers if (i := info) else 0) for q, info in found.items()}
    started: dict[str, psutil.Process] = {}
    try:
        for worker in todo:
            started[worker.name] = start(settings, worker)
            on = ", ".join(map(settings.queue, worker.queues))
            say(f"started {worker.name} (PID {started[worker.name].pid}) on {on}")
        if include_relay and running(settings, relay()) is None:
            started[relay().name] = start(settings, relay())
            say(f"started auth-relay (PID {started[relay().name].pid}), relaying auth's outbox continuously")
    except BaseException:
        stop_all(settings, named(started), settings.stop_grace)  # leave nothing half-started
        raise
    return started, baseline


def named(started: Iterable[str]) -> list[Worker]:
    names = set(started)
    return [w for w in [*consumers(), relay()] if w.name in names]


def ensure_running(
    settings: Settings, include_relay: bool, timeout: float, say: Callable[[str], None]
) -> list[Worker]:
    """Start the workers that are not running, wait until they consume; return those started."""
    started, baseline = start_missing(settings, include_relay, say)
    try:
        wait_consuming(settings, started, baseline, timeout)
    except BaseException:
        stop_all(settings, named(started), settings.stop_grace)
        raise
    return named(started)
