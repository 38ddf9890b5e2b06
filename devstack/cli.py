"""Task bodies: turn Invoke's context and flags into library calls, errors into exit codes."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from invoke.context import Context
from invoke.exceptions import Exit

from devstack import config as config_mod
from devstack import doctor as doctor_mod
from devstack import fastpath, pipeline, rabbit, registry, servers, signals, snapshots, workers
from devstack import options as options_mod
from devstack.broker import dead_letter_total, dead_letters, queue_states
from devstack.broker import status as broker_status
from devstack.cache import StateCache
from devstack.commands import child_env, kill_children, manage, manage_command
from devstack.console import Console, quiet_stdout
from devstack.errors import GuardError, StackError, UsageError, VerifyError
from devstack.holders import find_holders, sqlite_path
from devstack.lock import run_lock
from devstack.reset import reset
from devstack.stack import Stack
from devstack.state import ServiceState
from devstack.urls import mask_text, mask_url

T = TypeVar("T")


def section(c: Context) -> Mapping[str, Any]:
    """The ``devstack`` section of the config; anything but a mapping is one sentence, exit 2."""
    found = c.config.get("devstack", {}) or {}
    if not config_mod.is_mapping(found):
        raise UsageError(" ".join(config_mod.validate(found, config_mod.layers_of(c.config))))
    return found


def settings_of(c: Context, allow_remote: bool = False) -> config_mod.Settings:
    conf = section(c)
    root = Path(str(conf.get("root") or ".")).resolve()
    settings = config_mod.from_config(conf, root, config_mod.layers_of(c.config))
    if allow_remote:
        settings = dataclasses.replace(settings, allow_remote=True)
    return settings


def stack_of(
    c: Context,
    stop_servers: bool = False,
    allow_remote: bool = False,
    repair: bool = False,
    plan: bool = False,
) -> Stack:
    """Build a Stack; guard flags also come from config, which is how pre-tasks receive them.

    Invoke's ``--dry`` makes it a plan, as ``--plan`` does: pre-tasks plan too.
    """
    stop = stop_servers or config_mod.as_bool(section(c).get("stop_servers", False))
    settings = settings_of(c, allow_remote)
    if not (plan or planning(c)):
        stack = Stack(settings, Console(), stop_servers=stop, repair=repair)
        # A task and its pre-tasks share one state cache: each service's state is read once per
        # run, and a step that writes marks it stale (see cache.py), as in seed-all's pipeline.
        key = repr(dataclasses.replace(settings, allow_remote=False))
        stack.cache = _states.setdefault(key, stack.cache)
        return stack
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # the services' processes write no bytecode either
    sys.dont_write_bytecode = True
    # One plan for a task and its pre-tasks: what an earlier step would do informs the later ones.
    key = repr((settings, stop, repair))
    if key not in _plans:
        _plans[key] = Stack(settings, Console(), stop_servers=stop, repair=repair, plan=True)
    return _plans[key]


_plans: dict[str, Stack] = {}
#: The state cache of this run's tasks that read and write through the Stack's steps.
_states: dict[str, StateCache] = {}


def planning(c: Context) -> bool:
    """Whether Invoke was run with ``--dry``."""
    return bool(c.config.get("run", {}).get("dry"))


def seed_config(c: Context) -> dict[str, int]:
    """The ``devstack.seed`` config section, parsed once."""
    return options_mod.from_config(section(c).get("seed"))


def guarded(body: Callable[[], T], shares_states: bool = False) -> T:
    """Run a task body; every failure becomes one sentence and an exit code.

    Only tasks that keep the shared state cache current (``shares_states``: their writes go
    through the Stack's steps) leave it to the tasks after them; any other task may change a
    database behind it (a reset, a restored snapshot, workers that apply events), so the cache
    is dropped before and after it.

    ``StackError`` carries its own code. Ctrl-C, SIGTERM and SIGHUP stop the service commands
    still running (their transactions roll back) and exit 130 or 128 + the signal. A fault of
    the machine (a read-only folder, a full disk) names the file; only a real bug asks for a report.
    """
    if not shares_states:
        _states.clear()
    try:
        with signals.handled():
            return body()
    except StackError as exc:
        Console().error(str(exc))
        raise Exit(code=exc.code) from None
    except signals.Terminated as exc:
        kill_children()
        Console().error(
            f"Stopped by {exc.name}: running service commands were stopped and their changes rolled "
            "back, the lock is released; rerun the same command to finish."
        )
        raise Exit(code=128 + exc.signum) from None
    except KeyboardInterrupt:
        kill_children()
        Console().error("Interrupted; rerun the same command to finish, completed steps are skipped.")
        raise Exit(code=130) from None
    except BrokenPipeError:  # `inv doctor --json | head`: the reader left; nothing is wrong
        quiet_stdout()
        raise Exit(code=0) from None
    except OSError as exc:
        sentence = environment_fault(exc)
        if sentence is None:
            raise_bug(exc)
        Console().error(sentence)
        raise Exit(code=1) from None
    except Exception as exc:
        raise_bug(exc)
    finally:
        if not shares_states:
            _states.clear()


FAULTS = {
    errno.EROFS: ("is on a read-only file system", "run it in a writable checkout (or remount this one)"),
    errno.EACCES: ("may not be written by this user", "fix the permissions"),
    errno.EPERM: ("may not be written by this user", "fix the permissions"),
    errno.ENOSPC: ("cannot be written: the disk is full", "free space"),
    errno.EDQUOT: ("cannot be written: the disk quota is used up", "free space"),
}


def environment_fault(exc: OSError) -> str | None:
    """One sentence for a fault of the machine rather than of the runner, else None."""
    if exc.errno not in FAULTS:
        return None
    where = exc.filename or "a file of the checkout"
    what, fix = FAULTS[exc.errno]
    return f"{where} {what}; {fix}, then rerun (nothing was changed that a rerun does not finish)."


def raise_bug(exc: BaseException) -> NoReturn:
    """Keep the traceback (passwords masked) in a folder only this user can read; exit 1."""
    folder = Path(tempfile.mkdtemp(prefix="devstack-error-"))  # created 0700
    path = folder / "traceback.log"
    path.write_text(mask_text(traceback.format_exc()), encoding="utf-8")
    what = f"{type(exc).__name__}: {mask_text(str(exc))}"
    Console().error(f"Unexpected {what}; the traceback is in {path}, please report it.")
    raise Exit(code=1) from None


def check_rabbit(c: Context, timeout: float, url: str | None) -> None:
    def body() -> None:
        stack = stack_of(c)
        if url:
            stack.settings = dataclasses.replace(stack.settings, broker_url=url)
        stack.check_rabbit(timeout)

    guarded(body)


def doctor(c: Context, as_json: bool, root: Path) -> None:
    """Run every check and print one line each (or JSON); exit 1 when one failed.

    A broken configuration is reported as rows, not refused: the settings are read leniently.
    No run lock: doctor writes nothing.
    """

    def body() -> int:
        found = c.config.get("devstack", {}) or {}
        where = Path(str(found.get("root") or root)) if config_mod.is_mapping(found) else root
        rows, settings = doctor_mod.check_config(found, config_mod.layers_of(c.config), where.resolve())
        return doctor_mod.report(doctor_mod.run_checks(settings, rows), as_json)

    code = guarded(body)
    if code:
        raise Exit(code=code)


def install(c: Context, force: bool, service: str | None) -> None:
    def body() -> None:
        chosen = (registry.get(service),) if service else registry.SERVICES
        stack = stack_of(c)
        with stack.locked():
            stack.install(chosen, force=force)

    guarded(body, shares_states=True)


def migrate(c: Context, services: tuple[str, ...], stop_servers: bool, allow_remote: bool) -> None:
    def body() -> None:
        stack = stack_of(c, stop_servers, allow_remote)
        chosen = [registry.get(name) for name in services]
        stack.check_targets(chosen)  # before any connection
        with stack.locked():
            stack.migrate_all(chosen)

    guarded(body, shares_states=True)


def seed(
    c: Context,
    service: str,
    given: Mapping[str, int | None],
    stop_servers: bool,
    allow_remote: bool,
    repair: bool = False,
) -> None:
    def body() -> None:
        svc = registry.get(service)
        config = seed_config(c)
        stack = stack_of(c, stop_servers, allow_remote, repair)
        stack.check_targets([svc])  # before any connection
        with stack.locked():
            last = {svc.name: stack.cache.state(svc).last_seed}
            options = options_mod.resolve(given, config, last)
            options_mod.refuse_shrinking(options, last)
            stack.seed(svc, options)

    guarded(body, shares_states=True)


TRANSPORTS = ("local", "broker")


def check_transport(via: str) -> None:
    if via not in TRANSPORTS:
        raise UsageError(f"The sync transport must be one of {', '.join(TRANSPORTS)}, got '{via}'.")


def sync(
    c: Context, via: str, timeout: float, keep_workers: bool, stop_servers: bool, allow_remote: bool
) -> None:
    def body() -> None:
        check_transport(via)
        stack = stack_of(c, stop_servers, allow_remote)
        stack.check_targets()  # before any connection
        with stack.locked():
            when = stack.verified_at()
            if when is not None and (via == "local" or not dead_letter_total(stack.settings)):
                # verified means nothing pending, mirrors equal to auth: as long as no file changed
                stack.recorder.skip_all(
                    ["sync", "reconcile"], f"nothing changed since the run verified at {when}"
                )
                return
            try:
                stack.sync_via(via, timeout, keep_workers)
                stack.reconcile()
            finally:
                stack.close()

    guarded(body, shares_states=True)


def workers_start(c: Context, timeout: float) -> None:
    def body() -> None:
        seconds = timeout
        stack = stack_of(c)
        with run_lock(stack.settings):
            stack.check_rabbit()

            def action() -> tuple[bool, str]:
                started = workers.ensure_running(stack.settings, True, seconds, stack.console.info)
                if not started:
                    return False, "every worker is already running"
                return True, "consuming: " + ", ".join(w.name for w in started)

            stack.run("workers.start", action)

    guarded(body)


def workers_stop(c: Context) -> None:
    def body() -> None:
        stack = stack_of(c)

        def action() -> tuple[bool, str]:
            everyone = [*workers.consumers(), workers.relay()]
            stopped = [w.name for w in workers.stop_all(stack.settings, everyone, stack.settings.stop_grace)]
            return (True, "stopped " + ", ".join(stopped)) if stopped else (False, "no worker was running")

        stack.run("workers.stop", action)

    guarded(body)


def workers_purge(c: Context, yes: bool) -> None:
    def body() -> None:
        stack = stack_of(c)
        with run_lock(stack.settings):

            def action() -> tuple[bool, str]:
                deleted = workers.purge(stack.settings, yes)
                if not deleted:
                    return False, f"no sync queue of namespace '{stack.settings.namespace()}' exists"
                dropped = sum(deleted.values())
                where = stack.settings.queue("*")
                return True, f"deleted {len(deleted)} queue(s) named {where} ({dropped} message(s) dropped)"

            stack.run("workers.purge", action)

    guarded(body)


def workers_status(c: Context, as_json: bool) -> None:
    def body() -> None:
        stack = stack_of(c)
        report = broker_status(stack.settings)
        if as_json:
            print_json(report)
            return
        rows = [
            (
                name,
                info["pid"] or "-",
                ", ".join(map(stack.settings.queue, info["queues"])) or "(relays auth's outbox)",
            )
            for name, info in report["workers"].items()
        ]
        stack.console.table(("worker", "pid", "queues"), rows)
        queues = report["queues"]
        if "error" in queues:
            stack.console.warn(str(queues["error"]))
            return
        dead: dict[str, Any] = report.get("dead_letters", {})
        queue_rows = []
        for q, i in queues.items():
            ready, consumers = (i["ready"], i["consumers"]) if i else ("-", "missing")
            queue_rows.append((stack.settings.queue(q), ready, consumers, dead.get(q, {}).get("count", "-")))
        stack.console.table(("queue", "ready", "consumers", "dead-lettered"), queue_rows)
        warn_dead_letters(stack.console, report["namespace"], dead)

    guarded(body)


def seed_all(
    c: Context,
    given: Mapping[str, int | None],
    offline: bool,
    stop_servers: bool,
    allow_remote: bool,
    report: str | None,
    rabbit_timeout: float,
    transport: str | None = None,
    timeout: float = 60.0,
    keep_workers: bool = False,
    repair: bool = False,
    plan: bool = False,
) -> None:
    def body() -> None:
        via = transport or str(section(c).get("sync") or "local")
        check_transport(via)
        run = pipeline.Run(
            given=given,
            config=seed_config(c),
            via=via,
            offline=offline,
            rabbit_timeout=rabbit_timeout,
            sync_timeout=timeout,
            keep_workers=keep_workers,
            report=Path(report) if report else None,
        )
        pipeline.seed_all(stack_of(c, stop_servers, allow_remote, repair, plan), run)

    guarded(body, shares_states=True)


def verify(c: Context, given: Mapping[str, int | None], as_json: bool = False) -> None:
    def body() -> None:
        config = seed_config(c)
        stack = stack_of(c)
        record = fastpath.load(stack.settings)
        if record is not None and not as_json:  # the databases as the last verified run left them
            options = options_mod.resolve(given, config, fastpath.last_seeds(record))
            if (when := stack.verified_at(options)) is not None:
                stack.verify(options, unchanged_since=when)
                return
        options = options_mod.resolve(given, config, stack.cache.last_seeds())
        if not as_json:
            stack.verify(options)
            return
        found = stack.check(options)
        document = {
            "ok": not found.problems,
            "problems": found.problems,
            "info": found.info,
            "options": options.to_json(),
            "services": {name: state.to_json() for name, state in stack.states().items()},
        }
        print_json(document)
        if found.problems:
            fastpath.forget(stack.settings)
            raise Exit(code=VerifyError.code)

    guarded(body, shares_states=True)


def status(c: Context, as_json: bool) -> None:
    def body() -> None:
        stack = stack_of(c)
        settings = stack.settings
        record = fastpath.load(settings)  # the databases as the last verified run read them
        with contextlib.suppress(TypeError, AttributeError):
            saved = (record or {}).get("states") or {}
            stack.cache.prime({name: ServiceState(**state) for name, state in saved.items()})
        states = stack.states()
        report: dict[str, Any] = {"services": {}, "rabbitmq": {}}
        for service in registry.SERVICES:
            state = states[service.name]
            url = settings.database_url(service.name)
            database = sqlite_path(settings, service)
            holders = (
                find_holders(database, service.folder(settings.root))
                if database is not None and database.exists()
                else []
            )
            shown = (
                database.relative_to(settings.root)
                if database and database.is_relative_to(settings.root)
                else database
            )
            report["services"][service.name] = {
                **state.to_json(),
                "database_url": mask_url(url) if url else f"sqlite {shown}",
                "holders": [dataclasses.asdict(h) for h in holders],
            }
        report["servers"] = servers_report(settings)
        broker = rabbit.parse(settings.broker_url)
        where = {"url": broker.masked, "namespace": settings.namespace()}
        try:
            rabbit.probe(broker, timeout=2.0)
            report["rabbitmq"] = {**where, "answers": True, "problem": ""}
            with contextlib.suppress(StackError):
                report["rabbitmq"]["dead_letters"] = dead_letters(settings)
        except StackError as exc:
            report["rabbitmq"] = {**where, "answers": False, "problem": str(exc)}
        if as_json:
            print_json(report)
            return
        print_status(stack.console, report)

    guarded(body, shares_states=True)


def print_json(document: object) -> None:
    """Print a JSON document; a reader that left (``inv status --json | head``) ends it quietly."""
    try:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  # nothing flushes to the pipe again


def print_status(console: Console, report: dict[str, Any]) -> None:
    """A table that fits 80 columns, then each service's rows on a line of its own."""
    rows = []
    for name, info in report["services"].items():
        rows.append(
            (
                name,
                info["database_url"],
                len(info["pending_migrations"]),
                sum(info["pending_events"].values()),
                ", ".join(f"{h['pid']}" for h in info["holders"]) or "-",
            )
        )
    console.table(("service", "database", "migrations", "events", "holders"), rows)
    for name, info in report["services"].items():
        counts = info["counts"]
        console.info(f"{name} rows: " + (", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "-"))
    up = {name: info for name, info in (report.get("servers") or {}).items() if info.get("pid")}
    for name, info in up.items():
        console.info(f"{name} dev server (PID {info['pid']}): {info['url']} (admin: {info['url']}admin/)")
    if "servers" in report and not up:
        console.info("no dev server of the runner runs ('inv up' starts them)")
    mq = report["rabbitmq"]
    where = (
        f"RabbitMQ {mq['url']}, queues '{mq['namespace']}.*'" if mq["namespace"] else f"RabbitMQ {mq['url']}"
    )
    console.info(f"{where}: " + ("answers" if mq["answers"] else mq["problem"]))
    warn_dead_letters(console, mq["namespace"], mq.get("dead_letters") or {})


def warn_dead_letters(console: Console, namespace: str, dead: Mapping[str, Any]) -> None:
    """Say, per sync queue (``broker.dead_letters``), how many messages died and why the first did."""
    for queue, info in dead.items():
        if isinstance(info, dict) and info.get("count"):
            name = config_mod.queue_name(namespace, queue)
            console.warn(
                f"{info['count']} message(s) of {name} were dead-lettered to {name}.dead "
                f"({info.get('reason') or 'no reason given'}); 'inv sync --via broker' re-delivers them."
            )


def stop_own_workers(stack: Stack, stop_servers: bool) -> None:
    """Before removing data, the runner's own workers must go too: they hold the databases."""
    everyone = [*workers.consumers(), workers.relay()]
    running = [w.name for w in everyone if workers.running(stack.settings, w) is not None]
    if not running:
        return
    if not stop_servers:
        raise GuardError(
            f"The runner's workers ({', '.join(running)}) have the databases open; "
            "stop them with 'inv workers.stop', or rerun with --stop-servers."
        )
    if stack.plan:
        stack.console.info("would stop " + ", ".join(running) + " before removing data")
        return
    workers.stop_all(stack.settings, everyone, stack.settings.stop_grace)
    stack.console.warn("stopped " + ", ".join(running) + " before removing data")


def reset_services(
    c: Context, services: tuple[str, ...], no_backup: bool, yes: bool, stop_servers: bool, allow_remote: bool
) -> None:
    def body() -> None:
        stack = stack_of(c, stop_servers, allow_remote)
        chosen = [registry.get(name) for name in services]
        with stack.locked():
            stop_own_workers(stack, stop_servers)
            for service in chosen:

                def action(service: registry.Service = service) -> tuple[bool, str]:
                    stack.guard(service)
                    return True, reset(stack.settings, service, not no_backup, yes, plan=stack.plan)

                stack.run(f"reset.{service.name}", action)

    guarded(body)


def password(c: Context) -> None:
    """Print the seed password alone on one line (only when asked: it is never printed otherwise)."""

    def body() -> None:
        settings = settings_of(c)
        done = manage(settings, registry.publisher(), "seed_password")
        sys.stdout.write(done.stdout.strip() + "\n")

    guarded(body)


def manage_service(c: Context, service: str, args: list[str], allow_remote: bool) -> None:
    """Run ``manage.py <args>`` of a service in its venv, with the runner's database and broker."""

    def body() -> int:
        if not args:
            raise UsageError(
                f"Say which command to run after '--', for example 'inv manage {service} -- shell'."
            )
        stack = stack_of(c, allow_remote=allow_remote)
        svc = registry.get(service)
        stack.check_targets([svc])
        command = manage_command(stack.settings, svc, *args)
        return subprocess.call(
            command, cwd=svc.folder(stack.settings.root), env=child_env(stack.settings, svc)
        )

    code = guarded(body)
    if code:
        raise Exit(code=code)


def servers_report(settings: config_mod.Settings) -> dict[str, dict[str, Any]]:
    """Each service's dev server: its URL and, while the runner's own one runs, its PID."""
    report: dict[str, dict[str, Any]] = {}
    for each in servers.every(settings):
        proc = servers.running(settings, each)
        report[each.service.name] = {"url": each.url, "pid": proc.pid if proc else None}
    return report


def up(
    c: Context,
    service: str | None,
    foreground: bool,
    timeout: float,
    stop_servers: bool,
    allow_remote: bool,
) -> None:
    """Bring the stack to the verified state, then start dev servers, workers and relay."""

    def body() -> int:
        stack = stack_of(c, stop_servers, allow_remote)
        settings = stack.settings
        chosen = servers.choose(settings, service)
        if foreground:
            detached = [s.name for s in servers.everything(settings) if workers.running(settings, s)]
            if detached:
                raise GuardError(
                    f"{', '.join(detached)} already run in the background; stop them with 'inv down' "
                    "before 'inv up --foreground'."
                )
        wanted = [*chosen, *workers.consumers(), workers.relay()]
        alive = {w.name: proc for w in wanted if (proc := workers.running(settings, w)) is not None}
        if not foreground and len(alive) == len(wanted):
            for each in chosen:
                stack.console.info(f"{each.name} already runs (PID {alive[each.name].pid}), kept")
            stack.console.info(
                "everything already runs; nothing changed ('inv seed-all' checks the data again)"
            )
            print_urls(stack.console, chosen)
            return 0
        servers.check_ports(s for s in chosen if servers.running(settings, s) is None)
        run = pipeline.Run(
            given={},
            config=seed_config(c),
            via=str(section(c).get("sync") or "local"),
            sync_timeout=timeout,
        )
        pipeline.seed_all(stack, run)
        servers.resume(stack.console.info)  # those the seeding stopped, at once
        console = stack.console
        if foreground:
            lock = threading.Lock()

            def emit(line: str) -> None:
                with lock:
                    print(line, flush=True)

            return servers.run_foreground(
                settings,
                [*chosen, *workers.consumers(), workers.relay()],
                emit,
                console.info,
                console.color,
                timeout,
                ready=lambda: print_urls(console, chosen, "Ctrl-C stops them all."),
            )
        console.header("up")
        with run_lock(settings):
            started_workers = workers.ensure_running(settings, True, timeout, console.info)
            if not started_workers:
                console.info("the workers and the relay already run (kept)")
            started, kept = servers.start_missing(settings, chosen, console.info)
            try:
                servers.wait_healthy(settings, started, timeout)
            except BaseException:
                servers.stop(settings, [s for s, _ in started])
                raise
        for each, proc in kept:
            console.info(f"{each.name} already runs (PID {proc.pid}), kept")
        if not started and not started_workers:
            console.info("everything already runs; nothing changed")
        print_urls(console, chosen)
        return 0

    code = guarded(body)
    if code:
        raise Exit(code=code)


def print_urls(
    console: Console,
    chosen: list[servers.Server],
    hint: str = "'inv logs --follow' shows their output, 'inv down' stops them.",
) -> None:
    """Per service: its URL, its admin and how to log in."""
    for each in chosen:
        console.info(f"{each.service.name}: {each.url} (admin {each.admin_url}: {servers.LOGIN_HINT})")
    console.info(hint)


def down(c: Context) -> None:
    """Stop everything 'inv up' started: dev servers, workers and relay (PID and start time match)."""

    def body() -> None:
        stack = stack_of(c)
        stopped = servers.stop(stack.settings, servers.everything(stack.settings))
        if stopped:
            stack.console.info("stopped " + ", ".join(w.name for w in stopped))
        else:
            stack.console.info("nothing that 'inv up' starts was running")

    guarded(body)


def logs(c: Context, name: str | None, follow: bool) -> None:
    """Print the logs of the servers, workers and relay, each line prefixed with its name."""

    def body() -> None:
        settings = settings_of(c)
        sources = servers.log_sources(settings, name)
        console = Console()

        def emit(line: str) -> None:
            console._print(line)

        found = servers.print_logs(sources, emit, console.color)
        if not found and not follow:
            console.info("no logs yet: 'inv up' starts the processes that write them")
        if follow:
            try:
                servers.follow(sources, emit, console.color)
            except KeyboardInterrupt:
                return

    guarded(body)


# -- snapshots ----------------------------------------------------------------------------------


@contextlib.contextmanager
def quiet(stack: Stack, services: list[registry.Service]) -> Iterator[None]:
    """Hold the run lock with nothing of the runner writing to ``services``' databases.

    The runner's workers and relay are stopped and started again afterwards; its dev servers are
    paused by the guard (they start again at exit); a foreign process holding a SQLite file is
    refused, or stopped with --stop-servers.
    """
    stack.check_targets(services)  # before any connection
    with run_lock(stack.settings):
        everyone = [*workers.consumers(), workers.relay()]
        running = [w for w in everyone if workers.running(stack.settings, w) is not None]
        if running:
            workers.stop_all(stack.settings, running, stack.settings.stop_grace)
            stack.console.info("stopped " + ", ".join(w.name for w in running) + " for the snapshot")
        try:
            for service in services:
                stack.guard(service)
            yield
        finally:
            for worker in running:
                workers.start(stack.settings, worker)
            if running:
                stack.console.info("started " + ", ".join(w.name for w in running) + " again")


def chosen_services(service: str | None) -> list[registry.Service]:
    return [registry.get(service)] if service else list(registry.SERVICES)


def snapshot_save(
    c: Context, name: str, service: str | None, replace: bool, stop_servers: bool, allow_remote: bool
) -> None:
    def body() -> None:
        stack = stack_of(c, stop_servers, allow_remote)
        services = chosen_services(service)
        snapshots.check_name(name)
        with quiet(stack, services):

            def action() -> tuple[bool, str]:
                waiting = broker_backlog(stack.settings)
                if waiting:
                    raise GuardError(
                        f"{waiting} event(s) wait in this checkout's sync queues and would be in no "
                        "snapshot; apply them first ('inv sync --via broker') and save again."
                    )
                seeds = {name: state.last_seed for name, state in stack.states(services).items()}
                taken = snapshots.save(stack.settings, name, services, seeds, replace=replace)
                return True, f"{', '.join(taken.manifest['services'])} saved ({human_size(taken.size)})"

            stack.run(f"snapshot.save {name}", action)

    guarded(body)


def snapshot_restore(
    c: Context, name: str, service: str | None, stop_servers: bool, allow_remote: bool
) -> None:
    def body() -> None:
        stack = stack_of(c, stop_servers, allow_remote)
        backup = next(((s, p) for n, s, p in snapshots.reset_backups(stack.settings) if n == name), None)
        if backup is not None and not (snapshots.folder_of(stack.settings) / name).exists():
            services = [backup[0]]  # a reset backup: one service's SQLite file
        else:
            backup, taken = None, snapshots.find(stack.settings, name)
            held = taken.manifest.get("services", {})  # by default, every service it holds
            services = (
                chosen_services(service) if service else [s for s in registry.SERVICES if s.name in held]
            )
        with quiet(stack, services):

            def action() -> tuple[bool, str]:
                if backup is not None:
                    snapshots.restore_backup(stack.settings, *backup)
                    done = [backup[0].name]
                else:
                    done = snapshots.restore(stack.settings, taken, services)
                fastpath.forget(stack.settings)  # the next seed-all reads the restored state
                dropped = drop_backlog(stack.settings)
                extra = f"; dropped {dropped} queued message(s) of the undone timeline" if dropped else ""
                return True, f"restored {', '.join(done)}{extra}"

            stack.run(f"snapshot.restore {name}", action)

    guarded(body)


def snapshot_list(c: Context, as_json: bool) -> None:
    def body() -> None:
        settings = settings_of(c)
        taken = snapshots.every(settings)
        backups = snapshots.reset_backups(settings)
        now = time.time()
        if as_json:
            document = {
                "snapshots": [
                    {"name": s.name, "taken_at": s.taken_at, "size": s.size, **s.manifest} for s in taken
                ],
                "reset_backups": [
                    {"name": n, "service": s.name, "size": p.stat().st_size, "taken_at": p.stat().st_mtime}
                    for n, s, p in backups
                ],
            }
            json.dump(document, sys.stdout, indent=2)
            sys.stdout.write("\n")
            return
        console = Console()
        if not taken and not backups:
            console.info("no snapshot yet: 'inv snapshot.save NAME' takes one")
            return
        if taken:
            console.table(
                ("snapshot", "age", "size", "services", "seeded with"),
                [
                    (s.name, human_age(now - s.taken_at), human_size(s.size),
                     ", ".join(s.manifest.get("services", {})), seeded_with(s.manifest.get("seeds", {})))
                    for s in taken
                ],
            )  # fmt: skip
        if backups:
            console.table(
                ("reset backup", "age", "size", "service"),
                [
                    (n, human_age(now - p.stat().st_mtime), human_size(p.stat().st_size), s.name)
                    for n, s, p in backups
                ],
            )

    guarded(body)


def snapshot_delete(c: Context, name: str) -> None:
    def body() -> None:
        stack = stack_of(c)
        taken = snapshots.find(stack.settings, name, damaged=True)  # a damaged one can go too
        with run_lock(stack.settings):

            def action() -> tuple[bool, str]:
                snapshots.delete(stack.settings, taken)
                return True, f"deleted {name}"

            stack.run(f"snapshot.delete {name}", action)

    guarded(body)


def broker_backlog(settings: config_mod.Settings) -> int:
    """Messages waiting in this checkout's sync queues (0 when RabbitMQ does not answer)."""
    try:
        info = queue_states(settings)
    except StackError:
        return 0
    return sum(i.messages for i in info.values() if i is not None)


def drop_backlog(settings: config_mod.Settings) -> int:
    """Drop the messages of this checkout's sync queues and their dead letters; return how many."""
    try:
        return workers.drop_messages(settings)
    except StackError:
        return 0


def seeded_with(seeds: Mapping[str, Any]) -> str:
    """The seed options of a snapshot's services as the runner's flags: ``auth-employees=0, ...``."""
    flag = {(f.owner, f.option): f.flag for f in registry.SEED_FLAGS}
    parts = {
        f"{flag.get((service, k), k)}={v}"
        for service, options in seeds.items()
        if options
        for k, v in options.items()
    }
    return ", ".join(sorted(parts)) or "-"


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def human_age(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f} {unit} ago"
    return f"{max(seconds, 0):.0f} s ago"
