"""The sync queues this service consumes, as kombu objects for its Celery workers.

Kept out of settings.py so that management commands which never touch the broker do not
import kombu. The same file in every consumer (tests/test_shared_copies.py): the queue names
come from ``settings.SYNC_QUEUES_ON_BROKER``.
"""

from typing import Any

from django.conf import settings
from kombu import Exchange, Queue


class SyncQueue(Queue):
    """A sync queue whose declaration also declares its dead-letter queue (first, so it is never missing)."""

    def declare(self, nowait: bool = False, channel: Any = None) -> str:
        """Declare ``<name>.dead`` on the default exchange, then this queue, its exchange and binding."""
        dead = Queue(self.name + settings.DEAD_LETTER_SUFFIX, durable=True)
        dead.declare(nowait=nowait, channel=channel or self.channel)
        return str(super().declare(nowait=nowait, channel=channel))


def dead_lettering(name: str) -> dict[str, str]:
    """Return the arguments of sync queue ``name``: rejected messages go to ``<name>.dead``."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": name + settings.DEAD_LETTER_SUFFIX}


def sync_queues() -> tuple[Queue, ...]:
    """The sync queues on the broker, each with its exchange, routing key and dead-lettering."""
    return tuple(
        SyncQueue(
            name,
            Exchange(name, type="direct", durable=True),
            routing_key=name,
            durable=True,
            queue_arguments=dead_lettering(name),
        )
        for name in settings.SYNC_QUEUES_ON_BROKER
    )
