"""Seed systems, roles, users and HDTS employees idempotently.

Every step writes rows keyed on natural keys with bulk writes, records the
matching outbox events itself (bulk writes fire no signals) and returns a
report. `run_seed` runs all steps in order in one transaction.

The database is a living environment: people add, edit and delete rows in the
admin. The seed owns its fixed systems, roles, users and role links, and the
employees MA0001..MA<8 + employees> of its last run (the SeedMark). A missing
seeded row is created again. A stored seeded row is compared with what the last
seed wrote under its key (the *reference*, generated again from the SeedMark's
options): equal means nobody edited it, so it gets the new values; different
means a person edited it, so it is kept unless `repair`. Rows the seed does not
own are never written.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction

from . import outbox
from .errors import SeedError
from .models import Employee, Role, SeedMark, Status, System, User, UserSystemRole
from .passwords import PasswordSource
from .seed_data import (
    ADMIN_ROLE,
    DEPARTMENTS,
    FIRST_NAMES,
    FIXED_EMPLOYEES,
    HDTS_ROLES,
    HDTS_USERS,
    LAST_NAMES,
    MAX_EMPLOYEES,
    ROLE_DESCRIPTIONS,
    STATUS_WEIGHTS,
    SYSTEMS,
    TTS_ROLES,
    TTS_USERS,
    SeedEmployee,
    SeedUser,
    admin_user,
)
from .upsert import BATCH_SIZE, refetch, update_rows

SERVICE = "auth"
DEFAULT_SEED = 7
MODEL_NAMES: tuple[str, ...] = ("System", "Role", "User", "UserSystemRole", "Employee")
MAX_EXTRA_EMPLOYEES = MAX_EMPLOYEES - len(FIXED_EMPLOYEES)
INTEGER = re.compile(r"[+-]?\d+")
LINK_SETTINGS: dict[str, Any] = {"is_deployed": True}
SEED_MARK_NAME = "seed"
Row = dict[str, Any]


class Unknown:
    """Stand for the values a seeded row got when no SeedMark says which seed wrote them."""

    def __repr__(self) -> str:
        """Return a short name for debugging."""
        return "UNKNOWN"


#: The reference of a seeded row whose last seeded values are unknown (no SeedMark).
UNKNOWN = Unknown()
#: What the last seed wrote under a key: its row, UNKNOWN, or None when the key is not the seed's.
Reference = Row | Unknown | None


@dataclass(frozen=True)
class LastSeed:
    """Hold the options of the last `seed` run, read from the SeedMark."""

    employees: int
    seed: int

    @classmethod
    def from_options(cls, options: Any) -> LastSeed | None:
        """Return the options as a LastSeed, or None when they are not a seed's options."""
        if not isinstance(options, dict):
            return None
        try:
            return cls(int(options["employees"]), int(options["seed"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class ModelReport:
    """Count what a seed did to the seeded rows of one model.

    `created`: missing seeded rows written; `updated`: rows untouched since the last seed
    given the new values; `repaired`: rows people edited given their seeded values back
    (`--repair`); `kept`: rows people edited left as they are; `unchanged`: rows that
    already hold the seed's values.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: int = 0
    kept: int = 0

    def add(self, other: ModelReport) -> None:
        """Add another report's counts to this one."""
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.repaired += other.repaired
        self.kept += other.kept

    @property
    def changed(self) -> bool:
        """Tell whether any row was written."""
        return bool(self.created or self.updated or self.repaired)

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a JSON-ready mapping."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "repaired": self.repaired,
            "kept": self.kept,
        }


@dataclass
class SyncResult:
    """Hold the report and the primary keys of every seeded row, written or not."""

    report: ModelReport = field(default_factory=ModelReport)
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    pk_by_key: dict[tuple[Any, ...], int] = field(default_factory=dict)

    @property
    def changed_ids(self) -> list[int]:
        """Return the ids of created, updated and repaired rows."""
        return self.created_ids + self.updated_ids


@dataclass
class SeedReport:
    """Report what one or more seed steps did."""

    models: dict[str, ModelReport] = field(default_factory=dict)
    events: int = 0
    notes: list[str] = field(default_factory=list)

    def model(self, name: str) -> ModelReport:
        """Return the report of a model, creating it empty."""
        return self.models.setdefault(name, ModelReport())

    def merge(self, other: SeedReport) -> None:
        """Add another step's report to this one."""
        for name, report in other.models.items():
            self.model(name).add(report)
        self.events += other.events
        self.notes.extend(other.notes)

    @property
    def changed(self) -> bool:
        """Tell whether any row was created or updated."""
        return any(report.changed for report in self.models.values())

    def lines(self) -> list[str]:
        """Describe the report in human text, one line per model."""
        out = [
            f"{name}: {r.created} created, {r.updated} updated, {r.repaired} repaired, {r.kept} kept, "
            f"{r.unchanged} unchanged"
            for name, r in self.models.items()
        ]
        out.append(f"Outbox: {self.events} sync events recorded.")
        out.extend(self.notes)
        if not self.changed:
            out.append("Nothing to do: already seeded.")
        return out

    def note_kept(self) -> None:
        """Add a note when rows people edited were kept."""
        kept = sum(report.kept for report in self.models.values())
        if kept:
            self.notes.append(
                f"Kept {kept} seeded rows people edited; pass --repair to give them their seeded values back."
            )


@dataclass
class SeedOutcome:
    """Hold the result of a full `seed` run (the contract's JSON document)."""

    options: dict[str, int]
    report: SeedReport
    counts: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """Return the JSON document of the contract."""
        return {
            "service": SERVICE,
            "options": self.options,
            "models": {name: self.report.model(name).as_dict() for name in MODEL_NAMES},
            "counts": self.counts,
            "changed": self.report.changed,
        }


@dataclass(frozen=True)
class Policy:
    """Say what a run may overwrite: `last` is the last seed (None: no SeedMark), `repair` edits."""

    last: LastSeed | None = None
    repair: bool = False

    def fixed(self, rows: Sequence[Row]) -> list[Reference]:
        """Return the references of fixed rows: the same rows, since fixed data has no seed."""
        if self.last is None:
            return [UNKNOWN] * len(rows)
        return list(rows)


def outcome(stored: tuple[Any, ...] | None, wanted: tuple[Any, ...], reference: Any, repair: bool) -> str:
    """Decide what a seed does to one seeded key; return the ModelReport field it counts in.

    Missing rows are created; rows already right are unchanged; rows holding what the last
    seed wrote get the new values; rows people edited are kept, or repaired with `repair`;
    rows under keys the last seed did not own (people's rows) are always kept.
    """
    if stored is None:
        return "created"
    if stored == wanted:
        return "unchanged"
    if isinstance(reference, tuple) and stored == reference:
        return "updated"
    if reference is not None and repair:
        return "repaired"
    return "kept"


def sync_rows(
    model: type[models.Model],
    rows: Sequence[Row],
    key: Sequence[str],
    references: Sequence[Reference],
    repair: bool = False,
    on_create: Callable[[], dict[str, Any]] | None = None,
) -> SyncResult:
    """Create missing rows and update the rows :func:`outcome` allows, keyed on `key`.

    Each row maps field attnames (e.g. `system_id`) to values; every non-key field in it is
    managed. `references` holds, per row, what the last seed wrote under its key. `on_create`
    supplies extra values for new rows only (e.g. a password hash).
    """
    result = SyncResult()
    if not rows:
        return result
    fields = [name for name in rows[0] if name not in key]
    existing: dict[tuple[Any, ...], models.Model] = {}
    first_values = sorted({row[key[0]] for row in rows}, key=str)
    for batch in outbox.chunked(first_values):
        for obj in model._default_manager.filter(**{f"{key[0]}__in": batch}):
            existing[tuple(getattr(obj, name) for name in key)] = obj
    to_create: list[models.Model] = []
    to_update: list[models.Model] = []
    extra: dict[str, Any] | None = None
    for row, reference in zip(rows, references, strict=True):
        row_key = tuple(row[name] for name in key)
        obj = existing.get(row_key)
        if obj is None:
            if extra is None:
                extra = on_create() if on_create else {}
            to_create.append(model(**row, **extra))
            continue
        result.pk_by_key[row_key] = obj.pk
        wanted = tuple(row[name] for name in fields)
        stored = tuple(getattr(obj, name) for name in fields)
        last = wanted if reference is row else reference
        if isinstance(last, dict):
            last = tuple(last[name] for name in fields)
        done = outcome(stored, wanted, last, repair)
        setattr(result.report, done, getattr(result.report, done) + 1)
        if done in ("updated", "repaired"):
            for name in fields:
                setattr(obj, name, row[name])
            to_update.append(obj)
    if to_create:
        model._default_manager.bulk_create(to_create, batch_size=BATCH_SIZE)
        if any(obj.pk is None for obj in to_create):
            refetch(model, to_create, key)
        for obj in to_create:
            result.pk_by_key[tuple(getattr(obj, name) for name in key)] = obj.pk
        result.created_ids = [obj.pk for obj in to_create]
        result.report.created = len(to_create)
    if to_update:
        update_rows(model, to_update, fields)
        result.updated_ids = [obj.pk for obj in to_update]
    return result


def parse_int(value: object, option: str) -> int:
    """Parse an integer option given as int or text, or raise SeedError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not INTEGER.fullmatch(text):
        raise SeedError(f"{option} must be a whole number, got {value!r}; pass e.g. {option} 10.")
    return int(text)


def parse_count(value: object, option: str, maximum: int) -> int:
    """Parse a count between 0 and `maximum`, or raise SeedError."""
    count = parse_int(value, option)
    if count < 0:
        raise SeedError(f"{option} must be 0 or more, got {count}; pass a non-negative count.")
    if count > maximum:
        raise SeedError(
            f"{option} must be at most {maximum} so that the {len(FIXED_EMPLOYEES)} fixed and the "
            f"generated employees fit company ids MA0001-MA{MAX_EMPLOYEES}, got {count}; "
            "pass a smaller count."
        )
    return count


def parse_employee_count(value: object, option: str = "--employees") -> int:
    """Parse the number of extra employees to generate."""
    return parse_count(value, option, MAX_EXTRA_EMPLOYEES)


def system_ids(slugs: Sequence[str]) -> dict[str, int]:
    """Return the ids of systems by slug, or raise SeedError when one is missing."""
    found = dict(System.objects.filter(slug__in=slugs).values_list("slug", "id"))
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        raise SeedError(f"System {', '.join(missing)} is missing; run seed_systems first.")
    return found


def fixed_role_pairs() -> list[tuple[str, str]]:
    """Return every seeded role as (system slug, role name)."""
    return (
        [(slug, ADMIN_ROLE) for slug, _ in SYSTEMS]
        + [("tts", name) for name in TTS_ROLES]
        + [("hdts", name) for name in HDTS_ROLES]
    )


def fixed_user_entries() -> list[tuple[str, SeedUser]]:
    """Return every seeded user with the slug of the system it holds a role in."""
    return (
        [(slug, admin_user(slug)) for slug, _ in SYSTEMS]
        + [("tts", user) for user in TTS_USERS]
        + [("hdts", user) for user in HDTS_USERS]
    )


def user_values(user: SeedUser) -> Row:
    """Return the values the seed writes for a user (the email is the key)."""
    return {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "department": user.department,
        "company_id": user.company_id,
        "status": Status.APPROVED.value,
        "is_staff": user.is_staff,
        "is_active": True,
    }


def link_values() -> Row:
    """Return the values the seed writes for a user-role link."""
    return {"is_active": True, "settings": dict(LINK_SETTINGS)}


def employee_values(employee: SeedEmployee) -> Row:
    """Return the values the seed writes for an employee (the company id is the key)."""
    return {
        "email": employee.email,
        "username": employee.username,
        "first_name": employee.first_name,
        "last_name": employee.last_name,
        "department": employee.department,
        "status": employee.status,
    }


def seed_roles(pairs: Sequence[tuple[str, str]], policy: Policy | None = None) -> SyncResult:
    """Create or update roles given as (system slug, role name) pairs."""
    policy = policy or Policy()
    ids = system_ids(sorted({slug for slug, _ in pairs}))
    rows = [
        {"system_id": ids[slug], "name": name, "description": ROLE_DESCRIPTIONS[(slug, name)]}
        for slug, name in pairs
    ]
    return sync_rows(Role, rows, ("system_id", "name"), policy.fixed(rows), policy.repair)


def seed_users(
    entries: Sequence[tuple[str, SeedUser]], passwords: PasswordSource, policy: Policy | None = None
) -> SeedReport:
    """Create or update users and their role links, given as (system slug, user) pairs."""
    policy = policy or Policy()
    ids = system_ids(sorted({slug for slug, _ in entries}))
    role_ids = {
        (slug, name): role_id
        for slug, name, role_id in Role.objects.filter(system_id__in=ids.values()).values_list(
            "system__slug", "name", "id"
        )
    }
    missing = sorted({f"{slug} {u.role}" for slug, u in entries if (slug, u.role) not in role_ids})
    if missing:
        raise SeedError(f"Role {', '.join(missing)} is missing; run the earlier seed steps first.")
    user_rows = [{"email": u.email, **user_values(u)} for _, u in entries]
    users = sync_rows(
        User,
        user_rows,
        ("email",),
        policy.fixed(user_rows),
        policy.repair,
        on_create=lambda: {"password": passwords.hashed()},
    )
    link_rows = [
        {
            "user_id": users.pk_by_key[(u.email,)],
            "system_id": ids[slug],
            "role_id": role_ids[(slug, u.role)],
            **link_values(),
        }
        for slug, u in entries
    ]
    links = sync_rows(
        UserSystemRole, link_rows, ("user_id", "system_id", "role_id"), policy.fixed(link_rows), policy.repair
    )
    report = SeedReport(models={"User": users.report, "UserSystemRole": links.report})
    report.events = outbox.record_changes(outbox.affected(users=users.changed_ids, links=links.changed_ids))
    return report


def seed_systems(passwords: PasswordSource | None = None, policy: Policy | None = None) -> SeedReport:
    """Seed the four systems, their Admin roles and one admin user each."""
    passwords = passwords or PasswordSource()
    policy = policy or Policy()
    with transaction.atomic():
        rows = [{"slug": slug, "name": name} for slug, name in SYSTEMS]
        systems = sync_rows(System, rows, ("slug",), policy.fixed(rows), policy.repair)
        roles = seed_roles([(slug, ADMIN_ROLE) for slug, _ in SYSTEMS], policy)
        report = SeedReport(models={"System": systems.report, "Role": roles.report})
        report.events = outbox.record_changes(
            outbox.affected(systems=systems.changed_ids, roles=roles.changed_ids)
        )
        report.merge(seed_users([(slug, admin_user(slug)) for slug, _ in SYSTEMS], passwords, policy))
    return report


def seed_system_users(
    slug: str,
    role_names: Sequence[str],
    users: Sequence[SeedUser],
    passwords: PasswordSource,
    policy: Policy | None = None,
) -> SeedReport:
    """Seed the extra roles and the fixed users of one system."""
    with transaction.atomic():
        roles = seed_roles([(slug, name) for name in role_names], policy)
        report = SeedReport(models={"Role": roles.report})
        report.events = outbox.record_changes(outbox.affected(roles=roles.changed_ids))
        report.merge(seed_users([(slug, user) for user in users], passwords, policy))
    return report


def seed_tts(passwords: PasswordSource | None = None, policy: Policy | None = None) -> SeedReport:
    """Seed the TTS roles Asset Manager and Budget Manager and the 4 TTS users."""
    return seed_system_users("tts", TTS_ROLES, TTS_USERS, passwords or PasswordSource(), policy)


def seed_hdts(passwords: PasswordSource | None = None, policy: Policy | None = None) -> SeedReport:
    """Seed the HDTS roles Employee and Ticket Coordinator and the 5 HDTS users."""
    return seed_system_users("hdts", HDTS_ROLES, HDTS_USERS, passwords or PasswordSource(), policy)


def generated_employees(count: int, seed: int) -> Iterator[SeedEmployee]:
    """Yield `count` extra employees, drawn in order so a prefix never depends on `count`."""
    rng = random.Random(seed)
    statuses = [status for status, _ in STATUS_WEIGHTS]
    weights = [weight for _, weight in STATUS_WEIGHTS]
    for number in range(len(FIXED_EMPLOYEES) + 1, len(FIXED_EMPLOYEES) + count + 1):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        department = rng.choice(DEPARTMENTS)
        status = rng.choices(statuses, weights)[0]
        handle = f"{first}.{last}.{number:04d}".lower()
        yield SeedEmployee(
            company_id=f"MA{number:04d}",
            email=f"{handle}@example.com",
            username=handle,
            first_name=first,
            last_name=last,
            department=department,
            status=status,
        )


def all_employees(count: int, seed: int) -> Iterator[SeedEmployee]:
    """Yield the fixed employees, then the generated ones."""
    yield from FIXED_EMPLOYEES
    yield from generated_employees(count, seed)


def employee_rows(count: int, seed: int) -> Iterator[Row]:
    """Yield the rows of the fixed and `count` generated employees, keyed on company_id."""
    for employee in all_employees(count, seed):
        yield {"company_id": employee.company_id, **employee_values(employee)}


def with_reference(rows: Iterable[Row], seed: int, last: LastSeed | None) -> Iterator[tuple[Row, Reference]]:
    """Pair each employee row with what the last seed wrote under its company id.

    Without a SeedMark every row's reference is UNKNOWN; rows beyond the last seed's count
    have none (None: the key was not the seed's); with the same seed, a row is its own reference.
    """
    owned = None if last is None else len(FIXED_EMPLOYEES) + last.employees
    previous = None if last is None or last.seed == seed else employee_rows(last.employees, last.seed)
    for index, row in enumerate(rows, start=1):
        if owned is None:
            yield row, UNKNOWN
        elif index > owned:
            yield row, None
        elif previous is None:
            yield row, row
        else:
            yield row, next(previous)


@contextmanager
def quiet_queries(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Log no queries inside the block, then restore the query logging as it was.

    Django keeps every query in `connection.queries_log` while `settings.DEBUG` (or the
    connection's `force_debug_cursor`) is on; thousands of seed statements cost time and memory.
    """
    connection = connections[using]
    forced, debug = connection.force_debug_cursor, settings.DEBUG
    connection.force_debug_cursor = False
    settings.DEBUG = False
    try:
        yield
    finally:
        settings.DEBUG = debug
        connection.force_debug_cursor = forced


def insert_new_rows(model: type[models.Model], names: Sequence[str], rows: list[list[Any]]) -> None:
    """Insert rows (values in `names` order) with one statement run, without model instances.

    PostgreSQL (psycopg 3) gets `COPY ... FROM STDIN`, other databases one prepared INSERT run
    with `executemany`. Text columns store the values as they are (what Django stores for
    `str`); any other column goes through the field's `get_db_prep_save`, as in `bulk_create`.
    No signals, like `bulk_create`; database errors surface as Django's (e.g. IntegrityError).
    """
    connection = connections[router.db_for_write(model)]
    fields = [model._meta.get_field(name) for name in names]
    for index, column in enumerate(fields):
        if column.get_internal_type() not in ("CharField", "TextField"):
            prepare = column.get_db_prep_save
            for row in rows:
                row[index] = prepare(row[index], connection)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(column.column) for column in fields)
    with connection.cursor() as cursor:
        copy = getattr(cursor.cursor, "copy", None)
        if connection.vendor == "postgresql" and copy is not None:
            with connection.wrap_database_errors, copy(f"COPY {table} ({columns}) FROM STDIN") as stream:
                for row in rows:
                    stream.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def sync_employees(
    rows: Sequence[Row],
    references: Sequence[Reference],
    repair: bool,
    on_create: Callable[[], dict[str, Any]],
) -> SyncResult:
    """Do what :func:`sync_rows` does for employees keyed on `company_id`, with fewer objects.

    Stored rows are read as values; missing rows are inserted by :func:`insert_new_rows` and
    their ids read back by company id, so `created_ids` (and the outbox events recorded from
    them) are the same; rows :func:`outcome` allows are updated as in sync_rows.
    """
    result = SyncResult()
    if not rows:
        return result
    fields = [name for name in rows[0] if name != "company_id"]
    stored: dict[str, tuple[int, tuple[Any, ...]]] = {}
    for batch in outbox.chunked(sorted({row["company_id"] for row in rows})):
        found = (
            Employee.objects.filter(company_id__in=batch).order_by().values_list("company_id", "pk", *fields)
        )
        for company_id, pk, *values in found:
            stored[company_id] = (pk, tuple(values))
    new_rows: list[Row] = []
    to_update: list[models.Model] = []
    for row, reference in zip(rows, references, strict=True):
        key = row["company_id"]
        if key not in stored:
            new_rows.append(row)
            continue
        pk, current = stored[key]
        result.pk_by_key[(key,)] = pk
        wanted = tuple(row[name] for name in fields)
        last = wanted if reference is row else reference
        if isinstance(last, dict):
            last = tuple(last[name] for name in fields)
        done = outcome(current, wanted, last, repair)
        setattr(result.report, done, getattr(result.report, done) + 1)
        if done in ("updated", "repaired"):
            to_update.append(Employee(pk=pk, **row))
    if new_rows:
        extra = on_create()
        names = [*new_rows[0], *extra]
        insert_new_rows(Employee, names, [[*row.values(), *extra.values()] for row in new_rows])
        keys = [row["company_id"] for row in new_rows]
        pks: dict[str, int] = {}
        for batch in outbox.chunked(keys):
            pks.update(Employee.objects.filter(company_id__in=batch).values_list("company_id", "pk"))
        result.created_ids = [pks[key] for key in keys]
        result.pk_by_key.update(((key,), pks[key]) for key in keys)
        result.report.created = len(new_rows)
    if to_update:
        update_rows(Employee, to_update, fields)
        result.updated_ids = [obj.pk for obj in to_update]
    return result


def seed_employees(
    count: int = 0,
    seed: int = DEFAULT_SEED,
    passwords: PasswordSource | None = None,
    policy: Policy | None = None,
) -> SeedReport:
    """Seed the 8 fixed HDTS employees plus `count` generated ones (deterministic by seed)."""
    count = parse_employee_count(count, "--count")
    passwords = passwords or PasswordSource()
    policy = policy or Policy()
    report = SeedReport(models={"Employee": ModelReport()})
    with transaction.atomic(), quiet_queries(router.db_for_write(Employee)):
        paired = with_reference(employee_rows(count, seed), seed, policy.last)
        for batch in outbox.chunked(paired, BATCH_SIZE):
            result = sync_employees(
                [row for row, _ in batch],
                [reference for _, reference in batch],
                policy.repair,
                on_create=lambda: {"password": passwords.hashed()},
            )
            report.model("Employee").add(result.report)
            report.events += outbox.record_changes(outbox.Keys(employees=set(result.changed_ids)))
        extra = Employee.objects.count() - len(FIXED_EMPLOYEES) - count
    if extra > 0:
        report.notes.append(
            f"{extra} employees beyond the {len(FIXED_EMPLOYEES) + count} seeded ones are not the seed's; "
            "they were left alone."
        )
    return report


def model_counts() -> dict[str, int]:
    """Count the rows of every seeded model."""
    models = (System, Role, User, UserSystemRole, Employee)
    return {name: model.objects.count() for name, model in zip(MODEL_NAMES, models, strict=True)}


def read_last_seed() -> LastSeed | None:
    """Return the options of the last `seed` run, or None when there was none."""
    options = SeedMark.objects.filter(name=SEED_MARK_NAME).values_list("options", flat=True).first()
    return LastSeed.from_options(options)


def shrinking(last: LastSeed | None, employees: int) -> str | None:
    """Return the one-sentence refusal when --employees is below the last seed's, else None."""
    if last is None or employees >= last.employees:
        return None
    return (
        f"auth holds {last.employees:,} seeded employees beyond the {len(FIXED_EMPLOYEES)} fixed ones; "
        f"--employees {employees:,} would leave {last.employees - employees:,} behind: "
        "run 'inv reset.auth' first, or pass the same or a larger count."
    )


def run_seed(employees: object = 0, seed: object = DEFAULT_SEED, repair: bool = False) -> SeedOutcome:
    """Validate the options, then run every seed step in order in one transaction.

    A count below the last seed's is refused before anything is written: the seed never
    deletes, so the database would keep rows the new options do not describe.
    """
    options = {
        "employees": parse_employee_count(employees),
        "seed": parse_int(seed, "--seed"),
    }
    passwords = PasswordSource()
    report = SeedReport(models={name: ModelReport() for name in MODEL_NAMES})
    with transaction.atomic():
        last = read_last_seed()
        refusal = shrinking(last, options["employees"])
        if refusal:
            raise SeedError(refusal)
        policy = Policy(last, repair)
        report.merge(seed_systems(passwords, policy))
        report.merge(seed_tts(passwords, policy))
        report.merge(seed_hdts(passwords, policy))
        report.merge(seed_employees(options["employees"], options["seed"], passwords, policy))
        from .accounts import seed_accounts  # accounts builds on this module's sync_rows

        report.merge(seed_accounts(passwords, policy))
        mark = SeedMark.objects.filter(name=SEED_MARK_NAME).first()
        if report.changed or mark is None or mark.options != options:
            SeedMark.objects.update_or_create(name=SEED_MARK_NAME, defaults={"options": options})
        counts = model_counts()
    report.note_kept()
    report.notes.extend(passwords.notes)
    return SeedOutcome(options=options, report=report, counts=counts)


# --- what the last seed owns (stack_state) ------------------------------------------------


def count_numbered_keys(
    model: type[models.Model], key_field: str, prefix: str, width: int, count: int
) -> int:
    """Count stored rows whose key is one of `prefix` + 1..`count` in `width` digits.

    One range query on the key's unique index; the pattern drops look-alike keys a person
    typed (e.g. `MA00a1`) that sort inside the range. SQLite gets a native GLOB (its REGEXP
    is a Python function), other databases a regular expression.
    """
    if count <= 0:
        return 0
    queryset = model._default_manager.filter(
        **{f"{key_field}__gte": f"{prefix}{1:0{width}d}", f"{key_field}__lte": f"{prefix}{count:0{width}d}"}
    )
    connection = connections[router.db_for_read(model)]
    if connection.vendor == "sqlite":
        column = connection.ops.quote_name(model._meta.get_field(key_field).column)
        queryset = queryset.extra(where=[f"{column} GLOB %s"], params=[prefix + "[0-9]" * width])
    else:
        queryset = queryset.filter(**{f"{key_field}__regex": rf"^{prefix}[0-9]{{{width}}}$"})
    return queryset.count()


def count_edited(stored: dict[Any, tuple[Any, ...]], seeded: Iterable[tuple[Any, Row]]) -> int:
    """Count the stored rows whose values differ from the seeded ones (same field order)."""
    return sum(1 for key, values in seeded if key in stored and stored[key] != tuple(values.values()))


def seeded_state(last: LastSeed, edits: bool = False) -> dict[str, dict[str, int]]:
    """Report, per seeded model, the rows the last seed owns, the missing ones and people's.

    `expected`: seeded keys; `missing`: seeded keys with no row; `extra`: rows under other
    keys. With `edits`, `edited`: seeded rows whose values differ from the seed's (this
    generates every seeded employee, in chunks).
    """
    slugs = [slug for slug, _ in SYSTEMS]
    roles = fixed_role_pairs()
    entries = fixed_user_entries()
    emails = [user.email for _, user in entries]
    links = [(user.email, slug, user.role) for slug, user in entries]
    employees = len(FIXED_EMPLOYEES) + last.employees
    stored_systems = dict(System.objects.filter(slug__in=slugs).values_list("slug", "name"))
    stored_roles = {
        (slug, name): (description,)
        for slug, name, description in Role.objects.filter(
            system__slug__in=slugs, name__in={name for _, name in roles}
        ).values_list("system__slug", "name", "description")
    }
    fields = list(user_values(entries[0][1]))
    stored_users = {
        row[0]: row[1:] for row in User.objects.filter(email__in=emails).values_list("email", *fields)
    }
    stored_links = {
        row[:3]: row[3:]
        for row in UserSystemRole.objects.filter(user__email__in=emails).values_list(
            "user__email", "system__slug", "role__name", *link_values()
        )
    }
    present = {
        "System": len(stored_systems),
        "Role": sum(1 for pair in roles if pair in stored_roles),
        "User": len(stored_users),
        "UserSystemRole": sum(1 for link in links if link in stored_links),
        "Employee": count_numbered_keys(Employee, "company_id", "MA", 4, employees),
    }
    expected = {
        "System": len(slugs),
        "Role": len(roles),
        "User": len(emails),
        "UserSystemRole": len(links),
        "Employee": employees,
    }
    totals = model_counts()
    report = {
        name: {
            "expected": expected[name],
            "missing": expected[name] - present[name],
            "extra": totals[name] - present[name],
        }
        for name in MODEL_NAMES
    }
    if edits:
        report["System"]["edited"] = count_edited(
            {slug: (name,) for slug, name in stored_systems.items()},
            [(slug, {"name": name}) for slug, name in SYSTEMS],
        )
        report["Role"]["edited"] = count_edited(
            stored_roles, [(pair, {"description": ROLE_DESCRIPTIONS[pair]}) for pair in roles]
        )
        report["User"]["edited"] = count_edited(stored_users, [(u.email, user_values(u)) for _, u in entries])
        report["UserSystemRole"]["edited"] = count_edited(
            stored_links, [(link, link_values()) for link in links]
        )
        edited = 0
        employee_fields = list(employee_values(FIXED_EMPLOYEES[0]))
        for batch in outbox.chunked(all_employees(last.employees, last.seed), BATCH_SIZE):
            stored = {
                row[0]: row[1:]
                for row in Employee.objects.filter(company_id__in=[e.company_id for e in batch]).values_list(
                    "company_id", *employee_fields
                )
            }
            edited += count_edited(stored, [(e.company_id, employee_values(e)) for e in batch])
        report["Employee"]["edited"] = edited
    return report
