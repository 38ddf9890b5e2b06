"""``seed-all``'s pipeline, generated from the registry: its steps, their order, and the run.

check-rabbit -> install -> migrate every service -> each service's seed in dependency order,
with the sync (and the reconcile of mirrors that follows it) placed before the first service
that needs the publisher (else before verify) -> verify. A verified stack whose fingerprint
still holds skips everything after install.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import fastpath, registry
from devstack.errors import UsageError
from devstack.options import SeedOptions, refuse_shrinking, resolve
from devstack.recorder import write_report
from devstack.stack import Stack
from devstack.verify import expected_counts

SYNC = "sync"
RECONCILE = "reconcile"
VERIFY = "verify"


def seed_steps() -> list[str]:
    """Return the seed, sync and verify steps in the order they run."""
    names: list[str] = []
    for service in registry.SERVICES:
        if SYNC not in names and any(registry.get(n).publishes for n in service.needs):
            names += [SYNC, RECONCILE]
        names.append(f"seed.{service.name}")
    if SYNC not in names:
        names += [SYNC, RECONCILE]
    return [*names, VERIFY]


def steps() -> list[str]:
    """Return every step of ``seed-all`` in order."""
    return ["check-rabbit", "install", *(f"migrate.{s.name}" for s in registry.SERVICES), *seed_steps()]


@dataclass(frozen=True)
class Run:
    """What one ``seed-all`` was asked to do, every value already typed."""

    given: Mapping[str, int | None]
    config: Mapping[str, int]
    via: str = "local"
    offline: bool = False
    rabbit_timeout: float = 0.0
    sync_timeout: float = 60.0
    keep_workers: bool = False
    report: Path | None = None


def seed_all(stack: Stack, run: Run) -> None:
    """Bring every service to the verified state, skipping what is already done.

    With ``stack.plan`` every step is decided the same way and nothing is written.
    """
    if run.offline and run.via == "broker":
        raise UsageError("--offline and --sync broker contradict each other; drop one of them.")
    stack.check_targets()  # before any connection: a refusal is the answer, not a connect error
    stack.offline = run.offline
    started = time.perf_counter()
    stack.console.header("seed-all")
    options = resolve(run.given, run.config)
    counts: dict[str, Any] | None = None
    try:
        with stack.locked(), contextlib.closing(stack):  # workers stop inside the lock
            if run.offline:
                stack.recorder.skip_all(["check-rabbit"], "--offline: not checking RabbitMQ")
            else:
                stack.check_rabbit(run.rabbit_timeout)
            stack.install()
            record = fastpath.load(stack.settings)
            if record is not None:
                options = resolve(run.given, run.config, fastpath.last_seeds(record))
                if options.to_json() == record["options"]:
                    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record["at"]))
                    stack.recorder.skip_all(steps()[2:], f"nothing changed since the run verified at {when}")
                    counts = record["counts"]
                    return
            if not stack.plan:
                fastpath.forget(stack.settings)
            last = stack.cache.last_seeds()
            options = resolve(run.given, run.config, last)
            refuse_shrinking(options, last)  # before anything is written
            stack.migrate_all()
            for step in seed_steps():
                if step == SYNC:
                    stack.sync_via(run.via, run.sync_timeout, run.keep_workers)
                elif step == RECONCILE:
                    stack.reconcile()
                elif step == VERIFY:
                    stack.verify(options)
                else:
                    stack.seed(registry.get(step.removeprefix("seed.")), options)
            stack.close()  # every service process has exited before the fingerprint
            if stack.plan:
                return
            counts = stack.cache.counts()
            states = {name: dataclasses.asdict(state) for name, state in stack.states().items()}
            fastpath.save(stack.settings, options, counts, stack.verified_info, states)
    finally:
        finish(stack, run, summary(stack, options, counts, time.perf_counter() - started))


def summary(
    stack: Stack, options: SeedOptions, counts: dict[str, Any] | None, seconds: float
) -> dict[str, Any]:
    """The run as a document: options, steps, final and expected counts, whether it changed.

    ``counts`` is None when the run failed.
    """
    if stack.plan:
        return {
            "plan": True,
            "seconds": round(seconds, 3),
            "options": options.to_json(),
            "steps": [s.to_json() for s in stack.steps],
            "would_change": stack.recorder.changed(),
        }
    return {
        "ok": counts is not None,
        "seconds": round(seconds, 3),
        "options": options.to_json(),
        "steps": [s.to_json() for s in stack.steps],
        "counts": counts or {},
        "expected": expected_counts(options),
        "changed": stack.recorder.changed(),
    }


def finish(stack: Stack, run: Run, document: dict[str, Any]) -> None:
    """Print the summary and write the report; a report that fails must not hide the real error."""
    if stack.steps:
        stack.recorder.print_summary(document)
    if run.report is None:
        return
    try:
        write_report(run.report, document)
        stack.console.info(f"report written to {run.report}")
    except OSError as exc:
        stack.console.warn(f"could not write the report to {run.report}: {exc.strerror or exc}")
