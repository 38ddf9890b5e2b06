"""Create the Celery app of the auth service (no broker connection at import)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("auth")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
