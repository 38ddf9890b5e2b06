"""Declare the helpdesk Django application."""

from django.apps import AppConfig


class HelpdeskConfig(AppConfig):
    """Configure the helpdesk app (label ``helpdesk``)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "helpdesk"
    label = "helpdesk"
    verbose_name = "Help Desk and Ticketing System"
