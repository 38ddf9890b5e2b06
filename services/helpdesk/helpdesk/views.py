"""Serve the health endpoint of the helpdesk service."""

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse


def health(request: HttpRequest) -> JsonResponse:
    """Report whether the database answers and whether migrations are pending."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        body = {"service": "helpdesk", "database": "error", "migrations_pending": True}
        return JsonResponse(body, status=503)
    body = {"service": "helpdesk", "database": "ok", "migrations_pending": bool(plan)}
    return JsonResponse(body, status=200)
