"""Serve the health endpoint."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

from .seeding import SERVICE
from .state import check_database, pending_migrations


def health(request: HttpRequest) -> JsonResponse:
    """Report whether the database answers and whether migrations are pending."""

    try:
        check_database()
        pending = bool(pending_migrations(connection))
    except DatabaseError:
        body = {"service": SERVICE, "database": "error", "migrations_pending": True}
        return JsonResponse(body, status=503)
    return JsonResponse({"service": SERVICE, "database": "ok", "migrations_pending": pending})
