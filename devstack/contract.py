"""The written contract of the services' two JSON reports, and validators for them.

Every service answers ``manage.py seed --json`` and ``manage.py stack_state --json`` with one
JSON object on stdout (human notes go to stderr). The shapes below are the one definition of
those objects: ``SeedReport`` and ``StateReport`` are ``TypedDict`` s, so the runner can type
what it reads, and ``validate_seed_report`` / ``validate_state_report`` check a decoded
document against them at run time. Validation is strict about required keys and their types
(an integer is never a boolean, a count is never negative) and tolerant of extra keys, so a
service may report more than the contract asks for. tests/test_contract.py runs every service
of the registry and checks its real reports with these validators, so a change to the contract
is made here, in the services and in the runner's readers (``devstack.state``,
``devstack.stack.describe_seed``) together.

``manage.py seed [counts] [--seed S] --json`` (``SeedReport``)
    ``service``
        The registry name of the service that seeded.
    ``options``
        Every option the run used, defaults included, by the seed command's option name
        (``{"employees": 50, "tickets": 20, "seed": 7}``). The service records them, and
        ``stack_state`` returns them as ``last_seed``; the runner compares them with what it
        wants to decide whether a seed is needed at all.
    ``models``
        One entry per model the seed writes: ``created``, ``updated`` and ``unchanged`` rows.
    ``counts``
        Rows per model after the seed: every model the service counts (the registry's
        ``models``), not only the ones this seed wrote, so it includes every key of ``models``.
    ``changed``
        Whether the run wrote anything; true whenever a model created or updated a row.

``manage.py stack_state --json`` (``StateReport``, read-only)
    ``service``
        The registry name of the service that reports.
    ``database``
        ``vendor`` is Django's vendor name (``"sqlite"``, ``"postgresql"``); ``name`` is the
        database name, the file path on SQLite.
    ``migrations``
        ``pending`` lists the migrations not applied yet as ``"app.name"``, in plan order;
        on a SQLite file that does not exist yet, all of them (the file is not created).
    ``counts``
        Rows per counted model (the registry's ``models``), or ``null`` while their tables
        do not exist yet.
    ``pending_events``
        Sync events recorded in the outbox and not delivered yet, per queue. A publisher
        lists every queue it publishes (0 included); a service that publishes nothing: ``{}``.
    ``delivered_events``
        Optional (publishers report it, a missing key means 0): outbox events marked
        delivered. A consumer with no processed events while this is above 0 lost its mirror.
    ``processed_events``
        Sync events recorded as processed here (0 where the service consumes nothing).
    ``deferred_events``
        Sync events parked here until what they need (e.g. their role) arrives.
    ``last_seed``
        The ``options`` of the last seed run, or ``null`` when the database was never seeded.
    ``integrity``
        ``ok`` is false when a foreign-key or domain check failed; ``problems`` gives one
        sentence per failed check (so ``ok`` true means ``problems`` is empty).
"""

import json
import types
from dataclasses import dataclass
from typing import (
    Annotated,
    Any,
    NotRequired,
    Required,
    TypedDict,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

__all__ = [
    "Count",
    "DatabaseInfo",
    "Integrity",
    "Migrations",
    "ModelRows",
    "SeedReport",
    "ServiceName",
    "StateReport",
    "validate",
    "validate_seed_report",
    "validate_state_report",
]


@dataclass(frozen=True)
class Minimum:
    """An ``Annotated`` rule: the integer is at least ``value``."""

    value: int

    def problem(self, value: int) -> str | None:
        return None if value >= self.value else f"must be {self.value} or more, got {value}"


@dataclass(frozen=True)
class NonEmpty:
    """An ``Annotated`` rule: the string is not empty."""

    def problem(self, value: str) -> str | None:
        return None if value else "must not be empty"


#: A number of rows or events.
Count = Annotated[int, Minimum(0)]
#: A service's registry name.
ServiceName = Annotated[str, NonEmpty()]


class ModelRows(TypedDict):
    """What a seed did to one model's rows."""

    created: Count
    updated: Count
    unchanged: Count


class SeedReport(TypedDict):
    """The document of ``manage.py seed --json``."""

    service: ServiceName
    options: dict[str, int]
    models: dict[str, ModelRows]
    counts: dict[str, Count]
    changed: bool


class DatabaseInfo(TypedDict):
    """Which database a service reads."""

    vendor: Annotated[str, NonEmpty()]
    name: str


class Migrations(TypedDict):
    """The migrations a database still lacks."""

    pending: list[str]


class Integrity(TypedDict):
    """The outcome of a service's foreign-key and domain checks."""

    ok: bool
    problems: list[str]


class StateReport(TypedDict):
    """The document of ``manage.py stack_state --json``."""

    service: ServiceName
    database: DatabaseInfo
    migrations: Migrations
    counts: dict[str, Count] | None
    pending_events: dict[str, Count]
    delivered_events: NotRequired[Count]
    processed_events: Count
    deferred_events: Count
    last_seed: dict[str, int] | None
    integrity: Integrity


def validate_seed_report(doc: object) -> list[str]:
    """Check a decoded ``seed --json`` document; return one sentence per problem (none: valid)."""
    problems = validate(doc, SeedReport)
    if problems or not isinstance(doc, dict):
        return problems
    problems += [
        f'models names "{model}" but counts has no "{model}".'
        for model in doc["models"]
        if model not in doc["counts"]
    ]
    written = [model for model, rows in doc["models"].items() if rows["created"] or rows["updated"]]
    if written and not doc["changed"]:
        problems.append(f"changed is false although {', '.join(written)} created or updated rows.")
    return problems


def validate_state_report(doc: object) -> list[str]:
    """Check a decoded ``stack_state --json`` document; return one sentence per problem."""
    problems = validate(doc, StateReport)
    if problems or not isinstance(doc, dict):
        return problems
    integrity = doc["integrity"]
    if integrity["ok"] and integrity["problems"]:
        problems.append(
            f"integrity.ok is true but integrity.problems lists {len(integrity['problems'])} problem(s)."
        )
    return problems


def validate(doc: object, shape: Any) -> list[str]:
    """Check a decoded JSON object against one of this module's ``TypedDict`` shapes."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return [f"The document must be a JSON object, got {_describe(doc)}."]
    _check(doc, shape, "", problems)
    return problems


# -- the checker: walks the type hints above ---------------------------------------------------

_TYPE_NAMES: dict[type, str] = {bool: "a boolean", int: "an integer", str: "a string"}


def _check(value: object, hint: Any, path: str, problems: list[str]) -> None:
    origin = get_origin(hint)
    if origin in (Required, NotRequired):
        _check(value, get_args(hint)[0], path, problems)
    elif origin is Annotated:
        base, *rules = get_args(hint)
        before = len(problems)
        _check(value, base, path, problems)
        if len(problems) == before:
            for rule in rules:
                problem = rule.problem(value)
                if problem:
                    problems.append(f"{_where(path)} {problem}.")
    elif origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return
        (inner,) = [option for option in options if option is not type(None)]
        _check(value, inner, path, problems)
    elif origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{_where(path)} must be a JSON object, got {_describe(value)}.")
            return
        _, item = get_args(hint)
        for key, member in value.items():
            _check(member, item, f"{path}[{json.dumps(key)}]", problems)
    elif origin is list:
        if not isinstance(value, list):
            problems.append(f"{_where(path)} must be a JSON array, got {_describe(value)}.")
            return
        (item,) = get_args(hint)
        for index, member in enumerate(value):
            _check(member, item, f"{path}[{index}]", problems)
    elif _is_typeddict(hint):
        _check_object(value, hint, path, problems)
    elif hint in _TYPE_NAMES:
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            problems.append(f"{_where(path)} must be {_TYPE_NAMES[hint]}, got {_describe(value)}.")
    else:  # pragma: no cover - a shape of this module uses a type the checker does not know
        raise TypeError(f"The contract checker cannot check {hint!r}.")


def _check_object(value: object, shape: Any, path: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{_where(path)} must be a JSON object, got {_describe(value)}.")
        return
    hints = _hints(shape)
    for key in hints:
        inner = f"{path}.{key}" if path else key
        if key in value:
            _check(value[key], hints[key], inner, problems)
        elif key in shape.__required_keys__:
            problems.append(f"The required key {inner} is missing.")


def _hints(shape: Any) -> dict[str, Any]:
    hints: dict[str, Any] = get_type_hints(shape, include_extras=True)
    return hints


def _is_typeddict(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__required_keys__")


def _where(path: str) -> str:
    return path or "The document"


def _describe(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}
    kind = "null" if value is None else names.get(type(value), type(value).__name__)
    text = json.dumps(value, default=repr)
    if len(text) > 40:
        text = text[:37] + "..."
    return kind if value is None else f"{text} ({kind})"
