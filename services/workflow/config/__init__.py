"""Configure the workflow Django project.

The Celery application is loaded on first use (``config.celery_app``, or ``celery -A config``):
management commands that never send or consume a task do not import Celery.
"""

from typing import Any

__all__ = ["celery_app"]


def __getattr__(name: str) -> Any:
    """Load the Celery application when it is asked for (PEP 562)."""
    if name in ("app", "celery_app"):
        from .celery_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
