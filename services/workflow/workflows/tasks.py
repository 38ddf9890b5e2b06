"""Expose the sync consumer as Celery tasks named after their queues.

Delivery is at least once: a message is acknowledged after the task returns
(``acks_late``) and redelivered if the worker dies first; the handler records
every event, so a redelivery changes nothing. Transient database errors, and a
role name still held by another role (a rename may be on its way), are retried
with a capped backoff; a malformed event is logged and acknowledged.
"""

import logging
from typing import Any

from celery import shared_task
from django.db import OperationalError, connection

from .handlers import LINK_QUEUE, ROLE_QUEUE, EventConflict, InvalidEvent, handle_event

logger = logging.getLogger(__name__)

INVALID = "invalid"
TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, EventConflict),
    "retry_backoff": 1,
    "retry_backoff_max": 8,
    "retry_jitter": False,
    "max_retries": 10,
}


def consume(event: dict[str, Any]) -> str:
    """Apply one event; log a malformed one at ERROR and return "invalid"."""
    try:
        return handle_event(event)
    except InvalidEvent as error:
        event_id = event.get("id") if isinstance(event, dict) else None
        logger.error("Dropped invalid event %s: %s", event_id, error)
        return INVALID
    except OperationalError:
        # The worker keeps its connection across tasks (CELERY_DB_REUSE_MAX):
        # drop a broken one so the retry reconnects.
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        raise


@shared_task(name=ROLE_QUEUE, **TASK_OPTIONS)
def role_sync(event: dict[str, Any]) -> str:
    """Apply one tts.role.sync event and return its outcome."""
    return consume(event)


@shared_task(name=LINK_QUEUE, **TASK_OPTIONS)
def user_system_role_sync(event: dict[str, Any]) -> str:
    """Apply one tts.user_system_role.sync event and return its outcome."""
    return consume(event)
