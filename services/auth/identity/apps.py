"""Declare the identity app (label `identity`, never Django's `auth`)."""

from django.apps import AppConfig


class IdentityConfig(AppConfig):
    """Hold systems, roles, users and HDTS employees; connect outbox signals."""

    name = "identity"
    label = "identity"
    verbose_name = "Identity"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the signal handlers that record outbox events."""
        from . import signals

        signals.connect()
