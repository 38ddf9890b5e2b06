"""Seed options: parsed once, resolved flag > config > last seed of the database > default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from devstack import registry
from devstack.errors import UsageError

DEFAULT_SEED = 7
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class SeedOptions:
    """The counts and random seed one run seeds with."""

    auth_employees: int = 0
    employees: int = 50
    tickets: int = 20
    seed: int = DEFAULT_SEED

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def for_service(self, service: registry.Service) -> dict[str, int]:
        """Return the options as the service's ``manage.py seed`` names them."""
        values = {flag.option: getattr(self, flag.key) for flag in service.seed_flags}
        return {**values, "seed": self.seed}

    def seed_args(self, service: registry.Service) -> list[str]:
        args: list[str] = []
        for name, value in self.for_service(service).items():
            args += [f"--{name}", str(value)]
        return args


def parse_count(flag: str, value: object, maximum: int) -> int:
    """Parse a whole number in ``0..maximum`` or fail naming the flag."""
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


def _flag_name(key: str) -> str:
    return key.replace("_", "-")


def resolve(
    flags: Mapping[str, object],
    config: Mapping[str, Any] | None = None,
    last_seeds: Mapping[str, Mapping[str, int] | None] | None = None,
    service: str | None = None,
    strict_seed: bool = False,
) -> SeedOptions:
    """Resolve every option: CLI flag, then Invoke config, then what the database last got.

    ``flags`` and ``config`` use the runner's keys (``auth_employees``, ``employees``,
    ``tickets``, ``seed``); a value of None means "not given". ``last_seeds`` maps a service
    name to the options of its last seed, so a plain re-run never shrinks or reshuffles data.
    The seed comes from ``service``'s last seed when given; otherwise the services must agree
    on it when ``strict_seed`` is set (a run over every service must not reshuffle any of them).
    """
    config = config or {}
    last_seeds = last_seeds or {}
    values: dict[str, int | None] = {}
    for each in registry.SERVICES:
        last = last_seeds.get(each.name) or {}
        for flag in each.seed_flags:
            values[flag.key] = _pick(flag.key, flag.maximum, flags, config, last.get(flag.option))
    if service is not None:
        own = last_seeds.get(service) or {}
        seeds = [own["seed"]] if own.get("seed") is not None else []
    else:
        seeds = sorted({s["seed"] for s in last_seeds.values() if s and s.get("seed") is not None})
    given = _pick("seed", MAX_SEED, flags, config, None)
    if given is None and strict_seed and len(seeds) > 1:
        which = ", ".join(f"{name} {s['seed']}" for name, s in last_seeds.items() if s and "seed" in s)
        raise UsageError(
            f"The services were last seeded with different seeds ({which}); pass --seed to choose one."
        )
    values["seed"] = given if given is not None else (seeds[0] if seeds else None)
    defaults = SeedOptions()
    return SeedOptions(**{k: v if v is not None else getattr(defaults, k) for k, v in values.items()})


def _pick(
    key: str, maximum: int, flags: Mapping[str, object], config: Mapping[str, Any], last: object
) -> Any:
    for source in (flags.get(key), config.get(key)):
        if source is not None and source != "":
            return parse_count(_flag_name(key), source, maximum)
    return last


def single_service_flags(service: registry.Service, **given: object) -> dict[str, object]:
    """Map a ``seed.<svc>`` task's flags (service option names) to the runner's keys."""
    mapped: dict[str, object] = {"seed": given.get("seed")}
    for flag in service.seed_flags:
        mapped[flag.key] = given.get(flag.option)
    return mapped
