"""Two checkouts on one RabbitMQ: their sync queues and workers never touch each other's messages.

Both clones live in folders named ``repo`` (the namespace also hashes the path) and share one
private virtual host, as two developers or two CI jobs share a broker. They seed over the broker
at the same time, then run live workers while people add employees in each auth. Every event a
helpdesk recorded must come from its own auth's outbox, and each stack must verify.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import registry
from devstack.config import Settings
from tests.conftest import fresh_copy
from tests.test_broker_integration import runner_processes, start_inv
from tests.test_dead_letters import private_vhost, rabbitmqctl
from tests.test_integration import counts, inv, ok, use_broker
from tests.test_living_stack import django

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


def more_employees(prefix: str, count: int) -> str:
    """Django shell code that adds ``count`` employees, as people do in auth's admin."""
    return (
        "from identity.models import Employee\n"
        f"for n in range({count}):\n"
        f"    Employee.objects.create(email=f'{prefix}{{n}}@example.com', username=f'{prefix}{{n}}',"
        f" first_name='{prefix}', last_name=str(n), company_id=f'{prefix[:2].upper()}{{n:04d}}',"
        " department='IT Department', status='Approved')\n"
    )


def event_ids(repo: Path, service: str, sql: str) -> set[str]:
    with contextlib.closing(sqlite3.connect(repo / "services" / service / "db.sqlite3")) as db:
        return {str(row[0]).replace("-", "") for row in db.execute(sql)}


def processed(repo: Path) -> set[str]:
    return event_ids(repo, "helpdesk", "SELECT event_id FROM helpdesk_processedevent")


def published(repo: Path) -> set[str]:
    return event_ids(repo, "auth", "SELECT event_id FROM identity_outboxevent")


def wait_for_employees(repo: Path, expected: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while counts(repo)["helpdesk"]["ExternalEmployee"] != expected:
        assert time.monotonic() < deadline, f"{repo}: helpdesk did not reach {expected} employees"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def clones(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path) -> Iterator[tuple[Path, Path]]:
    """Two fresh clones on one private virtual host (its name: ``vhost``)."""
    with private_vhost() as url:
        (tmp_path_factory.getbasetemp() / "vhost").write_text(url.rsplit("/", 1)[1], encoding="utf-8")
        pair = []
        for side in ("one", "two"):
            copy = fresh_copy(seeded_template, tmp_path_factory.mktemp(side) / "repo")
            use_broker(copy, url)
            pair.append(copy)
        first, second = pair
        yield first, second
        for copy in pair:
            ok(copy, "workers.stop")


def queues_in(vhost: str) -> set[str]:
    return set(rabbitmqctl("list_queues", "-p", vhost, "name", "--no-table-headers").split())


def test_two_clones_on_one_broker_keep_their_messages_apart(
    clones: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    first, second = clones
    names = [Settings(root=repo).namespace() for repo in clones]
    assert names[0] != names[1] and all(n.startswith("repo-") for n in names)

    # Both seed over the broker at once: each drain waits for its own events only.
    runs = [start_inv(repo, "seed-all", "--sync", "broker") for repo in clones]
    for repo, run in zip(clones, runs, strict=True):
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, f"seed-all in {repo} failed:\n{out}\n{err}"
    for repo in clones:
        assert processed(repo) and processed(repo) <= published(repo)
    assert not published(first) & published(second)

    # Live workers in both; people add employees to each auth while they consume.
    for repo in clones:
        ok(repo, "workers.start")
    status = ok(first, "status").stdout
    assert f"queues '{names[0]}.*'" in status
    before = [counts(repo)["helpdesk"]["ExternalEmployee"] for repo in clones]
    django(first, "auth", more_employees("first", 12))
    django(second, "auth", more_employees("second", 7))
    wait_for_employees(first, before[0] + 12)
    wait_for_employees(second, before[1] + 7)
    for repo in clones:
        assert processed(repo) <= published(repo), f"{repo} applied another clone's events"
        ok(repo, "verify")

    # Each clone's queues carry its namespace; its purge leaves the other's alone.
    for repo in clones:
        ok(repo, "workers.stop")
        assert runner_processes(repo) == []
    vhost = (tmp_path_factory.getbasetemp() / "vhost").read_text(encoding="utf-8")
    listed = queues_in(vhost)
    for name in names:
        assert {f"{name}.{q}" for q in registry.QUEUE_NAMES} <= listed
    done = ok(first, "workers.purge", "--yes")
    assert "deleted 8 queue(s)" in done.stdout
    listed = queues_in(vhost)
    assert not [q for q in listed if q.startswith(names[0] + ".")]
    assert {f"{names[1]}.{q}" for q in registry.QUEUE_NAMES} <= listed


def test_purge_refuses_while_the_workers_run(clones: tuple[Path, Path]) -> None:
    first, _ = clones
    ok(first, "workers.start")
    try:
        refused = inv(first, "workers.purge", "--yes")
    finally:
        ok(first, "workers.stop")
    assert refused.returncode == 3
    assert "of this checkout still run; stop them" in refused.stderr
