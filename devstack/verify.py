"""What ``verify`` checks: the seeded rows, mirrors equal to the publisher, events, integrity.

A stack people use holds more than the seed made: rows added through the apps are
legitimate, and so are edits to seeded rows. ``verify`` therefore fails only when something
the seed owns is missing, a mirror differs from the publisher's current state, an event is
pending or parked, or integrity is broken; people's rows and edits are reported as
information. A service that does not report its seeded rows is held to the registry's exact
counts instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from devstack import registry
from devstack.mirrors import MirrorReport
from devstack.options import SeedOptions
from devstack.state import ServiceState


def expected_counts(options: SeedOptions) -> dict[str, dict[str, int]]:
    """Return the row counts each service holds after seeding a fresh stack with ``options``."""
    return registry.expected_counts(options.counts)


@dataclass
class Findings:
    """What ``verify`` found: problems fail it, information does not."""

    problems: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)


def check(
    states: Mapping[str, ServiceState],
    options: SeedOptions,
    mirrors: Mapping[str, MirrorReport] | None = None,
) -> Findings:
    """Compare the stack with what the seed owns and with the publisher; one sentence each."""
    found = Findings()
    expected = expected_counts(options)
    for service in registry.SERVICES:
        name = service.name
        state = states.get(name)
        if state is None or not state.exists:
            found.problems.append(f"{name}: the database does not exist; run 'inv seed-all'.")
            continue
        if state.pending_migrations:
            found.problems.append(
                f"{name}: {len(state.pending_migrations)} migration(s) pending; run 'inv migrate.{name}'."
            )
        if state.counts is None:
            continue
        if state.seeded is None:
            for model, count in expected[name].items():
                actual = state.counts.get(model)
                if actual != count:
                    found.problems.append(f"{name}: {model} has {actual} rows, expected {count}.")
        else:
            _seeded(found, service, state, options)
        if state.pending_event_total:
            found.problems.append(
                f"{name}: {state.pending_event_total} sync event(s) not delivered; run 'inv sync'."
            )
        if state.deferred_events:
            found.problems.append(
                f"{name}: {state.deferred_events} sync event(s) still wait for what they need."
            )
        found.problems += [f"{name}: {p}" for p in state.problems]
        if not state.integrity_ok and not state.problems:
            found.problems.append(f"{name}: the integrity check failed.")
        mirror = (mirrors or {}).get(name)
        if mirror is not None:
            if any(mirror.differences().values()):
                found.problems.append(mirror.describe(done=False) + "; run 'inv sync'.")
            found.problems += [f"{name}: {p}" for p in mirror.problems]
    return found


def _seeded(found: Findings, service: registry.Service, state: ServiceState, options: SeedOptions) -> None:
    name = service.name
    wanted = options.for_service(service)
    last = state.last_seed or {}
    asked = {k: v for k, v in wanted.items() if k != "seed" and last.get(k) != v}
    if not last:
        found.problems.append(f"{name}: the database was never seeded; run 'inv seed-all'.")
        return
    if asked:
        held = ", ".join(f"--{_flag(service, k)}={last.get(k)}" for k in asked)
        flags = ", ".join(f"--{_flag(service, k)}={v}" for k, v in asked.items())
        found.problems.append(f"{name}: seeded with {held}, not {flags}.")
    for model, numbers in (state.seeded or {}).items():
        missing, extra, edited = (int(numbers.get(k, 0)) for k in ("missing", "extra", "edited"))
        if missing:
            owned = int(numbers.get("expected", 0))
            found.problems.append(
                f"{name}: {missing:,} of {owned:,} seeded {model} rows are missing; "
                "'inv seed-all' re-creates them."
            )
        if extra:
            found.info.append(f"{name}: {extra:,} {model} row(s) made by people, kept.")
        if edited:
            found.info.append(
                f"{name}: {edited:,} seeded {model} row(s) edited by people, kept "
                "('inv seed-all --repair' restores the seeded values)."
            )


def _flag(service: registry.Service, option: str) -> str:
    for flag in service.seed_flags:
        if flag.option == option:
            return flag.flag
    return option


def mismatches(states: Mapping[str, ServiceState], options: SeedOptions) -> list[str]:
    """List every way the stack differs from the expected state, one sentence each."""
    return check(states, options).problems
