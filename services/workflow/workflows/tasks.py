"""Expose the sync consumer as Celery tasks named after their queues."""

from typing import Any

from celery import shared_task

from .handlers import LINK_QUEUE, ROLE_QUEUE, handle_event


@shared_task(name=ROLE_QUEUE, acks_late=True)
def role_sync(event: dict[str, Any]) -> str:
    """Apply one tts.role.sync event and return its outcome."""
    return handle_event(event)


@shared_task(name=LINK_QUEUE, acks_late=True)
def user_system_role_sync(event: dict[str, Any]) -> str:
    """Apply one tts.user_system_role.sync event and return its outcome."""
    return handle_event(event)
