"""Seed options: typed once, resolved flag > config > last seed of the database > default.

The options are the registry's seed flags plus the random seed. Flag values arrive here
already parsed (``devstack.flags`` parses them while Invoke reads the command line); config
values are parsed here, once, with the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from devstack import registry
from devstack.errors import UsageError

SEED_HELP = "random seed of generated data"


class SeedOptions:
    """The counts (one per registry seed flag) and each service's random seed for one run."""

    __slots__ = ("counts", "seeds")

    def __init__(
        self, seed: int = registry.DEFAULT_SEED, seeds: Mapping[str, int] | None = None, **counts: int
    ) -> None:
        """``seed`` is the seed of every service that ``seeds`` does not name."""
        unknown = sorted(set(counts) - {f.key for f in registry.SEED_FLAGS})
        if unknown:
            raise TypeError(f"unknown seed flag(s): {', '.join(unknown)}")
        self.counts: dict[str, int] = {**registry.default_counts(), **counts}
        self.seeds: dict[str, int] = {name: (seeds or {}).get(name, seed) for name in registry.NAMES}

    def __getitem__(self, key: str) -> int:
        return self.counts[key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeedOptions) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __repr__(self) -> str:
        return f"SeedOptions({self.to_json()})"

    def to_json(self) -> dict[str, Any]:
        return {**self.counts, "seeds": dict(self.seeds)}

    @classmethod
    def of(
        cls,
        counts: Mapping[str, int],
        seed: int = registry.DEFAULT_SEED,
        seeds: Mapping[str, int] | None = None,
    ) -> SeedOptions:
        return cls(seed, seeds, **counts)

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> SeedOptions:
        known = {f.key for f in registry.SEED_FLAGS}
        seeds = {str(k): int(v) for k, v in dict(values.get("seeds") or {}).items()}
        return cls.of({k: int(v) for k, v in values.items() if k in known}, seeds=seeds)

    def seed_of(self, service: registry.Service) -> int:
        return self.seeds[service.name]

    def describe_seeds(self) -> str:
        """One seed when every service uses it, else each service's own."""
        if len(set(self.seeds.values())) == 1:
            return str(next(iter(self.seeds.values())))
        return ", ".join(f"{name} {seed}" for name, seed in self.seeds.items())

    def for_service(self, service: registry.Service) -> dict[str, int]:
        """Return the options as the service's ``manage.py seed`` names them."""
        values = {flag.option: self.counts[flag.key] for flag in service.seed_flags}
        return {**values, "seed": self.seeds[service.name]}

    def seed_args(self, service: registry.Service) -> list[str]:
        args: list[str] = []
        for name, value in self.for_service(service).items():
            args += [f"--{name}", str(value)]
        return args


def maximum(key: str) -> int:
    return registry.MAX_SEED if key == "seed" else registry.seed_flag(key).maximum


def parse_count(flag: str, value: object, maximum: int) -> int:
    """Parse a whole number in ``0..maximum`` or fail naming the flag."""
    if isinstance(value, bool):
        raise UsageError(f"--{flag} must be a whole number, got '{value}'.")
    text = str(value).strip()
    try:
        number = int(text)
    except ValueError:
        raise UsageError(f"--{flag} must be a whole number, got '{text}'.") from None
    if number < 0:
        raise UsageError(f"--{flag} must be 0 or more, got {number}.")
    if number > maximum:
        raise UsageError(f"--{flag} can be at most {maximum:,}, got {number:,}.")
    return number


def from_config(config: Mapping[str, Any] | None) -> dict[str, int]:
    """Parse the ``devstack.seed`` config section once; empty values mean "not set"."""
    parsed: dict[str, int] = {}
    for key, value in (config or {}).items():
        if value is None or value == "":
            continue
        if key != "seed" and key not in {f.key for f in registry.SEED_FLAGS}:
            known = ", ".join([f.key for f in registry.SEED_FLAGS] + ["seed"])
            raise UsageError(f"The setting devstack.seed.{key} is unknown; use one of {known}.")
        parsed[key] = parse_count(key.replace("_", "-"), value, maximum(key))
    return parsed


def resolve(
    given: Mapping[str, int | None],
    config: Mapping[str, int] | None = None,
    last_seeds: Mapping[str, Mapping[str, int] | None] | None = None,
) -> SeedOptions:
    """Resolve every option: CLI flag, then config, then what the database last got.

    ``given`` and ``config`` hold typed values by runner key (``employees``, ``seed``...); None
    or a missing key means "not given". ``last_seeds`` maps a service name to the options of its
    last seed, so a plain re-run never shrinks or reshuffles data. A seed given on the command
    line or in config applies to every service; otherwise each service keeps its own last seed.
    """
    config = config or {}
    last_seeds = last_seeds or {}
    counts: dict[str, int] = {}
    for flag in registry.SEED_FLAGS:
        last = (last_seeds.get(flag.owner) or {}).get(flag.option)
        value = _first(given.get(flag.key), config.get(flag.key), last)
        if value is not None:
            counts[flag.key] = value
    chosen = _first(given.get("seed"), config.get("seed"))
    if chosen is not None:
        return SeedOptions.of(counts, seed=chosen)
    own = {name: int(s["seed"]) for name, s in last_seeds.items() if s and s.get("seed") is not None}
    return SeedOptions.of(counts, seeds=own)


def shrinking(options: SeedOptions, last_seeds: Mapping[str, Mapping[str, int] | None]) -> list[str]:
    """Say, one sentence each, where ``options`` asks for fewer seeded rows than a database holds."""
    problems: list[str] = []
    for flag in registry.SEED_FLAGS:
        held = (last_seeds.get(flag.owner) or {}).get(flag.option)
        wanted = options.counts[flag.key]
        if held is not None and wanted < held:
            problems.append(
                f"{flag.owner} holds {held:,} seeded rows for --{flag.flag}; {wanted:,} would leave "
                f"{held - wanted:,} behind: run 'inv reset.{flag.owner}' first, or pass {held:,} or more."
            )
    return problems


def refuse_shrinking(options: SeedOptions, last_seeds: Mapping[str, Mapping[str, int] | None]) -> None:
    """Fail before anything is written when a count would go down."""
    problems = shrinking(options, last_seeds)
    if problems:
        raise UsageError(" ".join(problems))


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)
