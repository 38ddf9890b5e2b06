"""The one table of the platform: services, sync queues, seed flags and the expected state.

Everything else is generated from it: the Invoke tasks and their flags, ``seed-all``'s
pipeline, ``verify``'s expectations, the config defaults and environment keys, and the
oracles of the nox sessions and the tests. Adding a service is one ``Service`` row (plus its
``services/<name>/`` folder); adding a seed flag is one ``SeedFlag`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devstack.errors import UsageError

#: The service that owns systems, roles, users and employees and publishes them to the others.
PUBLISHER = "auth"
#: The random seed of generated data when none was given and none was used before.
DEFAULT_SEED = 7
MAX_SEED = 2**31 - 1
#: Employees every auth seed creates, whatever ``--auth-employees`` adds (domain: 8 fixed).
FIXED_EMPLOYEES = 8
#: Company ids are ``MA`` + 4 digits, so auth and helpdesk hold at most this many employees.
MAX_COMPANY_IDS = 9_999


@dataclass(frozen=True)
class Queue:
    """A sync queue: who publishes its events and who applies them."""

    name: str
    producer: str
    consumer: str


@dataclass(frozen=True)
class SeedFlag:
    """A count option: ``--<flag>`` on every runner task, ``--<option>`` on its owner's seed.

    ``key`` names it in the runner, the config (``devstack.seed.<key>``) and the reports;
    ``option`` is the owner's ``manage.py seed`` option.
    """

    key: str
    owner: str
    option: str
    default: int
    maximum: int
    help: str

    @property
    def flag(self) -> str:
        return self.key.replace("_", "-")


@dataclass(frozen=True)
class Rows:
    """The rows a seed leaves in one model: ``base``, plus the value of the seed flag ``plus``."""

    model: str
    base: int
    plus: str | None = None

    def count(self, values: dict[str, int]) -> int:
        return self.base + (values[self.plus] if self.plus else 0)


@dataclass(frozen=True)
class Service:
    """One Django service of the platform; ``needs`` names services seeded (and synced) first."""

    name: str
    rows: tuple[Rows, ...]
    needs: tuple[str, ...] = ()
    #: The port of its dev server (``inv up``) on 127.0.0.1; ``devstack.ports`` overrides it (0: none).
    port: int = 0

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(r.model for r in self.rows)

    @property
    def consumes(self) -> tuple[str, ...]:
        return tuple(q.name for q in QUEUES if q.consumer == self.name)

    @property
    def publishes(self) -> tuple[str, ...]:
        return tuple(q.name for q in QUEUES if q.producer == self.name)

    @property
    def seed_flags(self) -> tuple[SeedFlag, ...]:
        return tuple(f for f in SEED_FLAGS if f.owner == self.name)

    def folder(self, root: Path) -> Path:
        return root / "services" / self.name

    def default_sqlite(self, root: Path) -> Path:
        return self.folder(root) / "db.sqlite3"


QUEUES: tuple[Queue, ...] = (
    Queue("tts.role.sync", producer=PUBLISHER, consumer="workflow"),
    Queue("tts.user_system_role.sync", producer=PUBLISHER, consumer="workflow"),
    Queue("hdts.user.sync", producer=PUBLISHER, consumer="helpdesk"),
    Queue("hdts.employee.sync", producer=PUBLISHER, consumer="helpdesk"),
)

SEED_FLAGS: tuple[SeedFlag, ...] = (
    SeedFlag(
        "auth_employees", PUBLISHER, "employees", 0, MAX_COMPANY_IDS - FIXED_EMPLOYEES,
        f"extra auth employees beyond the {FIXED_EMPLOYEES} fixed ones",
    ),
    SeedFlag(
        "employees", "helpdesk", "employees", 50, MAX_COMPANY_IDS,
        "helpdesk employees (company ids MA0001-MA9999)",
    ),
    SeedFlag("tickets", "helpdesk", "tickets", 20, 1_000_000, "helpdesk tickets"),
)  # fmt: skip

#: The services in dependency order: a service comes after every service it needs.
SERVICES: tuple[Service, ...] = (
    Service(
        PUBLISHER,
        rows=(
            Rows("System", 4),
            Rows("Role", 8),
            Rows("User", 14),  # 13 seeded accounts and the administrator admin@example.com
            Rows("UserSystemRole", 13),
            Rows("Employee", FIXED_EMPLOYEES, plus="auth_employees"),
        ),
        port=8003,
    ),
    Service(
        "workflow",
        rows=(
            Rows("Role", 4),
            Rows("RoleUser", 9),
            Rows("Workflow", 5),
            Rows("Step", 11),
            Rows("Transition", 9),
        ),
        needs=(PUBLISHER,),
        port=8002,
    ),
    Service(
        "helpdesk",
        rows=(
            Rows("Employee", 0, plus="employees"),
            Rows("Ticket", 0, plus="tickets"),
            Rows("HDTSUser", 6),
            Rows("ExternalEmployee", FIXED_EMPLOYEES, plus="auth_employees"),
        ),
        port=8000,
    ),
)

NAMES = tuple(s.name for s in SERVICES)
QUEUE_NAMES = tuple(q.name for q in QUEUES)


def get(name: str) -> Service:
    """Return the service called ``name`` or fail with the list of known ones."""
    for service in SERVICES:
        if service.name == name:
            return service
    raise UsageError(f"Unknown service '{name}': choose one of {', '.join(NAMES)}.")


def publisher() -> Service:
    return get(PUBLISHER)


def consumers() -> tuple[Service, ...]:
    """Return the services that apply sync events."""
    return tuple(s for s in SERVICES if s.consumes)


def seed_flag(key: str) -> SeedFlag:
    for flag in SEED_FLAGS:
        if flag.key == key:
            return flag
    raise KeyError(key)


def default_counts() -> dict[str, int]:
    """Return every seed flag's default value, by key."""
    return {flag.key: flag.default for flag in SEED_FLAGS}


def expected_counts(values: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
    """Return the rows each service holds after a seed with these flag values (default: defaults)."""
    chosen = {**default_counts(), **(values or {})}
    return {s.name: {r.model: r.count(chosen) for r in s.rows} for s in SERVICES}


def check() -> list[str]:
    """List every inconsistency of the table itself, one sentence each (the tests run it)."""
    problems: list[str] = []
    seen: set[str] = set()
    for service in SERVICES:
        problems += [
            f"{service.name} needs {n}, which is not listed before it."
            for n in service.needs
            if n not in seen
        ]
        seen.add(service.name)
        problems += [
            f"{service.name}.{r.model} adds the unknown flag {r.plus}."
            for r in service.rows
            if r.plus and r.plus not in {f.key for f in SEED_FLAGS}
        ]
    for queue in QUEUES:
        problems += [
            f"Queue {queue.name} names the unknown service {who}."
            for who in (queue.producer, queue.consumer)
            if who not in NAMES
        ]
    problems += [
        f"Seed flag {f.key} belongs to the unknown service {f.owner}."
        for f in SEED_FLAGS
        if f.owner not in NAMES
    ]
    keys = [f.key for f in SEED_FLAGS] + ["seed"]
    problems += [f"Seed flag {k} is listed twice." for k in sorted({k for k in keys if keys.count(k) > 1})]
    return problems
