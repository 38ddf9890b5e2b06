"""The steps users run (install, migrate, seed, sync, verify), each skipping work already done."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import rabbit, registry, venvs, workers
from devstack.broker import sync_broker
from devstack.commands import manage, manage_json
from devstack.config import Settings
from devstack.console import Console
from devstack.errors import StackError, VerifyError
from devstack.guards import check_writable
from devstack.options import SeedOptions
from devstack.state import UNCOUNTED, ServiceState, read, read_all
from devstack.sync import needs_sync, sync_local
from devstack.verify import expected_counts, mismatches

Outcome = tuple[bool, str]


@dataclass
class StepResult:
    """One step of a run: whether it ran or was skipped (and why), and how long it took."""

    name: str
    status: str
    seconds: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


@dataclass
class Stack:
    """Run steps against the services, caching each service's state between steps."""

    settings: Settings
    console: Console
    stop_servers: bool = False
    steps: list[StepResult] = field(default_factory=list)
    known_counts: dict[str, dict[str, int] | None] | None = None
    stopping: workers.Stopping = field(default_factory=list)
    _states: dict[str, ServiceState] = field(default_factory=dict)
    _fresh: set[str] = field(default_factory=set)

    # -- state ---------------------------------------------------------------------------
    # States come from one ``stack_state`` process per service; after a step writes, the
    # cached state is updated from what the step reported and marked stale, so decisions
    # need no new process and ``verify`` re-reads only what changed.

    def states(
        self, services: Iterable[registry.Service] = registry.SERVICES, fresh: bool = False
    ) -> dict[str, ServiceState]:
        wanted = tuple(services)
        missing = tuple(
            s for s in wanted if s.name not in self._states or (fresh and s.name not in self._fresh)
        )
        if len(missing) > 1:
            self._states.update(read_all(self.settings, missing))
        elif missing:
            self._states[missing[0].name] = read(self.settings, missing[0])
        self._fresh.update(s.name for s in missing)
        return {s.name: self._states[s.name] for s in wanted}

    def state(self, service: registry.Service) -> ServiceState:
        return self.states((service,))[service.name]

    def forget(self, service: registry.Service) -> None:
        self._states.pop(service.name, None)
        self._fresh.discard(service.name)

    def _synced(self, delivered_all: bool) -> None:
        """Update cached states after a sync: the seeds that follow need no new process."""
        auth = self._touched(registry.get("auth"))
        if delivered_all:
            auth.delivered_events += auth.pending_event_total
            auth.pending_events = {}
        else:
            self.forget(registry.get("auth"))
        for consumer in registry.consumers():
            self._touched(consumer).processed_events += 1  # no longer an empty mirror

    def _touched(self, service: registry.Service) -> ServiceState:
        self._fresh.discard(service.name)
        return self._states[service.name]

    # -- running steps -------------------------------------------------------------------

    def run(self, name: str, action: Callable[[], Outcome]) -> StepResult:
        """Run one step, print its outcome and record it for the summary."""
        started = time.perf_counter()
        self.console.start(name)
        try:
            with self.console.progress(name):
                ran, detail = action()
        except StackError:
            self.steps.append(StepResult(name, "failed", time.perf_counter() - started))
            raise
        return self.record(name, ran, time.perf_counter() - started, detail)

    def record(self, name: str, ran: bool, seconds: float, detail: str) -> StepResult:
        """Print a finished step's outcome and keep it for the summary."""
        result = StepResult(name, "ran" if ran else "skipped", seconds, detail)
        self.steps.append(result)
        if ran:
            self.console.ok(name, seconds, detail)
        else:
            self.console.skip(name, detail)
        return result

    def guard(self, service: registry.Service) -> None:
        own = workers.own_pids(self.settings)
        check_writable(self.settings, service, self.stop_servers, report=self.console.warn, exclude=own)

    # -- steps ---------------------------------------------------------------------------

    def check_rabbit(self, timeout: float = 0.0) -> StepResult:
        broker = rabbit.parse(self.settings.broker_url)

        def action() -> Outcome:
            def retry(exc: StackError, left: float) -> None:
                self.console.info(f"waiting for RabbitMQ ({left:.0f} s left): {exc}")

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
        states = self.states(chosen)
        todo = [s for s in chosen if not states[s.name].exists or states[s.name].pending_migrations]
        for service in todo:
            self.guard(service)

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
                    results.append(self.record(name, False, 0.0, "no pending migrations"))
                    continue
                try:
                    seconds = future.result()
                except StackError:
                    self.steps.append(StepResult(name, "failed", 0.0))
                    raise
                state = states[service.name]
                count = "all" if not state.exists else str(len(state.pending_migrations))
                if not state.exists:  # a new database: empty, unseeded, nothing processed
                    state.counts = dict.fromkeys(service.models, 0)
                state.exists, state.pending_migrations = True, []
                self._touched(service)
                results.append(self.record(name, True, seconds, f"applied {count} migration(s)"))
        return results

    def seed(self, service: registry.Service, options: SeedOptions) -> StepResult:
        wanted = options.for_service(service)
        described = ", ".join(f"{k}={v}" for k, v in wanted.items())

        def action() -> Outcome:
            state = self.state(service)
            if state.last_seed == wanted and not state.pending_migrations:
                return False, f"already seeded with {described}"
            self.guard(service)
            report = manage_json(self.settings, service, "seed", *options.seed_args(service))
            state = self._touched(service)
            state.last_seed, state.counts = wanted, report.get("counts", state.counts)
            if report.get("changed") and service.publishes:
                state.pending_events = {**state.pending_events, UNCOUNTED: 1}
            return True, describe_seed(report)

        return self.run(f"seed.{service.name}", action)

    def sync(self) -> StepResult:
        def action() -> Outcome:
            states = self.states()
            if not needs_sync(states):
                return False, "no pending events"
            report = sync_local(self.settings, states, before_write=self.guard)
            self._synced(report.delivered == report.exported)
            return True, report.summary()

        return self.run("sync", action)

    def sync_broker(self, timeout: float, keep_workers: bool) -> StepResult:
        def action() -> Outcome:
            states = self.states()
            if not needs_sync(states):
                return False, "no pending events"
            report = sync_broker(
                self.settings, states, timeout, keep_workers, before_write=self.guard, say=self.console.info
            )
            self.stopping += report.stopping
            self._synced(delivered_all=True)
            return True, report.summary()

        return self.run("sync", action)

    def verify(self, options: SeedOptions) -> StepResult:
        def action() -> Outcome:
            problems = mismatches(self.states(fresh=True), options)
            if problems:
                raise VerifyError(
                    f"The stack is not in the expected state ({len(problems)} problem(s)): "
                    + " ".join(problems)
                )
            return True, "expected counts, no pending events, integrity intact"

        return self.run("verify", action)

    def unchanged_since(self, record: dict[str, Any]) -> None:
        """Record every remaining step as skipped: nothing changed since a verified run."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["at"]))
        reason = f"nothing changed since the run verified at {when}"
        names = [f"migrate.{s.name}" for s in registry.SERVICES]
        names += ["seed.auth", "sync", "seed.workflow", "seed.helpdesk", "verify"]
        for name in names:
            self.steps.append(StepResult(name, "skipped", 0.0, reason))
        self.console.skip("migrate, seed, sync, verify", reason)
        self.known_counts = record["counts"]

    def close(self) -> None:
        """Wait for the workers this run asked to stop (killing them after the grace period)."""
        if self.stopping:
            stopped = workers.finish_stopping(self.settings, self.stopping, self.settings.stop_grace)
            self.stopping = []
            self.console.info("stopped " + ", ".join(w.name for w in stopped))

    # -- reports -------------------------------------------------------------------------

    def last_seeds(self) -> dict[str, dict[str, int] | None]:
        return {name: state.last_seed for name, state in self.states().items()}

    def counts(self) -> dict[str, dict[str, int] | None]:
        return {name: state.counts for name, state in self.states().items()}

    def summary(self, options: SeedOptions, ok: bool, seconds: float) -> dict[str, Any]:
        return {
            "ok": ok,
            "seconds": round(seconds, 3),
            "options": options.to_json(),
            "steps": [s.to_json() for s in self.steps],
            "counts": (self.known_counts or self.counts()) if ok else {},
            "expected": expected_counts(options),
            "changed": any(
                s.status == "ran" and not s.name.startswith(("check", "verify")) for s in self.steps
            ),
        }

    def print_summary(self, summary: dict[str, Any]) -> None:
        self.console.header("Summary")
        self.console.table(
            ("step", "result", "time", "detail"),
            [(s.name, s.status, f"{s.seconds:.2f} s", s.detail) for s in self.steps],
        )
        for service, counts in (summary.get("counts") or {}).items():
            if counts:
                self.console.info(f"{service}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        self.console.info(f"total {summary['seconds']:.2f} s")


def describe_seed(report: dict[str, Any]) -> str:
    """Turn a service's seed report into one line: created and updated rows per model."""
    if not report.get("changed"):
        return "nothing changed"
    parts = []
    for model, numbers in report.get("models", {}).items():
        created, updated = numbers.get("created", 0), numbers.get("updated", 0)
        if created or updated:
            parts.append(f"{model} +{created}" + (f" ~{updated}" if updated else ""))
    return ", ".join(parts) or "options recorded"


def write_report(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
