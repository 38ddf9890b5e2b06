"""The steps users run (check-rabbit, install, migrate, seed, sync, verify), each skipping work
already done. The state cache (``cache``) and the step recorder (``recorder``) live apart; the
order of ``seed-all``'s steps comes from ``pipeline``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from devstack import fastpath, mirrors, rabbit, registry, servers, venvs, workers
from devstack.broker import dead_letter_total, dead_letters, sync_broker
from devstack.cache import StateCache
from devstack.commands import manage, manage_json
from devstack.config import Settings
from devstack.console import Console
from devstack.errors import GuardError, StackError, StepError, VerifyError
from devstack.guards import check_target, check_writable
from devstack.lock import run_lock
from devstack.options import SeedOptions
from devstack.recorder import Outcome, Recorder, StepResult
from devstack.state import UNCOUNTED, ServiceState
from devstack.sync import needs_sync, sync_local
from devstack.verify import Findings, check


@dataclass
class Stack:
    """The steps, run against the services through a state cache and a step recorder."""

    settings: Settings
    console: Console
    stop_servers: bool = False
    repair: bool = False
    offline: bool = False
    #: Plan mode: every step decides as a real run would, says "would run" or "would skip" and
    #: why, and writes nothing (no database, venv, lock, record; no worker, no message).
    plan: bool = False
    #: What the last verify said besides passing (people's rows), kept in the verified record.
    verified_info: list[str] = field(default_factory=list)
    #: Services whose database the plan would create (never opened: that would create them).
    created: set[str] = field(default_factory=set)
    stopping: workers.Stopping = field(default_factory=list)
    cache: StateCache = field(init=False)
    recorder: Recorder = field(init=False)

    def __post_init__(self) -> None:
        self.cache = StateCache(self.settings)
        self.recorder = Recorder(self.console, plan=self.plan)

    def locked(self) -> AbstractContextManager[object]:
        """The run lock; a plan takes none (it writes nothing, not even the lock file)."""
        return contextlib.nullcontext() if self.plan else run_lock(self.settings)

    @property
    def steps(self) -> list[StepResult]:
        return self.recorder.steps

    def states(
        self, services: Iterable[registry.Service] = registry.SERVICES, fresh: bool = False
    ) -> dict[str, ServiceState]:
        return self.cache.states(services, fresh)

    def run(self, name: str, action: Callable[[], Outcome]) -> StepResult:
        return self.recorder.run(name, action)

    def check_targets(self, services: Iterable[registry.Service] = registry.SERVICES) -> None:
        """Refuse remote or production databases before any connection is opened."""
        for service in services:
            check_target(self.settings, service)

    def guard(self, service: registry.Service) -> None:
        if self.plan:  # the same refusal a real run would meet, without stopping anything
            try:
                own = workers.own_pids(self.settings, servers.everything(self.settings))  # paused or kept
                check_writable(self.settings, service, exclude=own)
            except GuardError as exc:
                if not self.stop_servers:
                    raise GuardError(f"The real run would refuse: {exc}") from None
                self.console.info(f"would stop what holds {service.name}'s database (--stop-servers)")
            return
        # The runner's own dev server ('inv up') is treated like its workers: never a reason to
        # refuse. It is stopped before the write and started again afterwards, and says so.
        servers.pause(self.settings, service, self.console.warn)
        own = workers.own_pids(self.settings)
        check_writable(self.settings, service, self.stop_servers, report=self.console.warn, exclude=own)

    # -- steps ---------------------------------------------------------------------------

    def check_rabbit(self, timeout: float = 0.0) -> StepResult:
        broker = rabbit.parse(self.settings.broker_url)

        def action() -> Outcome:
            def retry(exc: StackError, left: float) -> None:
                self.console.update(f"waiting for RabbitMQ ({left:.0f} s left): {exc}")

            if self.plan:  # a plan talks to no broker
                return True, f"probe {broker.masked}"
            stages = rabbit.wait(broker, timeout, retry) if timeout > 0 else rabbit.probe(broker)
            for stage in stages:
                self.console.info(f"ok: {stage}")
            return True, f"{broker.masked} answers"

        return self.run("check-rabbit", action)

    def install(
        self, services: Iterable[registry.Service] = registry.SERVICES, force: bool = False
    ) -> StepResult:
        chosen = tuple(services)

        def build(service: registry.Service) -> bool:
            requirements = service.folder(self.settings.root) / "requirements.txt"
            return venvs.build(self.settings.venv_dir(service), requirements, force)

        def action() -> Outcome:
            if self.plan:
                todo = [
                    s.name
                    for s in chosen
                    if venvs.needs_build(
                        self.settings.venv_dir(s), s.folder(self.settings.root) / "requirements.txt", force
                    )
                ]
                if todo:
                    return True, "build " + ", ".join(todo) + (" (--force)" if force else "")
                return False, "virtualenvs match their requirements"
            venvs.find_uv()  # once, before the threads
            with ThreadPoolExecutor(max_workers=len(chosen) or 1) as pool:
                built = [s.name for s, done in zip(chosen, pool.map(build, chosen), strict=True) if done]
            if not built:
                return False, "virtualenvs match their requirements"
            return True, "built " + ", ".join(built)

        return self.run("install", action)

    def migrate(self, service: registry.Service) -> StepResult:
        return self.migrate_all((service,))[0]

    def migrate_all(self, services: Iterable[registry.Service] = registry.SERVICES) -> list[StepResult]:
        """Apply pending migrations, the services' processes in parallel; one step each."""
        chosen = tuple(services)
        when = self.verified_at()  # its fingerprint covers every migration file: none can be pending
        if when is not None:
            reason = f"no pending migrations (nothing changed since the run verified at {when})"
            return [self.recorder.record(f"migrate.{s.name}", False, 0.0, reason) for s in chosen]
        states = self.states(chosen)
        todo = [s for s in chosen if not states[s.name].exists or states[s.name].pending_migrations]
        for service in todo:
            self.guard(service)
        if self.plan:
            return [self._planned_migration(s, states[s.name], s in todo) for s in chosen]

        def migrate(service: registry.Service) -> float:
            started = time.perf_counter()
            manage(self.settings, service, "migrate", "--noinput")
            return time.perf_counter() - started

        if todo:
            self.console.start("migrate", ", ".join(s.name for s in todo))
        with ThreadPoolExecutor(max_workers=len(todo) or 1) as pool, self.console.progress("migrate"):
            futures = {s.name: pool.submit(migrate, s) for s in todo}
            results = []
            for service in chosen:
                name = f"migrate.{service.name}"
                future = futures.get(service.name)
                if future is None:
                    results.append(self.recorder.record(name, False, 0.0, "no pending migrations"))
                    continue
                try:
                    seconds = future.result()
                except StackError:
                    self.recorder.failed(name, 0.0)
                    raise
                state = states[service.name]
                count = "all" if not state.exists else str(len(state.pending_migrations))
                if not state.exists:  # a new database: empty, unseeded, nothing processed
                    state.counts = dict.fromkeys(service.models, 0)
                state.exists, state.pending_migrations = True, []
                self.cache.touched(service)
                results.append(self.recorder.record(name, True, seconds, f"applied {count} migration(s)"))
        return results

    def _planned_migration(self, service: registry.Service, state: ServiceState, due: bool) -> StepResult:
        """Record what migrating ``service`` would do, and update its state as the migration would."""
        name = f"migrate.{service.name}"
        if not due:
            return self.recorder.record(name, False, 0.0, "no pending migrations")
        count = "all" if not state.exists else str(len(state.pending_migrations))
        if not state.exists:  # a new database: empty, unseeded, nothing processed
            state.counts = dict.fromkeys(service.models, 0)
            self.created.add(service.name)
        state.exists, state.pending_migrations = True, []
        return self.recorder.record(name, True, 0.0, f"apply {count} migration(s)")

    def seed(self, service: registry.Service, options: SeedOptions) -> StepResult:
        wanted = options.for_service(service)
        described = ", ".join(f"{k}={v}" for k, v in wanted.items())

        def action() -> Outcome:
            state = self.cache.state(service)
            missing = state.missing_seeded
            if state.last_seed == wanted and not state.pending_migrations and not missing and not self.repair:
                return False, f"already seeded with {described}"
            self.guard(service)
            if self.plan:
                return True, self._planned_seed(service, state, wanted, described)
            args = [*options.seed_args(service), *(["--repair"] if self.repair else [])]
            report = manage_json(self.settings, service, "seed", *args, on_progress=self.console.advance)
            state = self.cache.touched(service)
            state.last_seed, state.counts = wanted, report.get("counts", state.counts)
            state.seeded = None  # unknown until read again
            if report.get("changed") and service.publishes:
                state.pending_events = {**state.pending_events, UNCOUNTED: 1}
            return True, describe_seed(report)

        return self.run(f"seed.{service.name}", action)

    def _planned_seed(
        self, service: registry.Service, state: ServiceState, wanted: dict[str, int], described: str
    ) -> str:
        """Why seeding ``service`` would run; its state is updated as the seed would leave it."""
        if state.last_seed is None:
            why = f"seed with {described}"
        elif state.last_seed != wanted:
            why = f"seed with {described} (last: {', '.join(f'{k}={v}' for k, v in state.last_seed.items())})"
        elif state.missing_seeded:
            why = f"restore {state.missing_seeded} missing seeded row(s)"
        else:
            why = "repair seeded rows people edited (--repair)"
        state.last_seed = wanted
        if service.publishes:
            state.pending_events = {**state.pending_events, UNCOUNTED: 1}
        return why

    def _planned_events(self, states: dict[str, ServiceState]) -> str:
        pending = states[registry.PUBLISHER].pending_events
        if UNCOUNTED in pending:
            return "the events of the seeds before it"
        return f"{sum(pending.values())} pending event(s)"

    def sync(self) -> StepResult:
        def action() -> Outcome:
            states = self.states()
            if not needs_sync(states):
                return False, "no pending events"
            if self.plan:
                self.cache.synced(delivered_all=True)
                return True, f"deliver {self._planned_events(states)}"
            report = sync_local(self.settings, states, before_write=self.guard)
            self.cache.synced(report.delivered == report.exported)
            return True, report.summary()

        return self.run("sync", action)

    def sync_broker(self, timeout: float, keep_workers: bool) -> StepResult:
        def action() -> Outcome:
            states = self.states()
            if not needs_sync(states) and not dead_letter_total(self.settings):
                return False, "no pending events, no dead-lettered events"
            if self.plan:
                self.cache.synced(delivered_all=True)
                events = self._planned_events(states) if needs_sync(states) else "the dead-lettered events"
                return True, f"start the workers, relay {events}, wait until every one is applied"
            report = sync_broker(
                self.settings, states, timeout, keep_workers, before_write=self.guard, say=self.console.info
            )
            self.stopping += report.stopping
            self.cache.synced(delivered_all=True)
            return True, report.summary()

        return self.run("sync", action)

    def sync_via(self, via: str, timeout: float, keep_workers: bool) -> StepResult:
        """Run the sync step with the chosen transport (the broker one checks RabbitMQ first)."""
        if via == "broker":
            if not self.recorder.has("check-rabbit"):
                self.check_rabbit()
            return self.sync_broker(timeout, keep_workers)
        return self.sync()

    def reconcile(self) -> StepResult:
        """Make every consumer's mirrors equal the publisher's current state."""

        def action() -> Outcome:
            if self.plan:
                return self._planned_reconcile()
            reports = mirrors.reconcile(self.settings, self._mirrored(), check=False, before_write=self.guard)
            for name in reports:
                self.cache.forget(registry.get(name))
            problems = [f"{name}: {p}" for name, r in reports.items() for p in r.problems]
            if problems:
                raise StepError("Some mirror rows could not be repaired: " + " ".join(problems))
            changed = [r for r in reports.values() if not r.in_step]
            if not changed:
                return False, f"mirrors match {registry.PUBLISHER}"
            return True, "; ".join(r.describe(done=True) for r in changed)

        return self.run("reconcile", action)

    def _planned_reconcile(self) -> Outcome:
        """Whether the reconcile would repair mirrors, judged by reading them now.

        After a planned sync the mirrors are compared again by the real run; the plan assumes the
        sync brings them up to date. Databases the plan would create are not opened (that would
        create them): their mirrors are filled by the sync, or here from auth's snapshot.
        """
        if any(s.name == "sync" and s.status == "would run" for s in self.steps):
            return False, "the sync brings the mirrors up to date (compared again after it)"
        new = [c.name for c in registry.consumers() if c.name in self.created]
        if new and self.states()[registry.PUBLISHER].exists:
            return True, f"fill the mirrors of {', '.join(new)} from {registry.PUBLISHER}'s snapshot"
        checked = [c for c in self._mirrored() if c.name not in self.created]
        reports = mirrors.reconcile(self.settings, checked, check=True)
        changed = [r for r in reports.values() if not r.in_step]
        if not changed:
            return False, f"mirrors match {registry.PUBLISHER}"
        return True, "; ".join(r.describe(done=False) for r in changed)

    def _mirrored(self) -> list[registry.Service]:
        """The consumers whose mirrors can be compared: their database and the publisher's exist."""
        states = self.states()
        if not states[registry.PUBLISHER].exists:
            return []
        return [
            c for c in registry.consumers() if states[c.name].exists and not states[c.name].pending_migrations
        ]

    def check(self, options: SeedOptions) -> Findings:
        """Everything ``verify`` looks at, read fresh; nothing is written."""
        states = self.states(fresh=True)
        reports = mirrors.reconcile(self.settings, self._mirrored(), check=True)
        return self.check_dead_letters(check(states, options, reports))

    def check_dead_letters(self, found: Findings) -> Findings:
        """Add the dead-lettered events of this checkout's queues to ``found`` (as problems)."""
        if self.offline:
            found.info.append(f"{BROKER_INFO[0]} (--offline): dead-lettered events not checked.")
            return found
        try:
            dead = dead_letters(self.settings)
        except StackError as exc:
            found.info.append(f"{BROKER_INFO[1]}: {exc}")
            return found
        for queue, entry in dead.items():
            if entry.get("count"):
                why = f" ({entry['reason']})" if entry.get("reason") else ""
                found.problems.append(
                    f"{queue}: {entry['count']} event(s) dead-lettered{why}; fix the cause, then "
                    "'inv sync --via broker' re-delivers them."
                )
        return found

    def verified_at(self, options: SeedOptions | None = None) -> str | None:
        """When the last verified run left the stack's files exactly as they are now (with
        ``options``, when given), say when; else None. See ``fastpath``: any write to a database
        changes its fingerprint, so nothing the databases hold can have changed since."""
        record = fastpath.load(self.settings)
        if record is None or (options is not None and options.to_json() != record["options"]):
            return None
        self.verified_info = [str(line) for line in record.get("info") or []]
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["at"]))

    def verify(self, options: SeedOptions, unchanged_since: str | None = None) -> StepResult:
        """Check the stack; ``unchanged_since`` (see :meth:`verified_at`) limits it to what lives
        outside the databases: the dead letters on the broker."""

        def action() -> Outcome:
            if self.plan:
                return True, "check seeded rows, mirrors, pending and dead-lettered events"
            if unchanged_since is not None:
                found = self.check_dead_letters(Findings(info=list(self.verified_info)))
            else:
                found = self.check(options)
                self.verified_info = [line for line in found.info if not line.startswith(BROKER_INFO)]
            for line in found.info:
                self.console.info(line)
            if found.problems:
                fastpath.forget(self.settings)  # a failed check must never be skipped later
                raise VerifyError(
                    f"The stack is not in the expected state ({len(found.problems)} problem(s)): "
                    + " ".join(found.problems)
                )
            if unchanged_since is not None:
                dead = "" if any(line.startswith(BROKER_INFO) for line in found.info) else "; no dead letters"
                return True, f"databases unchanged since the run verified at {unchanged_since}{dead}"
            return True, f"seeded rows present, mirrors match {registry.PUBLISHER}, no pending events"

        return self.run("verify", action)

    def close(self) -> None:
        """Wait for the workers this run asked to stop (killing them after the grace period)."""
        if self.stopping:
            stopped = workers.finish_stopping(self.settings, self.stopping, self.settings.stop_grace)
            self.stopping = []
            self.console.info("stopped " + ", ".join(w.name for w in stopped))


#: How the lines about the broker that verify could not ask begin (they are not kept in the record).
BROKER_INFO = ("RabbitMQ not asked", "dead-lettered events not checked")


def describe_seed(report: dict[str, Any]) -> str:
    """Turn a service's seed report into one line: rows created, updated and repaired per model."""
    if not report.get("changed"):
        return "nothing changed"
    parts = []
    for model, numbers in report.get("models", {}).items():
        done = [f"{numbers[k]:,} {k}" for k in ("created", "updated", "repaired") if numbers.get(k)]
        if done:
            parts.append(f"{model} " + ", ".join(done))
    return "; ".join(parts) or "options recorded"
