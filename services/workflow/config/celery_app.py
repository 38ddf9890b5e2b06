"""Create the Celery application of the workflow service (no broker connection at import)."""

import os
from typing import Any

from celery import Celery, signals
from django.conf import settings
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("workflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


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


app.conf.task_queues = sync_queues()


@signals.worker_init.connect
def stop_query_logging(**kwargs: Any) -> None:
    """Turn DEBUG off in a worker: it serves no pages, and DEBUG would log every SQL query."""
    from django.conf import settings

    settings.DEBUG = False
