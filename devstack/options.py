"""Seed options: typed once, resolved flag > config > last seed of the database > default.

The options are the registry's seed flags plus the random seed. Flag values arrive here
already parsed (``devstack.flags`` parses them while Invoke reads the command line); config
values are parsed here, once, with the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devstack import registry
from devstack.errors import UsageError

SEED_HELP = "random seed of generated data"


class SeedOptions:
    """The counts (one per registry seed flag) and random seed one run seeds with."""

    __slots__ = ("counts", "seed")

    def __init__(self, seed: int = registry.DEFAULT_SEED, **counts: int) -> None:
        unknown = sorted(set(counts) - {f.key for f in registry.SEED_FLAGS})
        if unknown:
            raise TypeError(f"unknown seed flag(s): {', '.join(unknown)}")
        self.counts: dict[str, int] = {**registry.default_counts(), **counts}
        self.seed = seed

    def __getitem__(self, key: str) -> int:
        return self.seed if key == "seed" else self.counts[key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeedOptions) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(tuple(self.to_json().items()))

    def __repr__(self) -> str:
        return "SeedOptions(" + ", ".join(f"{k}={v}" for k, v in self.to_json().items()) + ")"

    def to_json(self) -> dict[str, int]:
        return {**self.counts, "seed": self.seed}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> SeedOptions:
        known = {f.key for f in registry.SEED_FLAGS}
        return cls(seed=int(values["seed"]), **{k: int(v) for k, v in values.items() if k in known})

    def for_service(self, service: registry.Service) -> dict[str, int]:
        """Return the options as the service's ``manage.py seed`` names them."""
        values = {flag.option: self.counts[flag.key] for flag in service.seed_flags}
        return {**values, "seed": self.seed}

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
    service: str | None = None,
    strict_seed: bool = False,
) -> SeedOptions:
    """Resolve every option: CLI flag, then config, then what the database last got.

    ``given`` and ``config`` hold typed values by runner key (``employees``, ``seed``...); None
    or a missing key means "not given". ``last_seeds`` maps a service name to the options of its
    last seed, so a plain re-run never shrinks or reshuffles data. The seed comes from
    ``service``'s last seed when given; otherwise the services must agree on it when
    ``strict_seed`` is set (a run over every service must not reshuffle any of them).
    """
    config = config or {}
    last_seeds = last_seeds or {}
    counts: dict[str, int] = {}
    for flag in registry.SEED_FLAGS:
        last = (last_seeds.get(flag.owner) or {}).get(flag.option)
        value = _first(given.get(flag.key), config.get(flag.key), last)
        if value is not None:
            counts[flag.key] = int(value)
    if service is not None:
        own = last_seeds.get(service) or {}
        seeds = [own["seed"]] if own.get("seed") is not None else []
    else:
        seeds = sorted({s["seed"] for s in last_seeds.values() if s and s.get("seed") is not None})
    chosen = _first(given.get("seed"), config.get("seed"))
    if chosen is None and strict_seed and len(seeds) > 1:
        which = ", ".join(f"{name} {s['seed']}" for name, s in last_seeds.items() if s and "seed" in s)
        raise UsageError(
            f"The services were last seeded with different seeds ({which}); pass --seed to choose one."
        )
    if chosen is None:
        chosen = seeds[0] if seeds else registry.DEFAULT_SEED
    return SeedOptions(seed=int(chosen), **counts)


def _first(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)
