"""Define one Celery task per consumed queue; each only calls the handler."""

from typing import Any

from celery import shared_task

from .handlers import handle_event


@shared_task(name="hdts.user.sync", acks_late=True)
def sync_hdts_user(event: dict[str, Any]) -> str:
    """Apply one ``hdts.user.sync`` event and return its outcome."""
    return handle_event(event)


@shared_task(name="hdts.employee.sync", acks_late=True)
def sync_hdts_employee(event: dict[str, Any]) -> str:
    """Apply one ``hdts.employee.sync`` event and return its outcome."""
    return handle_event(event)
