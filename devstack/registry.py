"""The one table that describes each service; tasks and nox sessions come from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from devstack.errors import UsageError


@dataclass(frozen=True)
class SeedFlag:
    """A count option of a service's ``manage.py seed`` command.

    ``key`` names it in the runner (``seed-all --auth-employees``); ``option`` is the
    service command's own flag (``manage.py seed --employees``).
    """

    key: str
    option: str
    default: int
    maximum: int
    help: str


@dataclass(frozen=True)
class Service:
    """One Django service of the platform."""

    name: str
    models: tuple[str, ...]
    seed_flags: tuple[SeedFlag, ...] = ()
    consumes: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()
    needs: tuple[str, ...] = field(default=())

    def folder(self, root: Path) -> Path:
        return root / "services" / self.name

    def default_sqlite(self, root: Path) -> Path:
        return self.folder(root) / "db.sqlite3"


QUEUES = (
    "tts.role.sync",
    "tts.user_system_role.sync",
    "hdts.user.sync",
    "hdts.employee.sync",
)

SERVICES: tuple[Service, ...] = (
    Service(
        name="auth",
        models=("System", "Role", "User", "UserSystemRole", "Employee"),
        seed_flags=(
            SeedFlag("auth_employees", "employees", 0, 9_991, "extra auth employees beyond the 8 fixed ones"),
        ),
        publishes=QUEUES,
    ),
    Service(
        name="workflow",
        models=("Role", "RoleUser", "Workflow", "Step", "Transition"),
        consumes=QUEUES[:2],
        needs=("auth",),
    ),
    Service(
        name="helpdesk",
        models=("Employee", "Ticket", "HDTSUser", "ExternalEmployee"),
        seed_flags=(
            SeedFlag("employees", "employees", 50, 9_999, "helpdesk employees (company ids MA0001-MA9999)"),
            SeedFlag("tickets", "tickets", 20, 1_000_000, "helpdesk tickets"),
        ),
        consumes=QUEUES[2:],
    ),
)

NAMES = tuple(s.name for s in SERVICES)


def get(name: str) -> Service:
    """Return the service called ``name`` or fail with the list of known ones."""
    for service in SERVICES:
        if service.name == name:
            return service
    raise UsageError(f"Unknown service '{name}': choose one of {', '.join(NAMES)}.")


def consumers() -> tuple[Service, ...]:
    """Return the services that apply sync events."""
    return tuple(s for s in SERVICES if s.consumes)
