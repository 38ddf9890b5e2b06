"""The expected state (the registry's rows for the counts used) and the check against it."""

from __future__ import annotations

from collections.abc import Mapping

from devstack import registry
from devstack.options import SeedOptions
from devstack.state import ServiceState


def expected_counts(options: SeedOptions) -> dict[str, dict[str, int]]:
    """Return the row counts every service must hold after seeding with ``options``."""
    return registry.expected_counts(options.counts)


def mismatches(states: Mapping[str, ServiceState], options: SeedOptions) -> list[str]:
    """List every way the stack differs from the expected state, one sentence each."""
    problems: list[str] = []
    for service, expected in expected_counts(options).items():
        state = states.get(service)
        if state is None or not state.exists:
            problems.append(f"{service}: the database does not exist; run 'inv seed-all'.")
            continue
        if state.pending_migrations:
            problems.append(
                f"{service}: {len(state.pending_migrations)} migration(s) pending; "
                f"run 'inv migrate.{service}'."
            )
        if state.counts is None:
            continue
        for model, count in expected.items():
            actual = state.counts.get(model)
            if actual != count:
                problems.append(f"{service}: {model} has {actual} rows, expected {count}.")
        if state.pending_event_total:
            problems.append(
                f"{service}: {state.pending_event_total} sync event(s) not delivered; run 'inv sync'."
            )
        if state.deferred_events:
            problems.append(
                f"{service}: {state.deferred_events} sync event(s) still wait for what they need."
            )
        problems += [f"{service}: {p}" for p in state.problems]
        if not state.integrity_ok and not state.problems:
            problems.append(f"{service}: the integrity check failed.")
    return problems
