"""Expose the sync consumer as Celery tasks named after their queues.

Delivery is at least once: a message is acknowledged after the task returns
(``acks_late``) and redelivered if the worker dies first; the handler records
every event, so a redelivery changes nothing. Transient database errors, and a
role name still held by another role (a rename may be on its way), are retried
with a capped backoff.

No event is ever dropped. One that still fails after its retries, a malformed
one, or one that hits an unexpected error is dead-lettered: it is sent once more
with the reason in its ``x-sync-failure`` header, and that delivery is rejected
without requeue, so RabbitMQ moves it to ``<queue>.dead`` (the queue is declared
with ``x-dead-letter-*`` arguments, see ``config/settings.py``) and adds its
``x-death`` header. The runner shows the dead letters in ``inv workers.status``
and its broker sync re-delivers them once the cause is gone.

In a worker, first deliveries are applied in batches, many per transaction (the
tasks' ``Strategy``, see ``batching.py``); a batch that fails hands each of its
messages to these tasks, one at a time, so all of the above holds for each.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Ignore, Reject
from django.db import OperationalError, connection

from .handlers import LINK_QUEUE, ROLE_QUEUE, EventConflict, InvalidEvent, handle_event

logger = logging.getLogger(__name__)

#: The header that carries why a message is dead-lettered (read by the runner's status).
FAILURE_HEADER = "x-sync-failure"
#: The headers RabbitMQ adds when it dead-letters a message (never copied to a new one).
DEATH_HEADERS = ("x-death", "x-first-death-", "x-last-death-")
#: Retries of a transient error before the event is dead-lettered (tests make it short).
MAX_RETRIES = int(os.environ.get("SYNC_MAX_RETRIES", "10"))
RETRYABLE: tuple[type[Exception], ...] = (OperationalError, EventConflict)
TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    # A failure that escapes consume() all the same rejects the message: RabbitMQ dead-letters it.
    "acks_on_failure": False,
    "reject_on_worker_lost": True,
    "autoretry_for": RETRYABLE,
    "retry_backoff": 1,
    "retry_backoff_max": 8,
    "retry_jitter": False,
    "max_retries": MAX_RETRIES,
    # First deliveries are applied many per transaction; the rest, and a failed batch's
    # messages, take the one-task path below (see batching.py).
    "Strategy": "workflows.batching:strategy",
}


def consume(task: Task, event: dict[str, Any]) -> str:
    """Apply one event; dead-letter it when it is malformed or fails for good."""
    failure = (task.request.headers or {}).get(FAILURE_HEADER)
    if failure:
        raise Reject(failure, requeue=False)  # RabbitMQ moves it to <queue>.dead
    try:
        return handle_event(event)
    except InvalidEvent as error:
        raise dead_letter(task, event, f"InvalidEvent: {error}") from None
    except RETRYABLE as error:
        # The worker keeps its connection across tasks (CELERY_DB_REUSE_MAX):
        # drop a broken one so the retry reconnects.
        if isinstance(error, OperationalError) and not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        if task.request.retries >= (task.max_retries or 0):
            reason = f"{type(error).__name__}: {error} (still failing after {task.request.retries} retries)"
            raise dead_letter(task, event, reason) from None
        raise  # autoretry_for schedules the retry
    except Exception as error:
        raise dead_letter(task, event, f"{type(error).__name__}: {error}") from None


def dead_letter(task: Task, event: dict[str, Any], reason: str) -> Exception:
    """Send the message once more with ``reason`` in its header; return the exception that acks this one.

    The copy is rejected on arrival (see consume), so it reaches ``<queue>.dead`` with its
    reason. Where nothing can be sent (an eager run, a broker gone), reject this delivery
    at once: it is dead-lettered all the same, its reason only in the log.
    """
    event_id = event.get("id") if isinstance(event, dict) else None
    logger.error("Dead-lettering event %s of %s: %s", event_id, task.name, reason)
    request = task.request
    if request.is_eager or request.called_directly:
        return Reject(reason, requeue=False)
    kept = {k: v for k, v in (request.headers or {}).items() if not k.startswith(DEATH_HEADERS)}
    headers = {**kept, FAILURE_HEADER: reason}
    try:
        task.signature_from_request(request, headers=headers).apply_async()
    except Exception:
        logger.exception("Could not send event %s with its reason; rejecting it as it is", event_id)
        return Reject(reason, requeue=False)
    return Ignore()  # acknowledged: the copy carries the event on


@shared_task(name=ROLE_QUEUE, **TASK_OPTIONS)
def role_sync(self: Task, event: dict[str, Any]) -> str:
    """Apply one tts.role.sync event and return its outcome."""
    return consume(self, event)


@shared_task(name=LINK_QUEUE, **TASK_OPTIONS)
def user_system_role_sync(self: Task, event: dict[str, Any]) -> str:
    """Apply one tts.user_system_role.sync event and return its outcome."""
    return consume(self, event)
