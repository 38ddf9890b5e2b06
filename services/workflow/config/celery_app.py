"""Create the Celery application of the workflow service (no broker connection at import)."""

import os
from typing import Any

from celery import Celery, signals

from .queues import sync_queues

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("workflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


app.conf.task_queues = sync_queues()


@signals.worker_init.connect
def stop_query_logging(**kwargs: Any) -> None:
    """Turn DEBUG off in a worker: it serves no pages, and DEBUG would log every SQL query."""
    from django.conf import settings

    settings.DEBUG = False
