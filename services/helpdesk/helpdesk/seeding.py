"""Seed help desk employees and tickets idempotently, fast and deterministically.

Rows are keyed on natural keys (``company_id`` for employees, ``ticket_number``
for tickets). Desired rows are generated in chunks from ``random.Random``
instances seeded by ``--seed``; each chunk is compared with the stored rows in
one query, then new rows are bulk-created and changed rows bulk-updated.

The database is a living environment: people add, edit and delete rows. The
seed owns the keys MA0001..MA<employees> and TX00000001..TX<tickets> of its last
run (the SeedMark). Each stored seeded row is compared with what the last seed
wrote under its key (the *reference*, generated again from the SeedMark's
options): a row equal to it was not edited and gets the new values; a row that
differs was edited by a person and is kept, unless ``repair`` restores it. A
missing seeded row is created again. Rows outside the last seed's keys belong
to people and are never written.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from operator import itemgetter
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import Max

from .accounts import admin_notes, seed_admin
from .models import Department, Employee, ExternalEmployee, HDTSUser, SeedMark, Ticket
from .passwords import seed_password

DEFAULT_EMPLOYEES = 50
DEFAULT_TICKETS = 20
DEFAULT_SEED = 7
MAX_EMPLOYEES = 9_999
MAX_TICKETS = 1_000_000
CHUNK_SIZE = 2_000
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
SUBMISSION_WINDOW_SECONDS = 365 * 24 * 3600
SEED_MARK_NAME = "seed"
COUNT_MODELS: tuple[type[models.Model], ...] = (Employee, Ticket, HDTSUser, ExternalEmployee)

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Amelia",
    "Ben",
    "Carla",
    "Chen",
    "Dana",
    "Diego",
    "Elena",
    "Emeka",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jana",
    "Jonas",
    "Kai",
    "Karin",
    "Leo",
    "Lina",
    "Marco",
    "Maya",
    "Nadia",
    "Nils",
    "Olga",
    "Omar",
    "Paula",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Tess",
    "Uma",
    "Victor",
    "Yara",
)
LAST_NAMES = (
    "Abbott",
    "Bauer",
    "Castillo",
    "Dimitrov",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Mendoza",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quispe",
    "Reyes",
    "Santos",
    "Tanaka",
    "Umar",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Moreau",
    "Novak",
    "Silva",
    "Costa",
)
DEPARTMENTS = (Department.IT, Department.ASSET, Department.BUDGET)
CATEGORY_DEPARTMENT = {
    Ticket.Category.IT_SUPPORT: Department.IT,
    Ticket.Category.ASSET_CHECK_IN: Department.ASSET,
    Ticket.Category.ASSET_CHECK_OUT: Department.ASSET,
    Ticket.Category.NEW_BUDGET_PROPOSAL: Department.BUDGET,
    Ticket.Category.OTHERS: Department.IT,
}
CATEGORIES = tuple(CATEGORY_DEPARTMENT)
SUB_CATEGORIES = {
    Ticket.Category.IT_SUPPORT: (
        "Access Request",
        "Software Installation",
        "Hardware Issue",
        "Network Issue",
        "Password Reset",
    ),
    Ticket.Category.ASSET_CHECK_IN: ("Check In",),
    Ticket.Category.ASSET_CHECK_OUT: ("Check Out",),
    Ticket.Category.NEW_BUDGET_PROPOSAL: ("Budget Approval",),
    Ticket.Category.OTHERS: ("Software Installation", "General Inquiry"),
}
SUBJECT_DETAILS = {
    Ticket.Category.IT_SUPPORT: (
        "cannot sign in to the portal",
        "laptop runs slowly",
        "VPN drops every hour",
        "need access to the shared drive",
        "printer on floor 2 offline",
    ),
    Ticket.Category.ASSET_CHECK_IN: (
        "returning a laptop",
        "returning a monitor",
        "returning a projector",
        "returning a phone",
    ),
    Ticket.Category.ASSET_CHECK_OUT: (
        "need a laptop for a new hire",
        "borrowing a projector",
        "need a spare monitor",
        "need a test phone",
    ),
    Ticket.Category.NEW_BUDGET_PROPOSAL: (
        "training budget for next quarter",
        "new workstation purchase",
        "software licence renewal",
        "team offsite",
    ),
    Ticket.Category.OTHERS: (
        "install a diagram editor",
        "question about leave policy",
        "desk relocation",
        "install a PDF reader",
    ),
}
STATUSES = tuple(Ticket.Status)
PRIORITIES = tuple(Ticket.Priority)
EMPLOYEE_FIELDS = ("first_name", "last_name", "email", "department", "role", "status")
TICKET_FIELDS = (
    "employee_id",
    "subject",
    "category",
    "sub_category",
    "priority",
    "department",
    "status",
    "requested_budget",
    "submitted_at",
)
#: Field types whose generated values (``str``, ``int`` or None) Django stores as they are.
STORED_AS_IS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "CharField",
        "ForeignKey",
        "IntegerField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "SmallIntegerField",
        "TextField",
    }
)

T = TypeVar("T")
Values = dict[str, Any]


class SeedError(ValueError):
    """Report seed options that cannot be applied (one sentence, what to do)."""


class Unknown:
    """Stand for the values a seeded row got when no SeedMark says which seed wrote them."""

    def __repr__(self) -> str:
        """Return a short name for debugging."""
        return "UNKNOWN"


#: The reference of a seeded row whose last seeded values are unknown (no SeedMark).
UNKNOWN = Unknown()
#: What the last seed wrote under a key: its values, UNKNOWN, or None when the key is not the seed's.
Reference = Values | Unknown | None


@dataclass(frozen=True)
class LastSeed:
    """Hold the options of the last ``seed`` run, read from the SeedMark."""

    employees: int
    tickets: int
    seed: int

    @classmethod
    def from_options(cls, options: Any) -> LastSeed | None:
        """Return the options as a LastSeed, or None when they are not a seed's options."""
        if not isinstance(options, dict):
            return None
        try:
            return cls(int(options["employees"]), int(options["tickets"]), int(options["seed"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class ModelReport:
    """Count what a seed step did to the seeded rows of one model.

    ``created``: missing seeded rows written; ``updated``: rows untouched since the last seed
    given the new seed's values; ``repaired``: rows people edited given their seeded values
    back (``--repair``); ``kept``: rows people edited left as they are; ``unchanged``: rows
    that already hold the seed's values.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: int = 0
    kept: int = 0

    @property
    def changed(self) -> bool:
        """Return whether the step wrote any row."""
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
class StepReport:
    """Describe one seed step: its model, row counts and notes."""

    model: str
    rows: ModelReport = field(default_factory=ModelReport)
    notes: list[str] = field(default_factory=list)


@dataclass
class SeedReport:
    """Describe a whole seed run, in the JSON shape of the contract."""

    options: dict[str, int]
    steps: list[StepReport]
    counts: dict[str, int]

    @property
    def changed(self) -> bool:
        """Return whether any step wrote a row."""
        return any(step.rows.changed for step in self.steps)

    @property
    def notes(self) -> list[str]:
        """Return the notes of every step, in step order."""
        return [note for step in self.steps for note in step.notes]

    def as_json(self) -> dict[str, Any]:
        """Return the report as the contract's JSON document."""
        return {
            "service": "helpdesk",
            "options": dict(self.options),
            "models": {step.model: step.rows.as_dict() for step in self.steps},
            "counts": dict(self.counts),
            "changed": self.changed,
        }


class PasswordHash:
    """Hash the seed password once, and only when a new row needs it."""

    def __init__(self) -> None:
        """Start without a hash."""
        self._value: str | None = None

    @property
    def value(self) -> str:
        """Return the hash of the seed password, computing it on first use."""
        if self._value is None:
            self._value = make_password(seed_password())
        return self._value


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items, in order."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def company_id(index: int) -> str:
    """Return the company id of the seeded employee number ``index`` (1-based)."""
    return f"MA{index:04d}"


def ticket_number(index: int) -> str:
    """Return the ticket number of the seeded ticket number ``index`` (1-based)."""
    return f"TX{index:08d}"


def validate_counts(employees: int | None, tickets: int | None) -> None:
    """Raise SeedError when a count is negative or too large."""
    if employees is not None:
        if employees < 0:
            raise SeedError(f"The employee count {employees} is negative; give 0 or more employees.")
        if employees > MAX_EMPLOYEES:
            raise SeedError(
                f"Cannot seed {employees:,} employees: at most 9,999 employees "
                "(company ids are MA0001–MA9999); use a smaller --employees."  # noqa: RUF001
            )
    if tickets is not None:
        if tickets < 0:
            raise SeedError(f"The ticket count {tickets} is negative; give 0 or more tickets.")
        if tickets > MAX_TICKETS:
            raise SeedError(
                f"Cannot seed {tickets:,} tickets: at most {MAX_TICKETS:,} in one run; "
                "use a smaller --tickets."
            )


def desired_employees(count: int, seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (company_id, field values) of the first ``count`` seeded employees.

    Values are drawn sequentially from one ``random.Random(seed)``, a fixed number
    of draws per row, so the first N rows are the same for any larger count.
    """
    rng = random.Random(seed)
    for index in range(1, count + 1):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        department = rng.choice(DEPARTMENTS)
        if index == 1:
            role = Employee.Role.SYSTEM_ADMIN
        elif index % 10 == 2:
            role = Employee.Role.TICKET_COORDINATOR
        else:
            role = Employee.Role.EMPLOYEE
        if index % 20 == 0:
            status = Employee.Status.DENIED
        elif index % 20 == 19:
            status = Employee.Status.PENDING
        else:
            status = Employee.Status.APPROVED
        yield (
            company_id(index),
            {
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{index:04d}@example.com".lower(),
                "department": str(department),
                "role": str(role),
                "status": str(status),
            },
        )


def desired_tickets(
    count: int, seed: int, employee_pks: Sequence[int | None]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (ticket_number, field values) of the first ``count`` seeded tickets.

    Tickets go round-robin over ``employee_pks`` and the categories; all other
    values come from one seeded generator with a fixed number of draws per row.
    """
    rng = random.Random(f"helpdesk-tickets-{seed}")
    # ``rng.choice(seq)`` is ``seq[rng._randbelow(len(seq))]`` and ``rng.randrange(a, b)`` is
    # ``a + rng._randbelow(b - a)``: calling ``_randbelow`` directly makes the same draws without
    # two Python calls per value (test_seeding_speed pins the rows this generator yields).
    below = rng._randbelow
    # Plain strings picked by index from tuples as long as the choices': the same draws give
    # the same values as choosing the enum members and converting each with str().
    statuses = tuple(str(status) for status in STATUSES)
    priorities = tuple(str(priority) for priority in PRIORITIES)
    new = str(Ticket.Status.NEW)
    kinds = [
        (
            str(category),
            str(CATEGORY_DEPARTMENT[category]),
            SUB_CATEGORIES[category],
            SUBJECT_DETAILS[category],
            category == Ticket.Category.NEW_BUDGET_PROPOSAL,
        )
        for category in CATEGORIES
    ]
    employees = len(employee_pks)
    for index in range(1, count + 1):
        category, department, sub_categories, details, is_budget = kinds[(index - 1) % len(kinds)]
        sub_category = sub_categories[below(len(sub_categories))]
        detail = details[below(len(details))]
        status = statuses[below(len(statuses))]
        priority = priorities[below(len(priorities))]
        cents = 50_000 + below(5_000_000 - 50_000)
        offset = below(SUBMISSION_WINDOW_SECONDS)
        is_new = status == new
        yield (
            f"TX{index:08d}",
            {
                "employee_id": employee_pks[(index - 1) % employees],
                "subject": f"{sub_category}: {detail}",
                "category": category,
                "sub_category": sub_category,
                "priority": None if is_new else priority,
                "department": None if is_new else department,
                "status": status,
                # cents / 100 to two places: the same value and exponent as quantize(0.01).
                "requested_budget": Decimal(cents).scaleb(-2) if is_budget else None,
                "submitted_at": EPOCH + timedelta(seconds=offset),
            },
        )


def with_reference(
    desired: Iterable[tuple[str, Values]],
    owned: int | None,
    reference: Iterable[tuple[str, Values]] | None = None,
) -> Iterator[tuple[str, Values, Reference]]:
    """Pair each desired row with what the last seed wrote under its key.

    ``owned`` is how many keys (in generation order) the last seed owns, None without a
    SeedMark (every key counts as seeded, with UNKNOWN values). ``reference`` yields the last
    seed's rows in the same key order; None means they equal the desired ones (same options).
    """
    previous = iter(reference) if reference is not None else None
    for index, (key, values) in enumerate(desired, start=1):
        if owned is None:
            yield key, values, UNKNOWN
        elif index > owned:
            yield key, values, None
        elif previous is None:
            yield key, values, values
        else:
            previous_key, previous_values = next(previous)
            if previous_key != key:  # pragma: no cover - both generators number keys alike
                raise AssertionError(f"Reference key {previous_key} does not match {key}.")
            yield key, values, previous_values


def outcome(stored: tuple[Any, ...] | None, wanted: tuple[Any, ...], reference: Any, repair: bool) -> str:
    """Decide what a seed does to one seeded key; return the ModelReport field it counts in.

    Missing rows are created; rows already right are unchanged; rows holding what the last
    seed wrote get the new values; rows people edited are kept, or repaired with ``repair``;
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


def as_tuple(values: Reference, fields: tuple[str, ...]) -> Any:
    """Return a reference's values in ``fields`` order (UNKNOWN and None pass through)."""
    if isinstance(values, dict):
        return tuple(values[name] for name in fields)
    return values


def stored_values(
    model: type[models.Model], key_field: str, fields: tuple[str, ...], keys: list[str]
) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """Return ``{key: (pk, values in fields order)}`` of the stored rows of ``keys`` (one query).

    Keys in ascending order (every seed chunk) are read with one range condition on the key's
    unique index, cheaper to build and to run than an IN list of thousands; rows of other keys
    inside the range (people's look-alikes) are left out.
    """
    manager = model._default_manager
    if len(keys) > 1 and all(low < high for low, high in pairwise(keys)):
        queryset = manager.filter(**{f"{key_field}__gte": keys[0], f"{key_field}__lte": keys[-1]})
    else:
        queryset = manager.filter(**{f"{key_field}__in": keys})
    wanted = set(keys)
    return {
        row[0]: (row[1], row[2:])
        for row in queryset.order_by().values_list(key_field, "pk", *fields)
        if row[0] in wanted
    }


@contextmanager
def quiet_queries(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Log no queries while seeding, then restore the query logging as it was.

    Django keeps every query in ``connection.queries_log`` while ``settings.DEBUG`` (or the
    connection's ``force_debug_cursor``) is on: formatting them costs time and the log holds
    thousands of statements. Both are turned off inside the block.
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


def column_preparer(
    column: models.Field[Any, Any], connection: Any
) -> Callable[[list[list[Any]], int], None] | None:
    """Return what converts one column of rows, in place, to what Django stores (None: nothing).

    Chosen once per column; the returned function converts ``row[index]`` of every row in one
    loop. Text and integer columns store the generated ``str``/``int`` values as they are
    (Django's conversion returns them unchanged). Decimals, and datetimes in the connection's
    time zone on backends whose adaptation is known (SQLite: naive text, PostgreSQL: the value
    itself), get the same result by a direct typed conversion, and None stays None; any other
    value or column goes through the field's ``get_db_prep_save``, as in ``bulk_create``.
    """
    kind = column.get_internal_type()
    if kind in STORED_AS_IS:
        return None
    prepare = column.get_db_prep_save
    adapt = type(connection.ops).adapt_decimalfield_value
    if kind == "DecimalField" and adapt is BaseDatabaseOperations.adapt_decimalfield_value:

        def decimals(rows: list[list[Any]], index: int) -> None:
            for row in rows:
                value = row[index]
                if value is not None and (type(value) is not Decimal or not value.is_finite()):
                    row[index] = prepare(value, connection)

        return decimals
    if kind == "DateTimeField" and settings.USE_TZ and connection.vendor in ("sqlite", "postgresql"):
        zone = connection.timezone
        as_text = connection.vendor == "sqlite"
        # In a fixed UTC zone every value prints with the suffix "+00:00": without it, the naive text.
        utc = zone.utcoffset(None) == timedelta(0)

        def datetimes(rows: list[list[Any]], index: int) -> None:
            for row in rows:
                value = row[index]
                if type(value) is datetime and value.tzinfo is zone:
                    if as_text:
                        row[index] = str(value)[:-6] if utc else str(value.replace(tzinfo=None))
                elif value is not None:
                    row[index] = prepare(value, connection)

        return datetimes

    def generic(rows: list[list[Any]], index: int) -> None:
        for row in rows:
            row[index] = prepare(row[index], connection)

    return generic


def prepare_rows(fields: Sequence[models.Field[Any, Any]], rows: list[list[Any]], connection: Any) -> None:
    """Convert, in place, each row's values (in ``fields`` order) to what Django stores.

    One conversion per column (:func:`column_preparer`), applied to the column's values in one loop.
    """
    for index, column in enumerate(fields):
        convert = column_preparer(column, connection)
        if convert is not None:
            convert(rows, index)


def insert_rows(model: type[models.Model], names: Sequence[str], rows: list[list[Any]]) -> None:
    """Insert new rows, their values in ``names`` order, with one statement run.

    PostgreSQL (psycopg 3) gets ``COPY ... FROM STDIN``, other databases one prepared INSERT
    run with ``executemany`` on the DB-API cursor; values are converted per column by
    :func:`prepare_rows`. Like ``bulk_create``: no model instances, no signals; database errors
    surface as Django's (e.g. ``IntegrityError``).
    """
    connection = connections[router.db_for_write(model)]
    fields = [model._meta.get_field(name) for name in names]
    prepare_rows(fields, rows, connection)
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


def sync_chunk(
    model: type[models.Model],
    key_field: str,
    fields: tuple[str, ...],
    desired: list[tuple[str, Values, Reference]],
    report: ModelReport,
    on_create: Callable[[], dict[str, Any]] | None = None,
    repair: bool = False,
    fresh: bool = False,
) -> None:
    """Create missing rows and update the rows :func:`outcome` allows, one statement run each.

    New rows go to :func:`insert_rows`, changed ones to :func:`update_rows`, as plain value
    lists (no model instances). ``on_create`` gives the extra values of new rows (called once).
    ``fresh`` says that no row of the chunk's keys is stored: the chunk is inserted unread.
    """
    if not desired:
        return
    stored = {} if fresh else stored_values(model, key_field, fields, [key for key, _, _ in desired])
    pick = itemgetter(*fields)
    if not stored:
        extra = on_create() if on_create is not None else {}
        tail = tuple(extra.values())
        insert_rows(
            model, (key_field, *fields, *extra), [[key, *pick(values), *tail] for key, values, _ in desired]
        )
        report.created += len(desired)
        return
    new_rows: list[list[Any]] = []
    changed_rows: list[list[Any]] = []
    extra: dict[str, Any] | None = None
    extra_values: tuple[Any, ...] = ()
    for key, values, reference in desired:
        wanted = pick(values)
        found = stored.get(key)
        if found is None:
            if extra is None:
                extra = on_create() if on_create is not None else {}
                extra_values = tuple(extra.values())
            new_rows.append([key, *wanted, *extra_values])
            continue
        if found[1] == wanted:
            report.unchanged += 1
            continue
        last = wanted if reference is values else as_tuple(reference, fields)
        result = outcome(found[1], wanted, last, repair)
        if result in ("updated", "repaired"):
            changed_rows.append([*wanted, found[0]])
        setattr(report, result, getattr(report, result) + 1)
    if new_rows:
        insert_rows(model, (key_field, *fields, *(extra or {})), new_rows)
        report.created += len(new_rows)
    if changed_rows:
        update_rows(model, fields, changed_rows)


def sync_chunks(
    model: type[models.Model],
    key_field: str,
    fields: tuple[str, ...],
    desired: Iterable[tuple[str, Values, Reference]],
    report: ModelReport,
    keys: tuple[str, str],
    on_create: Callable[[], dict[str, Any]] | None = None,
    repair: bool = False,
    total: int = 0,
) -> None:
    """Run :func:`sync_chunk` over ``desired`` in chunks, logging no queries (:func:`quiet_queries`).

    After each chunk the progress (of ``total`` rows) is announced (:func:`announce`).

    ``desired`` yields keys in ascending order, from ``keys[0]`` to ``keys[1]``. One query reads
    the highest key stored among them beforehand: a chunk whose first key is above it holds
    no stored row (rows written meanwhile have lower keys), so it is inserted without a read.
    """
    with quiet_queries(router.db_for_write(model)):
        low, high = keys
        stored = model._default_manager.filter(**{f"{key_field}__gte": low, f"{key_field}__lte": high})
        highest = stored.aggregate(highest=Max(key_field))["highest"]
        done = 0
        for chunk in chunked(desired, CHUNK_SIZE):
            fresh = highest is None or chunk[0][0] > highest
            sync_chunk(model, key_field, fields, chunk, report, on_create, repair, fresh=fresh)
            done += len(chunk)
            announce(model.__name__, done, total)


#: Set by the task runner: the seed reports how far it got, one ``PROGRESS {json}`` line on stderr
#: per chunk, which the runner turns into a progress line with an ETA.
PROGRESS_ENV = "DEVSTACK_PROGRESS"


def announce(model: str, done: int, total: int) -> None:
    """Report ``done`` of ``total`` rows of ``model`` synced, when the runner asked for it."""
    if os.environ.get(PROGRESS_ENV) == "1":
        sys.stderr.write("PROGRESS " + json.dumps({"model": model, "done": done, "total": total}) + "\n")
        sys.stderr.flush()


def update_rows(model: type[models.Model], fields: tuple[str, ...], rows: list[list[Any]]) -> None:
    """Update ``fields`` of rows by primary key with one ``executemany`` call.

    Each row holds the values in ``fields`` order, then the primary key; values are converted
    per column by :func:`prepare_rows`. ``bulk_update`` builds one CASE expression per field
    over the whole batch, which grows quadratically on SQLite; a prepared UPDATE per row does not.
    """
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    pk = model._meta.pk
    assert pk is not None
    prepare_rows([*columns, pk], rows, connection)
    assignments = ", ".join(f"{quote(column.column)} = %s" for column in columns)
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def leftover_note(model: type[models.Model], count: int, option: str) -> list[str]:
    """Return a note when more rows exist than the seed owns (they are people's, never touched)."""
    total = model._default_manager.count()
    if total <= count:
        return []
    name = model._meta.verbose_name_plural
    return [f"{total - count:,} {name} beyond {option} {count:,} are not the seed's; they were left alone."]


def kept_note(model: str, report: ModelReport) -> list[str]:
    """Return a note when rows people edited were kept."""
    if not report.kept:
        return []
    return [
        f"Kept {report.kept:,} {model} rows people edited (or added under a seeded key); "
        "pass --repair to give seeded rows their seeded values back."
    ]


def seed_employees(
    count: int = DEFAULT_EMPLOYEES,
    seed: int = DEFAULT_SEED,
    password: PasswordHash | None = None,
    *,
    last: LastSeed | None = None,
    repair: bool = False,
) -> StepReport:
    """Create the missing seeded employees (MA0001, MA0002, ...) and update the allowed ones.

    ``last`` is the last seed (None: no SeedMark); see :func:`outcome` for what is written.
    """
    validate_counts(count, None)
    password = password or PasswordHash()
    report = StepReport(model="Employee")
    desired = desired_employees(count, seed)
    if last is None:
        paired = with_reference(desired, None)
    elif last.seed == seed:
        paired = with_reference(desired, last.employees)
    else:
        paired = with_reference(desired, last.employees, desired_employees(last.employees, last.seed))
    sync_chunks(
        Employee,
        "company_id",
        EMPLOYEE_FIELDS,
        paired,
        report.rows,
        (company_id(1), company_id(count)),
        on_create=lambda: {"password": password.value},
        repair=repair,
        total=count,
    )
    report.notes.extend(kept_note("Employee", report.rows))
    report.notes.extend(leftover_note(Employee, count, "--employees"))
    return report


def seeded_employee_pks(employees: int | None) -> list[int]:
    """Return employee pks for round-robin: MA0001..MAnnnn, or all employees when None."""
    queryset = Employee.objects.order_by("company_id", "pk")
    if employees is not None:
        queryset = queryset.filter(company_id__in=[company_id(i) for i in range(1, employees + 1)])
    return list(queryset.values_list("pk", flat=True))


def employee_pks_by_index(employees: int) -> list[int | None]:
    """Return the pk of each seeded employee MA0001..MAnnnn in order, None where it is missing."""
    if employees <= 0:
        return []
    found = dict(
        Employee.objects.filter(company_id__gte=company_id(1), company_id__lte=company_id(employees))
        .order_by()
        .values_list("company_id", "pk")
    )
    return [found.get(company_id(index)) for index in range(1, employees + 1)]


def last_tickets(last: LastSeed) -> Iterator[tuple[str, Values]]:
    """Yield the tickets the last seed wrote, over its employees' current pks.

    A missing seeded employee stands as None, so its tickets never match a stored row.
    """
    if last.tickets <= 0 or last.employees <= 0:
        return iter(())
    return desired_tickets(last.tickets, last.seed, employee_pks_by_index(last.employees))


def seed_tickets(
    count: int = DEFAULT_TICKETS,
    seed: int = DEFAULT_SEED,
    employees: int | None = None,
    *,
    last: LastSeed | None = None,
    repair: bool = False,
) -> StepReport:
    """Create the missing seeded tickets (TX00000001, ...) and update the allowed ones.

    Tickets go round-robin over the seeded employees MA0001..MA``employees``,
    or over all employees by company id when ``employees`` is None. ``last`` is the last
    seed (None: no SeedMark); see :func:`outcome` for what is written.
    """
    validate_counts(None, count)
    report = StepReport(model="Ticket")
    if count > 0:
        pks = seeded_employee_pks(employees)
        if not pks:
            raise SeedError("Tickets need at least one employee; seed employees first, then tickets.")
        desired = desired_tickets(count, seed, pks)
        if last is None:
            paired = with_reference(desired, None)
        elif last.seed == seed and last.employees == employees:
            paired = with_reference(desired, last.tickets)
        else:
            paired = with_reference(desired, last.tickets, last_tickets(last))
        keys = (ticket_number(1), ticket_number(count))
        sync_chunks(
            Ticket, "ticket_number", TICKET_FIELDS, paired, report.rows, keys, repair=repair, total=count
        )
    report.notes.extend(kept_note("Ticket", report.rows))
    report.notes.extend(leftover_note(Ticket, count, "--tickets"))
    return report


def model_counts() -> dict[str, int]:
    """Return the row count of every model named in the contract."""
    return {model.__name__: model._default_manager.count() for model in COUNT_MODELS}


def read_last_seed() -> LastSeed | None:
    """Return the options of the last ``seed`` run, or None when there was none."""
    options = SeedMark.objects.filter(name=SEED_MARK_NAME).values_list("options", flat=True).first()
    return LastSeed.from_options(options)


def shrinking(last: LastSeed | None, employees: int, tickets: int) -> str | None:
    """Return the one-sentence refusal when a count is below the last seed's, else None."""
    if last is None:
        return None
    smaller = [
        (option, held, wanted, noun)
        for option, held, wanted, noun in (
            ("--employees", last.employees, employees, "employees"),
            ("--tickets", last.tickets, tickets, "tickets"),
        )
        if wanted < held
    ]
    if not smaller:
        return None
    holds = " and ".join(f"{held:,} seeded {noun}" for _, held, _, noun in smaller)
    asked = " ".join(f"{option} {wanted:,}" for option, _, wanted, _ in smaller)
    behind = " and ".join(
        f"{held - wanted:,}" + (f" {noun}" if len(smaller) > 1 else "") for _, held, wanted, noun in smaller
    )
    counts = "the same or larger counts" if len(smaller) > 1 else "the same or a larger count"
    return (
        f"helpdesk holds {holds}; {asked} would leave {behind} behind: "
        f"run 'inv reset.helpdesk' first, or pass {counts}."
    )


def save_seed_mark(options: dict[str, int], changed: bool) -> None:
    """Store the options when they differ from the stored ones or rows changed."""
    stored = SeedMark.objects.filter(name=SEED_MARK_NAME).values_list("options", flat=True).first()
    if changed or stored != options:
        SeedMark.objects.update_or_create(name=SEED_MARK_NAME, defaults={"options": options})


def run_seed(
    employees: int = DEFAULT_EMPLOYEES,
    tickets: int = DEFAULT_TICKETS,
    seed: int = DEFAULT_SEED,
    repair: bool = False,
) -> SeedReport:
    """Run every seed step in order, in one transaction, and report what changed.

    A count below the last seed's is refused before anything is written: the seed never
    deletes, so the database would keep rows the new options do not describe.
    """
    validate_counts(employees, tickets)
    if tickets > 0 and employees == 0:
        raise SeedError("Tickets need at least one employee; use --employees 1 or more, or --tickets 0.")
    options = {"employees": employees, "tickets": tickets, "seed": seed}
    password = PasswordHash()
    with transaction.atomic():
        last = read_last_seed()
        refusal = shrinking(last, employees, tickets)
        if refusal:
            raise SeedError(refusal)
        steps = [
            seed_employees(employees, seed, password, last=last, repair=repair),
            seed_tickets(tickets, seed, employees, last=last, repair=repair),
        ]
        steps[-1].notes.extend(admin_notes(seed_admin(lambda: password.value, repair)))
        report = SeedReport(options=options, steps=steps, counts=model_counts())
        save_seed_mark(options, report.changed)
    return report


# --- what the last seed owns (stack_state) ------------------------------------------------


def count_numbered_keys(
    model: type[models.Model], key_field: str, prefix: str, width: int, count: int
) -> int:
    """Count stored rows whose key is one of ``prefix`` + 1..``count`` in ``width`` digits.

    One range query on the key's unique index; the pattern drops look-alike keys a person
    typed (e.g. ``TX0000001a``) that sort inside the range. SQLite gets a native GLOB (its
    REGEXP is a Python function), other databases a regular expression.
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


def count_edited(
    model: type[models.Model], key_field: str, fields: tuple[str, ...], seeded: Iterable[tuple[str, Values]]
) -> int:
    """Count stored rows of the seeded keys whose values differ from the seeded ones (chunked)."""
    edited = 0
    for chunk in chunked(seeded, CHUNK_SIZE):
        stored = stored_values(model, key_field, fields, [key for key, _ in chunk])
        for key, values in chunk:
            found = stored.get(key)
            if found is not None and found[1] != tuple(values[name] for name in fields):
                edited += 1
    return edited


def seeded_state(last: LastSeed, edits: bool = False) -> dict[str, dict[str, int]]:
    """Report, per seeded model, the rows the last seed owns, the missing ones and people's.

    ``expected``: seeded keys; ``missing``: seeded keys with no row; ``extra``: rows under
    other keys. With ``edits``, ``edited``: seeded rows whose values differ from the seed's
    (this generates every seeded row, in chunks).
    """
    report: dict[str, dict[str, int]] = {}
    for model, key_field, prefix, width, expected in (
        (Employee, "company_id", "MA", 4, last.employees),
        (Ticket, "ticket_number", "TX", 8, last.tickets),
    ):
        present = count_numbered_keys(model, key_field, prefix, width, expected)
        total = model._default_manager.count()
        report[model.__name__] = {
            "expected": expected,
            "missing": expected - present,
            "extra": total - present,
        }
    if edits:
        report["Employee"]["edited"] = count_edited(
            Employee, "company_id", EMPLOYEE_FIELDS, desired_employees(last.employees, last.seed)
        )
        report["Ticket"]["edited"] = count_edited(Ticket, "ticket_number", TICKET_FIELDS, last_tickets(last))
    return report
