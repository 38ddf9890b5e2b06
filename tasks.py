"""Invoke tasks that bring the ticketing platform's dev stack to a seeded, verified state.

This file only assembles the collection from the registry; the logic lives in ``devstack``.
Every flag means the same on every task, short flags are off (``--employees``, never ``-e``),
and each value flag parses into a typed value while Invoke reads the command line.
"""

from __future__ import annotations

import copy
import inspect
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task

if {"--plan", "--dry", "-R"} & set(sys.argv):  # a plan writes nothing, not even bytecode caches
    sys.dont_write_bytecode = True

from devstack import cli, config, flags, registry
from devstack import doctor as doctor_checks
from devstack.console import Console
from devstack.errors import UsageError
from devstack.options import SEED_HELP

ROOT = Path(__file__).resolve().parent
flags.show_placeholders()
flags.parse_errors_exit_2()
if _config_problems := config.precheck(ROOT):  # Invoke would stop on these with a traceback
    if doctor_checks.requested(sys.argv):  # doctor reports them as rows, with what needs no config
        raise SystemExit(doctor_checks.unreadable(ROOT, _config_problems, "--json" in sys.argv))
    print("ERROR " + " ".join(_config_problems), file=sys.stderr)
    raise SystemExit(2)

#: Count flags by runner key: every registry seed flag, then the random seed.
COUNTS: dict[str, type[flags.Checked[int]]] = {
    **{f.key: flags.count(f.flag, f.maximum) for f in registry.SEED_FLAGS},
    "seed": flags.count("seed", registry.MAX_SEED),
}
SECONDS = flags.seconds
VIA = flags.choice("via", "local", "broker")
TRANSPORT = flags.choice("sync", "local", "broker")
SERVICE = flags.choice("service", *registry.NAMES)
PATH = flags.text("PATH", "report")
URL = flags.text("URL", "url")


def count_help(key: str, last: str = "as last seeded") -> str:
    if key == "seed":
        return f"{SEED_HELP} (default: {last}, else {registry.DEFAULT_SEED})"
    flag = registry.seed_flag(key)
    return f"{flag.help}, at most {flag.maximum:,} (default: {last}, else {flag.default})"


HELP = {
    "stop_servers": "stop processes holding the service's SQLite file first (default: refuse)",
    "allow_remote": "allow writing to a non-local or production database (default: refuse)",
    "sync_timeout": "seconds to wait for workers and for every relayed event to be applied (default: 60)",
    "keep_workers": "leave the Celery workers running after a broker sync (default: stop them)",
    "json": "print a JSON document instead of a table (default: off)",
    "repair": "give seeded rows that people edited their seeded values back (default: keep edits)",
}
GUARDS = (("stop_servers", False), ("allow_remote", False))


def make_task(
    body: Callable[..., None],
    name: str,
    doc: str,
    counts: Sequence[str] = (),
    params: Sequence[tuple[str, Any]] = (),
    helps: dict[str, str] | None = None,
    pre: Iterable[Task[Any]] = (),
    last: str = "as last seeded",
    writes: bool = True,
    positional: Sequence[str] = (),
    plans: bool = False,
) -> Task[Any]:
    """Build a task whose flags are the count flags ``counts`` followed by ``params``.

    The body gets the counts typed, as one mapping (None: not given), then ``params`` by name.
    """

    defaults = {**{k: COUNTS[k]() for k in counts}, **dict(params)}

    def run(c: Context, **values: Any) -> None:
        values = {**defaults, **values}  # callers other than Invoke may leave flags out
        try:
            if writes and not plans and c.config.get("run", {}).get("dry"):
                raise UsageError(
                    f"'inv --dry {name}' has no plan mode and would still write (Invoke's --dry only "
                    "echoes shell commands); run it without --dry, or use 'inv status' to see the stack."
                )
            given = {key: flags.value(values.pop(key), COUNTS[key]) for key in counts}
            if counts:
                body(c, given, **values)
            else:
                body(c, **values)
        except UsageError as exc:  # plain text from a caller other than Invoke's parser
            Console().error(str(exc))
            raise Exit(code=exc.code) from None

    signature = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    signature += [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, d in defaults.items()
    ]
    run.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    run.__doc__ = doc
    names = {*counts, *(n for n, _ in params)}
    every = {**{k: count_help(k, last) for k in counts}, **(helps or {})}
    return Task(
        run,
        name=name,
        pre=list(pre),  # type: ignore[arg-type]  # Invoke's annotation only mentions names
        auto_shortflags=False,
        positional=list(positional),
        help={k.replace("_", "-"): v for k, v in every.items() if k in names},
    )


def _check_rabbit(c: Context, timeout: str, url: str) -> None:
    cli.check_rabbit(c, flags.value(timeout, SECONDS("timeout")) or 0.0, flags.value(url, URL) or None)


check_rabbit = make_task(
    _check_rabbit,
    "check-rabbit",
    "Check that RabbitMQ answers: TCP, AMQP login, virtual host.",
    writes=False,
    params=(("timeout", SECONDS("timeout")("0")), ("url", URL())),
    helps={
        "timeout": "seconds to keep retrying with backoff (default: 0, one try)",
        "url": "broker URL (default: config broker_url, else CELERY_BROKER_URL, else local guest)",
    },
)


def _doctor(c: Context, json: bool) -> None:
    cli.doctor(c, json, ROOT)


doctor = make_task(
    _doctor,
    "doctor",
    "Check the machine and the checkout; print the fix for each failure.",
    writes=False,
    params=(("json", False),),
    helps={"json": "print the checks as one JSON document (default: off)"},
)


def _install(c: Context, force: bool, service: str) -> None:
    cli.install(c, force, flags.value(service, SERVICE))


install = make_task(
    _install,
    "install",
    "Build each service's virtualenv (skipped when it is current).",
    params=(("force", False), ("service", SERVICE())),
    helps={
        "force": "rebuild even when the stamp matches (default: off)",
        "service": f"only this service: {', '.join(registry.NAMES)} (default: all)",
    },
    plans=True,
)


def _migrate_task(service: registry.Service) -> Task[Any]:
    def body(c: Context, stop_servers: bool, allow_remote: bool) -> None:
        cli.migrate(c, (service.name,), stop_servers, allow_remote)

    return make_task(
        body, service.name, f"Apply pending migrations of the {service.name} service.",
        params=GUARDS, helps=HELP, pre=[install], plans=True,
    )  # fmt: skip


migrate_tasks = {s.name: _migrate_task(s) for s in registry.SERVICES}


def _sync(
    c: Context, via: str, timeout: str, keep_workers: bool, stop_servers: bool, allow_remote: bool
) -> None:
    seconds = flags.value(timeout, SECONDS("timeout"))
    cli.sync(c, flags.value(via, VIA) or "local", 60.0 if seconds is None else seconds, keep_workers,
             stop_servers, allow_remote)  # fmt: skip


publisher = registry.publisher().name
sync = make_task(
    _sync,
    "sync",
    f"Move {publisher}'s pending sync events to " + ", ".join(c.name for c in registry.consumers()) + ".",
    params=(("via", VIA("local")), ("timeout", SECONDS("timeout")("60")), ("keep_workers", False), *GUARDS),
    helps={"via": "the transport (default: local)", "timeout": HELP["sync_timeout"], **HELP},
    pre=[install, *migrate_tasks.values()],
    plans=True,
)


def _seed_task(service: registry.Service) -> Task[Any]:
    def body(
        c: Context, given: dict[str, int | None], repair: bool, stop_servers: bool, allow_remote: bool
    ) -> None:
        cli.seed(c, service.name, given, stop_servers, allow_remote, repair)

    pre: list[Task[Any]] = [install, migrate_tasks[service.name]]
    for need in service.needs:
        pre += [migrate_tasks[need], seed_tasks[need], sync]
    return make_task(
        body,
        service.name,
        f"Seed the {service.name} service (skipped when already seeded).",
        counts=[*(f.key for f in service.seed_flags), "seed"],
        params=(("repair", False), *GUARDS),
        helps=HELP,
        pre=pre,
        plans=True,
    )


seed_tasks: dict[str, Task[Any]] = {}
for _service in registry.SERVICES:
    seed_tasks[_service.name] = _seed_task(_service)

ALL_COUNTS = [*(f.key for f in registry.SEED_FLAGS), "seed"]


def _seed_all(
    c: Context,
    given: dict[str, int | None],
    offline: bool,
    stop_servers: bool,
    allow_remote: bool,
    report: str,
    rabbit_timeout: str,
    sync: str,
    timeout: str,
    keep_workers: bool,
    repair: bool,
    plan: bool,
) -> None:
    seconds = flags.value(timeout, SECONDS("timeout"))
    cli.seed_all(
        c, given, offline, stop_servers, allow_remote, flags.value(report, PATH) or None,
        flags.value(rabbit_timeout, SECONDS("rabbit-timeout")) or 0.0, flags.value(sync, TRANSPORT),
        60.0 if seconds is None else seconds, keep_workers, repair, plan,
    )  # fmt: skip


seed_all = make_task(
    _seed_all,
    "seed-all",
    "Install, migrate, seed, sync and verify every service.",
    counts=ALL_COUNTS,
    params=(
        ("offline", False),
        *GUARDS,
        ("report", PATH()),
        ("rabbit_timeout", SECONDS("rabbit-timeout")("0")),
        ("sync", TRANSPORT()),
        ("timeout", SECONDS("timeout")("60")),
        ("keep_workers", False),
        ("repair", False),
        ("plan", False),
    ),
    helps={
        "plan": "say what each step would do and why, do nothing (default: off)",
        "offline": "skip the RabbitMQ check and say so (default: off)",
        "report": "also write the summary as JSON to this path (default: none)",
        "rabbit_timeout": "seconds to wait for RabbitMQ to answer (default: 0, one try)",
        "sync": "how events reach " + ", ".join(c.name for c in registry.consumers()) + " (default: local)",
        "timeout": HELP["sync_timeout"],
        **HELP,
    },
    plans=True,
)


def _verify(c: Context, given: dict[str, int | None], json: bool) -> None:
    cli.verify(c, given, json)


verify = make_task(
    _verify,
    "verify",
    "Check seeded rows, mirrors, pending events and integrity.",
    writes=False,
    counts=ALL_COUNTS,
    params=(("json", False),),
    helps={"json": "print the findings as one JSON document (default: off)"},
    last="as the databases were last seeded",
)


def _status(c: Context, json: bool) -> None:
    cli.status(c, json)


status = make_task(
    _status,
    "status",
    "Show databases, migrations, rows, events, holders and RabbitMQ.",
    writes=False,
    params=(("json", False),),
    helps=HELP,
)

RESET_PARAMS = (("no_backup", False), ("yes", False), *GUARDS)
RESET_HELP = {
    "no_backup": "do not copy the SQLite file to the backups folder first (default: copy)",
    "yes": "confirm what cannot be undone (PostgreSQL data, queued events) (default: refuse)",
    **HELP,
}


def _reset(names: tuple[str, ...]) -> Callable[..., None]:
    def body(c: Context, no_backup: bool, yes: bool, stop_servers: bool, allow_remote: bool) -> None:
        cli.reset_services(c, names, no_backup, yes, stop_servers, allow_remote)

    return body


reset_all = make_task(
    _reset(registry.NAMES),
    "reset-all",
    "Remove every service's data (SQLite files are backed up first).",
    params=RESET_PARAMS,
    helps=RESET_HELP,
    plans=True,
)
reset_tasks = [
    make_task(
        _reset((s.name,)),
        s.name,
        f"Remove {s.name}'s data (SQLite is backed up first).",
        params=RESET_PARAMS,
        helps=RESET_HELP,
        plans=True,
    )
    for s in registry.SERVICES
]


def _workers_start(c: Context, timeout: str) -> None:
    seconds = flags.value(timeout, SECONDS("timeout"))
    cli.workers_start(c, 60.0 if seconds is None else seconds)


def _workers_stop(c: Context) -> None:
    cli.workers_stop(c)


def _workers_status(c: Context, json: bool) -> None:
    cli.workers_status(c, json)


def _workers_purge(c: Context, yes: bool) -> None:
    cli.workers_purge(c, yes)


workers = Collection(
    "workers",
    make_task(
        _workers_start,
        "start",
        f"Start the Celery workers and {publisher}'s outbox relay for live sync.",
        params=(("timeout", SECONDS("timeout")("60")),),
        helps={"timeout": "seconds to wait until the workers consume (default: 60)"},
        pre=[install, *migrate_tasks.values()],
    ),
    make_task(_workers_stop, "stop", "Stop the workers and relay that the runner started."),
    make_task(
        _workers_purge,
        "purge",
        "Delete this checkout's sync queues (and their events) from RabbitMQ.",
        params=(("yes", False),),
        helps={"yes": RESET_HELP["yes"]},
    ),
    make_task(
        _workers_status,
        "status",
        "Show the runner's workers and each sync queue's backlog and consumers.",
        writes=False,
        params=(("json", False),),
        helps=HELP,
    ),
)


def _password(c: Context) -> None:
    cli.password(c)


password = make_task(
    _password, "password", "Print the seed password of every seeded account.", pre=[install], writes=False
)


def _manage(c: Context, service_name: str, allow_remote: bool) -> None:
    service = flags.value(service_name, SERVICE)
    if service is None:
        raise Exit("ERROR Say which service: 'inv manage helpdesk -- createsuperuser'.", code=2)
    cli.manage_service(c, service, remainder(c), allow_remote)


def remainder(c: Context, argv: Sequence[str] = sys.argv) -> list[str]:
    """The words after ``--``, as typed: Invoke joins them into one string, losing their quoting."""
    if "--" in argv:
        return list(argv[list(argv).index("--") + 1 :])
    return shlex.split(c.remainder, posix=sys.platform != "win32") if c.remainder else []


manage = make_task(
    _manage,
    "manage",
    "Run a service's manage.py command (after --) as the runner would.",
    params=(("service_name", None), ("allow_remote", False)),
    helps={
        "service_name": f"the service to run it in: {', '.join(registry.NAMES)} (default: none, required)",
        "allow_remote": HELP["allow_remote"],
    },
    positional=["service_name"],
    pre=[install],
)


def _up(
    c: Context, service: str, foreground: bool, timeout: str, stop_servers: bool, allow_remote: bool
) -> None:
    seconds = flags.value(timeout, SECONDS("timeout"))
    cli.up(c, flags.value(service, ServiceList) or None, foreground, 60.0 if seconds is None else seconds,
           stop_servers, allow_remote)  # fmt: skip


class ServiceList(flags.Checked[str]):
    """``--service``, as on ``install``, that also takes several names separated by commas."""

    placeholder = SERVICE.placeholder
    flag = "service"

    @classmethod
    def parse(cls, text: str) -> str:
        return ",".join(SERVICE.parse(name.strip()) for name in text.split(","))


up = make_task(
    _up,
    "up",
    "Start the dev servers, workers and relay; seed what is missing first.",
    params=(
        ("service", ServiceList()),
        ("foreground", False),
        ("timeout", SECONDS("timeout")("60")),
        *GUARDS,
    ),
    helps={
        "service": f"only this service: {', '.join(registry.NAMES)} (default: all; name several with commas)",
        "foreground": "run attached, output prefixed per process; Ctrl-C stops them all (default: detached)",
        "timeout": "seconds to wait for each server's /health/ and for the workers (default: 60)",
        **HELP,
    },
)


def _down(c: Context) -> None:
    cli.down(c)


down = make_task(_down, "down", "Stop the dev servers, workers and relay that 'inv up' started.")


def _logs(c: Context, name: str, follow: bool) -> None:
    cli.logs(c, name or None, follow)


logs = make_task(
    _logs,
    "logs",
    "Print the servers' and workers' logs, each line prefixed with its name.",
    writes=False,
    params=(("name", None), ("follow", False)),
    helps={
        "name": "only this service (auth) or process (helpdesk-server) (default: all)",
        "follow": "keep printing new lines until Ctrl-C (default: off)",
    },
)

ns = Collection(
    doctor, check_rabbit, install, sync, seed_all, verify, status, reset_all, password, manage, up, down, logs
)


def _migrate_all(c: Context, stop_servers: bool, allow_remote: bool) -> None:
    cli.migrate(c, registry.NAMES, stop_servers, allow_remote)


migrate_all = make_task(
    _migrate_all,
    "all",
    "Apply pending migrations of every service.",
    params=GUARDS,
    helps=HELP,
    pre=[install],
    plans=True,
)


def alias(task: Task[Any]) -> Task[Any]:
    """The same task under a second name: Invoke consumes a task's help texts when it reads them."""
    twin = copy.copy(task)
    twin.help = dict(task.help)
    return twin


# `inv migrate`, `inv seed` and `inv reset` run their whole namespace (Invoke's default task).
migrate_ns = Collection("migrate", *migrate_tasks.values())
migrate_ns.add_task(migrate_all, default=True)
seed_ns = Collection("seed", *seed_tasks.values())
seed_ns.add_task(alias(seed_all), name="all", default=True)
reset_ns = Collection("reset", *reset_tasks)
reset_ns.add_task(alias(reset_all), name="all", default=True)
ns.add_collection(migrate_ns)
ns.add_collection(seed_ns)
ns.add_collection(reset_ns)
ns.add_collection(workers)

SNAPSHOT_HELP = {
    "snapshot": "the snapshot's name: letters, digits, '.', '-', '_' (default: none, required)",
    "service": f"only this service: {', '.join(registry.NAMES)} (default: all)",
    **HELP,
}


def _snapshot_save(
    c: Context, snapshot: str | None, service: str, replace: bool, stop_servers: bool, allow_remote: bool
) -> None:
    cli.snapshot_save(c, snapshot or "", flags.value(service, SERVICE),
                      replace, stop_servers, allow_remote)  # fmt: skip


def _snapshot_restore(
    c: Context, snapshot: str | None, service: str, stop_servers: bool, allow_remote: bool
) -> None:
    cli.snapshot_restore(c, snapshot or "", flags.value(service, SERVICE),
                         stop_servers, allow_remote)  # fmt: skip


def _snapshot_list(c: Context, json: bool) -> None:
    cli.snapshot_list(c, json)


def _snapshot_delete(c: Context, snapshot: str | None) -> None:
    cli.snapshot_delete(c, snapshot or "")


snapshot_ns = Collection(
    "snapshot",
    make_task(
        _snapshot_save,
        "save",
        "Save every service's database, events included, as one snapshot.",
        params=(("snapshot", None), ("service", SERVICE()), ("replace", False), *GUARDS),
        helps={**SNAPSHOT_HELP, "replace": "replace a snapshot of the same name (default: refuse)"},
        positional=("snapshot",),
    ),
    make_task(
        _snapshot_restore,
        "restore",
        "Put a snapshot (or a reset backup) back.",
        params=(("snapshot", None), ("service", SERVICE()), *GUARDS),
        helps=SNAPSHOT_HELP,
        positional=("snapshot",),
    ),
    make_task(
        _snapshot_list,
        "list",
        "List the snapshots and the reset backups.",
        writes=False,
        params=(("json", False),),
        helps=HELP,
    ),
    make_task(
        _snapshot_delete,
        "delete",
        "Delete a snapshot (its PostgreSQL databases too).",
        params=(("snapshot", None),),
        helps=SNAPSHOT_HELP,
        positional=("snapshot",),
    ),
)
ns.add_collection(snapshot_ns)
ns.configure({"devstack": {**config.DEFAULTS, "root": str(ROOT)}})
