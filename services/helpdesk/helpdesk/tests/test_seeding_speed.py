"""Test the fast write paths of the seed: same rows as the ORM, no query log, flat memory."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, models
from django.test.utils import CaptureQueriesContext

from helpdesk import seeding
from helpdesk.models import Employee, SeedMark, Ticket

pytestmark = pytest.mark.django_db

SERVICE_DIR = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "DEVSTACK_TEST_POSTGRES"
POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
TICKET_COLUMNS = (
    "t.ticket_number, e.company_id, t.subject, t.category, t.sub_category, t.priority, t.department, "
    "t.status, t.requested_budget, t.submitted_at"
)
EMPLOYEE_COLUMNS = "company_id, first_name, last_name, email, department, role, status"
# Hashes of rows_hash() over the generators' output, computed with the ORM-era generators.
GOLDEN_TICKETS_7 = "fa859e384fbcb0ceee242614d87d66dd472ad33ffeaa29bb730bb1fca481fb42"
GOLDEN_TICKETS_8 = "73036e4e51ad634316bda61b0d9c8b7158ef54991cc8303132fbd2fe8f32b258"
GOLDEN_EMPLOYEES_7 = "d9240f23a7bf566d7b2595389fb020529bbf7dd264f4909e25d11b189033b804"


def seed(*args: str) -> dict[str, Any]:
    """Run ``seed --json`` and return its report."""
    out = StringIO()
    call_command("seed", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def table_hash() -> str:
    """Return a hash of every stored employee and ticket value, as the database returns them.

    Read with plain SQL (no Django conversion), so the stored representation counts: a
    datetime written as other text, or a decimal stored as another type, changes the hash.
    Primary keys differ between runs, so tickets name their employee by company id.
    """
    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {EMPLOYEE_COLUMNS} FROM helpdesk_employee ORDER BY company_id")
        for row in cursor.fetchall():
            digest.update(repr(row).encode())
        cursor.execute(
            f"SELECT {TICKET_COLUMNS} FROM helpdesk_ticket t "
            "JOIN helpdesk_employee e ON e.id = t.employee_id ORDER BY t.ticket_number"
        )
        for row in cursor.fetchall():
            digest.update(repr(row).encode())
    return digest.hexdigest()


def orm_insert(model: type[models.Model], names: tuple[str, ...], rows: list[list[Any]]) -> None:
    """Insert rows the way the seed did before: model instances and ``bulk_create``."""
    objs = [model(**dict(zip(names, row, strict=True))) for row in rows]
    model._default_manager.bulk_create(objs, batch_size=seeding.CHUNK_SIZE)


def orm_update(model: type[models.Model], fields: tuple[str, ...], rows: list[list[Any]]) -> None:
    """Update rows through the ORM: model instances and ``bulk_update``."""
    objs = [model(pk=row[-1], **dict(zip(fields, row[:-1], strict=True))) for row in rows]
    model._default_manager.bulk_update(objs, fields, batch_size=500)


def clear() -> None:
    """Delete every seeded row and the SeedMark."""
    Ticket.objects.all().delete()
    Employee.objects.all().delete()
    SeedMark.objects.all().delete()


def seed_and_hash() -> tuple[str, str]:
    """Seed 3,000 tickets, then re-seed with another seed (every row updated); hash after each."""
    seed("--employees", "120", "--tickets", "3000")
    created = table_hash()
    report = seed("--employees", "120", "--tickets", "3000", "--seed", "8")
    assert report["models"]["Ticket"]["updated"] > 2500
    assert Employee.objects.values("password").distinct().count() == 1
    return created, table_hash()


def test_fast_path_stores_what_the_orm_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = seed_and_hash()
    clear()
    monkeypatch.setattr(seeding, "insert_rows", orm_insert)
    monkeypatch.setattr(seeding, "update_rows", orm_update)
    assert seed_and_hash() == fast


@pytest.mark.parametrize(
    ("name", "values"),
    [
        (
            "submitted_at",
            [
                datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
                datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=UTC),
                datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2))),
                None,
            ],
        ),
        ("requested_budget", [Decimal("123.45"), Decimal("500.00"), Decimal("1.5"), Decimal("0"), None]),
        ("subject", ["Password Reset: laptop runs slowly", ""]),
        ("priority", ["High", None]),
    ],
)
def test_column_conversion_is_djangos(name: str, values: list[Any]) -> None:
    column = Ticket._meta.get_field(name)
    rows = [[value] for value in values]
    convert = seeding.column_preparer(column, connection)
    if convert is not None:
        convert(rows, 0)
    assert rows == [[column.get_db_prep_save(value, connection)] for value in values]


def rows_hash(rows: Any) -> str:
    """Return a hash of generated (key, values) rows."""
    digest = hashlib.sha256()
    for key, values in rows:
        digest.update(repr((key, sorted(values.items()))).encode())
    return digest.hexdigest()


def test_generated_rows_are_the_ones_of_earlier_seeds() -> None:
    """The same --seed gives the same rows as the generators did before they were made faster."""
    assert rows_hash(seeding.desired_tickets(3000, 7, list(range(1, 51)))) == GOLDEN_TICKETS_7
    assert rows_hash(seeding.desired_tickets(3000, 8, [3, None, 5])) == GOLDEN_TICKETS_8
    assert rows_hash(seeding.desired_employees(120, 7)) == GOLDEN_EMPLOYEES_7


def postgres_server() -> str:
    """Return the URL of a reachable PostgreSQL server, or skip the test."""
    psycopg = pytest.importorskip("psycopg")
    url = os.environ.get(POSTGRES_ENV, POSTGRES_DEFAULT)
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as error:
        pytest.skip(f"PostgreSQL is not reachable at {url} ({POSTGRES_ENV}): {error}")
    return url


def test_fast_path_stores_what_the_orm_stores_on_postgres() -> None:
    """Run the comparison above on PostgreSQL (COPY) when the suite itself runs on SQLite."""
    if connection.vendor == "postgresql":
        pytest.skip("the suite runs on PostgreSQL: the test above covers it")
    server = postgres_server()
    name = f"helpdesk_seedcheck_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(server)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    test = f"{Path(__file__).resolve()}::test_fast_path_stores_what_the_orm_stores"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=SERVICE_DIR,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_seed_logs_no_queries_and_restores_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeding, "CHUNK_SIZE", 50)
    monkeypatch.setattr(settings, "DEBUG", True)
    with CaptureQueriesContext(connection) as captured:
        seed("--employees", "200", "--tickets", "2000")
        assert connection.force_debug_cursor is True
    assert settings.DEBUG is True
    assert Ticket.objects.count() == 2000
    # 44 chunks of 50 rows, one INSERT each at least: none is logged, only run_seed's own queries.
    assert len(captured) < 44, [query["sql"][:80] for query in captured]
    assert not any(query["sql"].startswith('INSERT INTO "helpdesk_ticket"') for query in captured)


def peak_bytes(tickets: int) -> int:
    """Return the peak of Python allocations while seeding ``tickets`` tickets from none."""
    Ticket.objects.all().delete()
    tracemalloc.start()
    try:
        seeding.seed_tickets(tickets, 7, 100)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_count_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeding, "CHUNK_SIZE", 250)
    monkeypatch.setattr(settings, "DEBUG", True)
    seeding.seed_employees(100, 7)
    small = peak_bytes(1_000)
    large = peak_bytes(8_000)
    assert Ticket.objects.count() == 8_000
    assert large < small * 2, (small, large)


def test_chunks_above_the_stored_keys_are_inserted_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeding, "CHUNK_SIZE", 10)
    seed("--employees", "5", "--tickets", "25")
    Ticket.objects.filter(ticket_number="TX00000003").delete()
    reads: list[list[str]] = []
    stored_values = seeding.stored_values

    def counting(model: Any, key_field: str, fields: Any, keys: list[str]) -> Any:
        reads.append(keys)
        return stored_values(model, key_field, fields, keys)

    monkeypatch.setattr(seeding, "stored_values", counting)
    report = seed("--employees", "5", "--tickets", "60")
    tickets = report["models"]["Ticket"]
    assert (tickets["created"], tickets["unchanged"], tickets["updated"]) == (36, 24, 0)
    # Employees MA0001-MA0005 (stored) and tickets TX00000001-TX00000030 (up to TX00000025 stored).
    assert [(keys[0], keys[-1]) for keys in reads] == [
        ("MA0001", "MA0005"),
        ("TX00000001", "TX00000010"),
        ("TX00000011", "TX00000020"),
        ("TX00000021", "TX00000030"),
    ]
    assert Ticket.objects.filter(ticket_number="TX00000003").exists()
    assert Ticket.objects.count() == 60
