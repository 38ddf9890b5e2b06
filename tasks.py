"""Invoke tasks that bring the ticketing platform's dev stack to a seeded, verified state.

This file only assembles the collection; the logic lives in the ``devstack`` package.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import Task, task

from devstack import cli, config, flags, registry
from devstack.options import MAX_SEED

ROOT = Path(__file__).resolve().parent
GUARD_HELP = {
    "stop-servers": "stop processes holding the service's SQLite file first (default: refuse)",
    "allow-remote": "allow writing to a non-local or production database (default: refuse)",
}
# Flag kinds: Invoke checks these while parsing, so bad input stops before any pre-task runs.
SEED_FLAGS = {flag.key: flag for service in registry.SERVICES for flag in service.seed_flags}
AUTH_EMPLOYEES = flags.count("auth-employees", SEED_FLAGS["auth_employees"].maximum)
EMPLOYEES = flags.count("employees", SEED_FLAGS["employees"].maximum)
TICKETS = flags.count("tickets", SEED_FLAGS["tickets"].maximum)
SEED = flags.count("seed", MAX_SEED)
TRANSPORT = flags.choice("sync", "local", "broker")
VIA = flags.choice("via", "local", "broker")
SERVICE = flags.choice("service", *registry.NAMES)


def count_help(flag: registry.SeedFlag) -> str:
    return f"N: {flag.help}, at most {flag.maximum:,} (default: as last seeded, else {flag.default})"


COUNT_HELP = {
    **{key.replace("_", "-"): count_help(flag) for key, flag in SEED_FLAGS.items()},
    "seed": "N: random seed of generated data (default: as last seeded, else 7)",
}


@task(
    help={
        "timeout": "S: seconds to keep retrying with backoff (default: 0, one try)",
        "url": "broker URL (default: config broker_url, else CELERY_BROKER_URL, else local guest)",
    }
)
def check_rabbit(c: Context, timeout: str = flags.seconds("timeout")("0"), url: str = "") -> None:
    """Check that RabbitMQ answers: TCP, AMQP login, virtual host."""
    cli.check_rabbit(c, timeout, url or None)


@task(
    help={
        "force": "rebuild even when the stamp matches (default: off)",
        "service": f"NAME: only this service: {', '.join(registry.NAMES)} (default: all)",
    }
)
def install(c: Context, force: bool = False, service: str = SERVICE("")) -> None:
    """Build each service's virtualenv (skipped when it is current)."""
    cli.install(c, force, service or None)


def count_flags(**given: str) -> dict[str, object]:
    """Map empty count flags to None ("not given"), so config and last seeds apply."""
    return {key: value or None for key, value in given.items()}


def as_pre(tasks: list[Task[Any]]) -> Any:
    """Pass Task objects as pre-tasks (Invoke's annotation only mentions names)."""
    return tasks


def _migrate_task(service: registry.Service) -> Task[Any]:
    def body(c: Context, stop_servers: bool = False, allow_remote: bool = False) -> None:
        cli.migrate(c, service.name, stop_servers, allow_remote)

    body.__doc__ = f"Apply pending migrations of the {service.name} service."
    return Task(body, name=service.name, pre=as_pre([install]), help=GUARD_HELP)


def _seed_task(service: registry.Service, pre: list[Task[Any]]) -> Task[Any]:
    def body(c: Context, **flags: Any) -> None:
        stop_servers = bool(flags.pop("stop_servers", False))
        allow_remote = bool(flags.pop("allow_remote", False))
        cli.seed(c, service.name, flags, stop_servers, allow_remote)

    names = [flag.option for flag in service.seed_flags] + ["seed"]
    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    kinds = {flag.option: flags.count(flag.option, flag.maximum) for flag in service.seed_flags}
    params += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=kinds.get(n, SEED)("")) for n in names
    ]
    params += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=False)
        for n in ("stop_servers", "allow_remote")
    ]
    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__doc__ = f"Seed the {service.name} service (skipped when already seeded)."
    helps = {flag.option: count_help(flag) for flag in service.seed_flags}
    helps["seed"] = COUNT_HELP["seed"]
    return Task(body, name=service.name, pre=as_pre(pre), help={**helps, **GUARD_HELP})


migrate_tasks = {s.name: _migrate_task(s) for s in registry.SERVICES}


SYNC_HELP = {
    "timeout": "S: seconds to wait for workers and for every relayed event to be applied (default: 60)",
    "keep-workers": "leave the Celery workers running after a broker sync (default: stop them)",
}


@task(
    pre=[install, *migrate_tasks.values()],
    help={"via": "local|broker: the transport (default: local)", **SYNC_HELP, **GUARD_HELP},
)
def sync(
    c: Context,
    via: str = VIA("local"),
    timeout: str = flags.seconds("timeout")("60"),
    keep_workers: bool = False,
    stop_servers: bool = False,
    allow_remote: bool = False,
) -> None:
    """Move auth's pending sync events to workflow and helpdesk."""
    cli.sync(c, via, timeout, keep_workers, stop_servers, allow_remote)


seed_tasks: dict[str, Task[Any]] = {}
for _service in registry.SERVICES:
    _pre: list[Task[Any]] = [install, migrate_tasks[_service.name]]
    for _need in _service.needs:
        _pre += [migrate_tasks[_need], seed_tasks[_need], sync]
    seed_tasks[_service.name] = _seed_task(_service, _pre)


@task(
    help={
        **COUNT_HELP,
        "offline": "skip the RabbitMQ check and say so (default: off)",
        "report": "also write the summary as JSON to this path (default: none)",
        "rabbit-timeout": "S: seconds to wait for RabbitMQ to answer (default: 0, one try)",
        "sync": "local|broker: how events reach workflow and helpdesk (default: local)",
        **SYNC_HELP,
        **GUARD_HELP,
    }
)
def seed_all(
    c: Context,
    auth_employees: str = AUTH_EMPLOYEES(""),
    employees: str = EMPLOYEES(""),
    tickets: str = TICKETS(""),
    seed: str = SEED(""),
    offline: bool = False,
    stop_servers: bool = False,
    allow_remote: bool = False,
    report: str = "",
    rabbit_timeout: str = flags.seconds("rabbit-timeout")("0"),
    sync: str = TRANSPORT(""),
    timeout: str = flags.seconds("timeout")("60"),
    keep_workers: bool = False,
) -> None:
    """Install, migrate, seed, sync and verify every service."""
    flags = count_flags(auth_employees=auth_employees, employees=employees, tickets=tickets, seed=seed)
    cli.seed_all(
        c, flags, offline, stop_servers, allow_remote, report or None, rabbit_timeout, sync or None,
        timeout, keep_workers,
    )  # fmt: skip


@task(
    help={
        k: v.replace("default: as last seeded", "default: as the databases were last seeded")
        for k, v in COUNT_HELP.items()
    }
)
def verify(
    c: Context,
    auth_employees: str = AUTH_EMPLOYEES(""),
    employees: str = EMPLOYEES(""),
    tickets: str = TICKETS(""),
    seed: str = SEED(""),
) -> None:
    """Check counts, pending events and integrity against the expected state."""
    cli.verify(c, count_flags(auth_employees=auth_employees, employees=employees, tickets=tickets, seed=seed))


@task(help={"json": "print a JSON document instead of a table (default: off)"})
def status(c: Context, json: bool = False) -> None:
    """Show databases, migrations, rows, events, holders and RabbitMQ."""
    cli.status(c, json)


def _reset_task(service: registry.Service) -> Task[Any]:
    def body(
        c: Context,
        no_backup: bool = False,
        yes: bool = False,
        stop_servers: bool = False,
        allow_remote: bool = False,
    ) -> None:
        cli.reset_services(c, (service.name,), no_backup, yes, stop_servers, allow_remote)

    body.__doc__ = f"Remove {service.name}'s data (SQLite is backed up first)."
    return Task(body, name=service.name, help=RESET_HELP)


RESET_HELP = {
    "no-backup": "do not copy the SQLite file to the backups folder first (default: copy)",
    "yes": "confirm dropping PostgreSQL data (default: refuse)",
    **GUARD_HELP,
}


@task(help=RESET_HELP)
def reset_all(
    c: Context,
    no_backup: bool = False,
    yes: bool = False,
    stop_servers: bool = False,
    allow_remote: bool = False,
) -> None:
    """Remove every service's data (SQLite files are backed up first)."""
    cli.reset_services(c, registry.NAMES, no_backup, yes, stop_servers, allow_remote)


def workers_start(c: Context, timeout: str = flags.seconds("timeout")("60")) -> None:
    """Start the Celery workers and auth's outbox relay for live sync."""
    cli.workers_start(c, timeout)


def workers_stop(c: Context) -> None:
    """Stop the workers and relay that the runner started."""
    cli.workers_stop(c)


def workers_status(c: Context, json: bool = False) -> None:
    """Show the runner's workers and each sync queue's backlog and consumers."""
    cli.workers_status(c, json)


ns = Collection(check_rabbit, install, sync, seed_all, verify, status, reset_all)
ns.add_collection(Collection("migrate", *migrate_tasks.values()))
ns.add_collection(Collection("seed", *seed_tasks.values()))
ns.add_collection(Collection("reset", *(_reset_task(s) for s in registry.SERVICES)))
ns.add_collection(
    Collection(
        "workers",
        Task(
            workers_start,
            name="start",
            pre=as_pre([install, *migrate_tasks.values()]),
            help={"timeout": "S: seconds to wait until the workers consume (default: 60)"},
        ),
        Task(workers_stop, name="stop"),
        Task(workers_status, name="status", help={"json": "print JSON instead of tables (default: off)"}),
    )
)
ns.configure({"devstack": {**config.DEFAULTS, "root": str(ROOT)}})
