"""Declare the workflows app."""

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    """Hold the TTS workflow models, seeds and the sync consumer."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "workflows"
    verbose_name = "Workflows"
