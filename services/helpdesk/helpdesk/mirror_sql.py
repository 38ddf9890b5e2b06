"""Run the few fixed statements of the sync consumer, built once from the models.

The ORM compiles every query anew, and on SQLite that costs several times more
than running the statement. A sync worker runs the same handful of statements
for every event, so they are built here once per model and database vendor,
with table and column names, quoting and value adaptation taken from the model
metadata (the same SQL works on SQLite and PostgreSQL).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, models
from django.utils import timezone

from .models import ProcessedEvent


@dataclass(frozen=True)
class MirrorRow:
    """Hold the columns of a mirror row the consumer decides on."""

    pk: int
    key: int
    email: str
    newer: bool  # the row's synced_at is later than the event's time


class MirrorStatements:
    """Build and run the SQL of one mirror model (select, insert, update, delete)."""

    def __init__(self, model: type[models.Model], key_field: str, fields: tuple[str, ...]) -> None:
        """Build the statements for the default database's vendor."""
        meta = model._meta
        quote = connection.ops.quote_name
        self.fields = {name: meta.get_field(name) for name in (key_field, *fields, "synced_at")}
        column = {name: quote(field.column) for name, field in self.fields.items()}  # type: ignore[union-attr]
        pk = quote(meta.pk.column)  # type: ignore[union-attr]
        table = quote(meta.db_table)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        picked = (
            f"SELECT {pk}, {column[key_field]}, {column['email']}, {column['synced_at']} > %s FROM {table}"
        )
        self.sql_select_key_or_email = (
            f"{picked} WHERE {column[key_field]} = %s OR {column['email']} = %s{lock}"
        )
        self.sql_select_key = f"{picked} WHERE {column[key_field]} = %s{lock}"
        names = list(self.fields)
        self.sql_insert = (
            f"INSERT INTO {table} ({', '.join(column[name] for name in names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))})"
        )
        self.sql_update = (
            f"UPDATE {table} SET {', '.join(f'{column[name]} = %s' for name in names[1:])} WHERE {pk} = %s"
        )
        self.sql_release = f"UPDATE {table} SET {column['email']} = %s WHERE {pk} = %s"
        self.sql_delete_row = f"DELETE FROM {table} WHERE {pk} = %s"
        self.key_field = key_field

    def _prep(self, name: str, value: Any) -> Any:
        """Adapt a value for the column of the given field."""
        return self.fields[name].get_db_prep_save(value, connection)

    def find(self, key: int, email: str | None, moment: datetime) -> list[MirrorRow]:
        """Return the row with the key and any row holding the email (at most two)."""
        when = self.fields["synced_at"].get_db_prep_value(moment, connection)
        with connection.cursor() as cursor:
            if email is None:
                cursor.execute(self.sql_select_key, [when, key])
            else:
                cursor.execute(self.sql_select_key_or_email, [when, key, email])
            return [
                MirrorRow(pk, row_key, row_email, bool(newer)) for pk, row_key, row_email, newer in cursor
            ]

    def create(self, key: int, values: dict[str, Any]) -> None:
        """Insert a row with the key and values (values include synced_at)."""
        params = [self._prep(self.key_field, key)]
        params += [self._prep(name, values[name]) for name in list(self.fields)[1:]]
        with connection.cursor() as cursor:
            cursor.execute(self.sql_insert, params)

    def update(self, pk: int, values: dict[str, Any]) -> None:
        """Overwrite every mirrored field of a row (values include synced_at)."""
        params = [self._prep(name, values[name]) for name in list(self.fields)[1:]]
        with connection.cursor() as cursor:
            cursor.execute(self.sql_update, [*params, pk])

    def set_email(self, pk: int, email: str) -> None:
        """Give a row another email."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql_release, [self._prep("email", email), pk])

    def delete(self, pk: int) -> None:
        """Delete a row."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql_delete_row, [pk])


class ProcessedStatements:
    """Build and run the SQL of the ProcessedEvent record."""

    def __init__(self) -> None:
        """Build the statements for the default database's vendor."""
        meta = ProcessedEvent._meta
        quote = connection.ops.quote_name
        self.fields = {name: meta.get_field(name) for name in ("event_id", "queue", "action", "outcome")}
        self.fields["processed_at"] = meta.get_field("processed_at")
        table = quote(meta.db_table)
        columns = ", ".join(quote(field.column) for field in self.fields.values())  # type: ignore[union-attr]
        self.sql_insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(self.fields))})"
        self.sql_exists = f"SELECT 1 FROM {table} WHERE {quote(meta.pk.column)} = %s"  # type: ignore[union-attr]

    def recorded(self, event_id: uuid.UUID) -> bool:
        """Tell whether the event is already recorded."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql_exists, [self.fields["event_id"].get_db_prep_value(event_id, connection)])
            return cursor.fetchone() is not None

    def record(self, event_id: uuid.UUID, queue: str, action: str, outcome: str) -> None:
        """Insert the record of a handled event."""
        values = (event_id, queue, action, outcome, timezone.now())
        params = [
            field.get_db_prep_save(value, connection)
            for field, value in zip(self.fields.values(), values, strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(self.sql_insert, params)


@cache
def mirror_statements(
    model: type[models.Model], key_field: str, fields: tuple[str, ...], vendor: str
) -> MirrorStatements:
    """Return the statements of a mirror model for a database vendor (built once)."""
    return MirrorStatements(model, key_field, fields)


@cache
def processed_statements(vendor: str) -> ProcessedStatements:
    """Return the ProcessedEvent statements for a database vendor (built once)."""
    return ProcessedStatements()
