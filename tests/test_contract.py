"""The services' ``seed --json`` and ``stack_state --json`` reports against devstack/contract.py.

The first test runs every service of the registry for real, in its own virtualenv, on
temporary SQLite files: ``stack_state`` (no database yet), ``migrate``, ``stack_state``,
``seed`` with its default options (after seeding and syncing the services it needs), and
``stack_state`` again; every document must satisfy the contract and the runner's parser.
The other tests prove the validators reject what they should.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack import contract, registry
from devstack.commands import child_env, manage_command
from devstack.config import Settings
from devstack.contract import validate_seed_report, validate_state_report
from devstack.registry import Service
from devstack.stack import describe_seed
from devstack.state import ServiceState

REPO = Path(__file__).resolve().parents[1]


# -- the real services ------------------------------------------------------------------------


def needed(service: Service) -> list[Service]:
    """Return the services ``service`` needs seeded first, directly or not, in registry order."""
    names: set[str] = set()
    todo = list(service.needs)
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo += registry.get(name).needs
    return [s for s in registry.SERVICES if s.name in names]


class Services:
    """Run ``manage.py`` of the services of the checkout ``root`` in their virtualenvs, each on a
    SQLite file of ``folder``."""

    def __init__(self, folder: Path, root: Path = REPO) -> None:
        self.root = root
        self.databases = {s.name: folder / f"{s.name}.sqlite3" for s in registry.SERVICES}
        urls = {name: f"sqlite:///{path.as_posix()}" for name, path in self.databases.items()}
        self.settings = Settings(root=root, databases=urls)
        environ = {k: v for k, v in os.environ.items() if k != "DJANGO_ENV"}
        # Seeds would otherwise generate services/<svc>/.seed-password in the working tree.
        self.environ = {**environ, "SEED_USER_PASSWORD": "contract-test-password"}

    def run(self, service: Service, *args: str, stdin: str | None = None) -> str:
        command = manage_command(self.settings, service, *args)
        done = subprocess.run(
            command,
            cwd=service.folder(self.root),
            env=child_env(self.settings, service, self.environ),
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{service.name}: 'manage.py {' '.join(args)}' failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def report(self, service: Service, *args: str, stdin: str | None = None) -> dict[str, Any]:
        out = self.run(service, *args, "--json", stdin=stdin)
        try:
            doc = json.loads(out)
        except ValueError:
            pytest.fail(
                f"{service.name}: 'manage.py {args[0]} --json' printed no JSON document: {out[:500]!r}"
            )
        assert isinstance(doc, dict), f"{service.name}: {args[0]} --json printed {type(doc).__name__}"
        return doc

    def state(self, service: Service) -> dict[str, Any]:
        doc = self.report(service, "stack_state")
        assert validate_state_report(doc) == [], f"{service.name} stack_state --json: {doc}"
        assert doc["service"] == service.name
        ServiceState.from_report(doc)  # the runner's parser takes it
        return doc

    def seed(self, service: Service) -> dict[str, Any]:
        doc = self.report(service, "seed")
        assert validate_seed_report(doc) == [], f"{service.name} seed --json: {doc}"
        assert doc["service"] == service.name
        assert describe_seed(doc)
        return doc

    def deliver(self, source: Service, target: Service) -> int:
        """Apply the events ``source`` recorded for the queues ``target`` consumes; return how many."""
        lines = [line for line in self.run(source, "export_events").splitlines() if line.strip()]
        mine = [line for line in lines if json.loads(line)["queue"] in target.consumes]
        if mine:
            self.run(target, "apply_events", "-", "--json", stdin="\n".join(mine) + "\n")
        return len(mine)


@pytest.mark.slow
@pytest.mark.parametrize("service", registry.SERVICES, ids=[s.name for s in registry.SERVICES])
def test_service_reports_follow_the_contract(service: Service, tmp_path: Path, seeded_template: Path) -> None:
    services = Services(tmp_path, root=seeded_template)  # the run's copy of the work tree, venvs built
    models = set(service.models)

    missing = services.state(service)
    assert missing["migrations"]["pending"], "a database that does not exist lacks every migration"
    assert missing["counts"] is None and missing["last_seed"] is None
    assert not services.databases[service.name].exists(), "stack_state must not create the database"

    services.run(service, "migrate", "--noinput")
    empty = services.state(service)
    assert empty["migrations"]["pending"] == []
    assert empty["counts"] == dict.fromkeys(service.models, 0)
    assert empty["last_seed"] is None
    assert empty["integrity"] == {"ok": True, "problems": []}

    delivered = 0
    for other in needed(service):
        services.run(other, "migrate", "--noinput")
        services.seed(other)
        delivered += services.deliver(other, service)

    seeded = services.seed(service)
    assert set(seeded["models"]) <= models
    assert set(seeded["counts"]) == models
    assert seeded["changed"] is True, "the first seed of an empty database writes rows"

    after = services.state(service)
    assert after["migrations"]["pending"] == []
    assert after["counts"] == seeded["counts"]
    assert after["last_seed"] == seeded["options"]
    assert after["integrity"] == {"ok": True, "problems": []}
    assert after["deferred_events"] == 0
    if service.consumes:
        assert after["processed_events"] == delivered
    if service.publishes:
        assert set(after["pending_events"]) == set(service.publishes)
        assert sum(after["pending_events"].values()) > 0, "a seed of a publisher records events"
        assert after.get("delivered_events") == 0
    else:
        assert after["pending_events"] == {}


# -- the validators ----------------------------------------------------------------------------

SEED: dict[str, Any] = {
    "service": "helpdesk",
    "options": {"employees": 50, "tickets": 20, "seed": 7},
    "models": {
        "Employee": {"created": 50, "updated": 0, "unchanged": 0},
        "Ticket": {"created": 20, "updated": 0, "unchanged": 0},
    },
    "counts": {"Employee": 50, "Ticket": 20, "HDTSUser": 0, "ExternalEmployee": 0},
    "changed": True,
}

STATE: dict[str, Any] = {
    "service": "auth",
    "database": {"vendor": "sqlite", "name": "/tmp/auth.sqlite3"},
    "migrations": {"pending": []},
    "counts": {"System": 4, "Role": 8, "User": 13, "UserSystemRole": 13, "Employee": 8},
    "pending_events": {"tts.role.sync": 4, "hdts.user.sync": 6},
    "delivered_events": 0,
    "processed_events": 0,
    "deferred_events": 0,
    "last_seed": {"employees": 0, "seed": 7},
    "integrity": {"ok": True, "problems": []},
}

Change = Callable[[dict[str, Any]], None]


def changed(doc: dict[str, Any], change: Change) -> dict[str, Any]:
    result = copy.deepcopy(doc)
    change(result)
    return result


def test_the_samples_are_valid() -> None:
    assert validate_seed_report(SEED) == []
    assert validate_state_report(STATE) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(extra={"anything": [1, "x"]}),
        lambda d: d["models"]["Employee"].update(skipped=3),
        lambda d: d.update(changed=False, models={"Employee": {"created": 0, "updated": 0, "unchanged": 50}}),
    ],
    ids=["extra top-level key", "extra nested key", "nothing written"],
)
def test_seed_report_tolerates(change: Change) -> None:
    assert validate_seed_report(changed(SEED, change)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("changed"), "The required key changed is missing."),
        (lambda d: d.pop("service"), "The required key service is missing."),
        (lambda d: d["models"]["Ticket"].pop("unchanged"), 'The required key models["Ticket"].unchanged'),
        (lambda d: d.update(changed="yes"), 'changed must be a boolean, got "yes" (a string).'),
        (lambda d: d.update(service=""), "service must not be empty."),
        (lambda d: d["counts"].update(Ticket="20"), 'counts["Ticket"] must be an integer, got "20"'),
        (lambda d: d["counts"].update(Ticket=True), 'counts["Ticket"] must be an integer, got true'),
        (lambda d: d["counts"].update(Ticket=-1), 'counts["Ticket"] must be 0 or more, got -1.'),
        (lambda d: d["options"].update(seed=None), 'options["seed"] must be an integer, got null.'),
        (lambda d: d.update(models=[]), "models must be a JSON object, got [] (an array)."),
        (lambda d: d.update(counts=None), "counts must be a JSON object, got null."),
        (lambda d: d["counts"].pop("Ticket"), 'models names "Ticket" but counts has no "Ticket".'),
        (lambda d: d.update(changed=False), "changed is false although Employee, Ticket created"),
    ],
)
def test_seed_report_problems(change: Change, problem: str) -> None:
    problems = validate_seed_report(changed(SEED, change))
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("delivered_events"),
        lambda d: d.update(counts=None, last_seed=None),
        lambda d: d.update(pending_events={}, extra=1),
        lambda d: d.update(integrity={"ok": False, "problems": []}),
        lambda d: d["database"].update(host="localhost"),
    ],
    ids=["no delivered_events", "nulls", "extra key", "failed without sentences", "extra nested key"],
)
def test_state_report_tolerates(change: Change) -> None:
    assert validate_state_report(changed(STATE, change)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("counts"), "The required key counts is missing."),
        (lambda d: d.pop("last_seed"), "The required key last_seed is missing."),
        (lambda d: d["integrity"].pop("ok"), "The required key integrity.ok is missing."),
        (lambda d: d["migrations"].pop("pending"), "The required key migrations.pending is missing."),
        (lambda d: d["database"].pop("vendor"), "The required key database.vendor is missing."),
        (lambda d: d.update(processed_events="0"), 'processed_events must be an integer, got "0"'),
        (lambda d: d.update(deferred_events=1.5), "deferred_events must be an integer, got 1.5"),
        (lambda d: d.update(delivered_events=None), "delivered_events must be an integer, got null."),
        (lambda d: d["pending_events"].update({"hdts.user.sync": -2}), 'pending_events["hdts.user.sync"]'),
        (lambda d: d["migrations"].update(pending="app.0001"), "migrations.pending must be a JSON array"),
        (lambda d: d["migrations"].update(pending=["a.0001", 2]), "migrations.pending[1] must be a string"),
        (lambda d: d["integrity"].update(ok="true"), "integrity.ok must be a boolean"),
        (lambda d: d.update(last_seed={"seed": "7"}), 'last_seed["seed"] must be an integer'),
        (lambda d: d["integrity"].update(problems=["x"]), "integrity.ok is true but integrity.problems"),
    ],
)
def test_state_report_problems(change: Change, problem: str) -> None:
    problems = validate_state_report(changed(STATE, change))
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem)


@pytest.mark.parametrize("doc", [None, [], "report", 3, True])
def test_a_document_must_be_an_object(doc: object) -> None:
    for validate in (validate_seed_report, validate_state_report):
        problems = validate(doc)
        assert len(problems) == 1 and problems[0].startswith("The document must be a JSON object, got ")


def test_every_problem_is_reported() -> None:
    problems = validate_state_report({"service": 1})
    assert "service must be a string, got 1 (an integer)." in problems
    assert len(problems) == 9  # the wrong service and the 8 other required keys


@pytest.mark.parametrize(
    "shape",
    [
        contract.SeedReport,
        contract.ModelRows,
        contract.StateReport,
        contract.DatabaseInfo,
        contract.Migrations,
        contract.Integrity,
    ],
    ids=lambda shape: shape.__name__,
)
def test_the_docstring_explains_every_key(shape: Any) -> None:
    doc = contract.__doc__ or ""
    assert [key for key in shape.__annotations__ if f"``{key}``" not in doc] == []
