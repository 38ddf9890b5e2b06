"""Events lost on the broker are repaired: the real ``inv`` in a copy, in a private virtual host.

Whatever happens between auth and a consumer (queues purged after the relay, people adding
users while the workers run), ``inv sync --via broker`` and ``inv seed-all`` bring every mirror
back to auth's current state, and ``inv verify`` passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import registry
from devstack.config import Settings
from devstack.workspace import copy_checkout
from tests.test_dead_letters import private_vhost, rabbitmqctl
from tests.test_integration import REPO, counts, inv, ok, use_broker
from tests.test_living_stack import NEW_PEOPLE, django

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]

MORE_EMPLOYEES = (
    "from identity.models import Employee\n"
    "for n in range(5):\n"
    "    Employee.objects.create(email=f'purged{n}@example.com', username=f'purged{n}',"
    " first_name='Purged', last_name=str(n), company_id=f'MA09{n:02d}', department='IT Department',"
    " status='Approved')\n"
)


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    with private_vhost() as url:
        yield url


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, vhost: str) -> Path:
    copy = copy_checkout(REPO, tmp_path_factory.mktemp("broker-repair") / "repo")
    use_broker(copy, vhost)
    ok(copy, "seed-all", "--sync", "broker")
    return copy


def test_queues_purged_after_the_relay_are_redelivered_by_sync(repo: Path, vhost: str) -> None:
    django(repo, "auth", MORE_EMPLOYEES)
    ok(repo, "manage", "auth", "--", "relay_events", "--json")  # published and marked delivered
    name = vhost.rsplit("/", 1)[1]
    for queue in registry.QUEUE_NAMES:
        rabbitmqctl("purge_queue", "-p", name, Settings(root=repo).queue(queue))
    assert inv(repo, "verify").returncode == 6  # the mirrors lack what the broker lost
    ok(repo, "sync", "--via", "broker")
    after = counts(repo)
    assert after["helpdesk"]["ExternalEmployee"] == after["auth"]["Employee"] == 13
    ok(repo, "verify")


def test_people_added_while_the_workers_run_then_seed_all_and_verify_pass(repo: Path) -> None:
    ok(repo, "workers.start")
    try:
        django(repo, "auth", NEW_PEOPLE)
        report = repo / "live.json"
        ok(repo, "seed-all", "--sync", "broker", "--report", str(report))
        assert json.loads(report.read_text(encoding="utf-8"))["ok"] is True
        ok(repo, "verify")
    finally:
        ok(repo, "workers.stop")
    after = counts(repo)
    assert after["helpdesk"]["ExternalEmployee"] == after["auth"]["Employee"]
    assert after["helpdesk"]["HDTSUser"] == 7
