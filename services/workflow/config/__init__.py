"""Configure the workflow service and expose its Celery app."""

from .celery_app import app as celery_app

__all__ = ["celery_app"]
