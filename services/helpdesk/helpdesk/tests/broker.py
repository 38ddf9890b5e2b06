"""Run real Celery workers on private queues of the local RabbitMQ, on a temp SQLite file.

Each test gets its own queue names (the real name plus a random suffix): the
tasks keep their names, only the routing differs, so tests never touch the
queues of a running stack. The queues and their exchanges are deleted after.

This file is shared by the consumers: workflows/tests/broker.py and
helpdesk/tests/broker.py must stay byte-identical (tests/test_shared_copies.py
at the repo root checks it); edit both or neither.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from config.celery_app import app
from kombu import Connection, Exchange, Queue

SERVICE_DIR = Path(__file__).resolve().parents[2]
WORKER_ARGS = (
    *("-A", "config", "worker", "--pool", "solo", "--loglevel", "WARNING"),
    *("--without-gossip", "--without-mingle", "--without-heartbeat"),
)


def sync_queue(name: str) -> Queue:
    """Return a queue declared like the service's own (durable direct exchange of the same name)."""
    return Queue(name, Exchange(name, "direct", durable=True), routing_key=name, durable=True)


class Broker:
    """Declare private queues, publish Celery task messages to them, and clean up."""

    def __init__(self, connection: Connection) -> None:
        """Keep the broker connection and the queues made so far."""
        self.connection = connection
        self.queues: dict[str, Queue] = {}

    def queue(self, task_name: str) -> str:
        """Declare a private queue for a task and return its name."""
        name = f"{task_name}.test-{uuid.uuid4().hex[:10]}"
        queue = sync_queue(name)
        queue(self.connection.default_channel).declare()
        self.queues[task_name] = queue
        return name

    def publish(self, task_name: str, events: list[dict[str, Any]]) -> None:
        """Send each event as a genuine Celery message (task id = event id) to the task's queue."""
        queue = self.queues[task_name]
        with app.producer_or_acquire() as producer:
            for event in events:
                app.send_task(task_name, args=[event], task_id=event["id"], queue=queue, producer=producer)

    def cleanup(self) -> None:
        """Delete the private queues and their exchanges."""
        channel = self.connection.default_channel
        for queue in self.queues.values():
            channel.queue_delete(queue.name)
            channel.exchange_delete(queue.name)


@pytest.fixture
def broker() -> Iterator[Broker]:
    """Connect to RabbitMQ (skip when it is down) and delete the test queues afterwards."""
    connection = app.connection_for_write()
    try:
        connection.ensure_connection(max_retries=1)
    except Exception as error:  # any failure to connect means "no broker here"
        pytest.skip(f"RabbitMQ is not reachable at {app.conf.broker_url}: {error}")
    helper = Broker(connection)
    try:
        yield helper
    finally:
        helper.cleanup()
        connection.release()


def service_env(database: Path) -> dict[str, str]:
    """Return the environment of a service subprocess using the given SQLite file."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Migrate one SQLite file per session for tests to copy; delete it at the end."""
    database = tmp_path_factory.mktemp("template") / "db.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=SERVICE_DIR,
        env=service_env(database),
        check=True,
        timeout=120,
    )
    yield database
    remove_sqlite(database)


@pytest.fixture
def worker_db(migrated_template: Path, tmp_path: Path) -> Iterator[Path]:
    """Return a fresh migrated SQLite file for the test; delete it afterwards."""
    database = tmp_path / "db.sqlite3"
    shutil.copyfile(migrated_template, database)
    yield database
    remove_sqlite(database)


def remove_sqlite(database: Path) -> None:
    """Delete a SQLite file with its WAL files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


class Workers:
    """Start worker subprocesses and make sure they end with the test."""

    def __init__(self, database: Path, log_dir: Path) -> None:
        """Keep the database the workers use and where their logs go."""
        self.database = database
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, *queues: str) -> subprocess.Popen[bytes]:
        """Start one solo-pool worker consuming the given queues."""
        number = len(self.running) + 1
        log = (self.log_dir / f"worker-{number}.log").open("wb")
        name = f"test{number}-{uuid.uuid4().hex[:6]}@%h"
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", *WORKER_ARGS, "-Q", ",".join(queues), "-n", name],
            cwd=SERVICE_DIR,
            env=service_env(self.database),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.running.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """Kill a worker at once (no chance to acknowledge anything)."""
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        """Kill every worker still running.

        The test has checked what it needs, and an idle worker takes seconds to
        notice a polite shutdown signal; unacknowledged messages return to
        their queue, which the broker fixture deletes anyway.
        """
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def workers(worker_db: Path, tmp_path: Path) -> Iterator[Workers]:
    """Start workers on the test database; always stop them afterwards."""
    started = Workers(worker_db, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def wait_events(database: Path, ids: list[str], timeout: float = 60) -> dict[str, Any]:
    """Run ``manage.py wait_events --json`` on the ids and return its report (fail on timeout)."""
    result = subprocess.run(
        [sys.executable, "manage.py", "wait_events", "-", "--timeout", str(timeout), "--json"],
        cwd=SERVICE_DIR,
        env=service_env(database),
        input="".join(f"{event_id}\n" for event_id in ids),
        capture_output=True,
        text=True,
        timeout=timeout + 60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def query(database: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one read query on the SQLite file (a separate connection)."""
    with sqlite3.connect(database, timeout=20) as connection:
        return connection.execute(sql, params).fetchall()


def count(database: Path, table: str) -> int:
    """Return the number of rows of a table."""
    rows = query(database, f"SELECT COUNT(*) FROM {table}")
    return int(rows[0][0])
