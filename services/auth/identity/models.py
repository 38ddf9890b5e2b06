"""Define systems, roles, users, HDTS employees, the seed mark and the outbox."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, router, transaction
from django.utils import timezone

from .managers import UserManager

company_id_validator = RegexValidator(r"^MA\d{4}$", "A company id is MA followed by 4 digits.")


class Department(models.TextChoices):
    """List the three departments used everywhere."""

    IT = "IT Department", "IT Department"
    ASSET = "Asset Department", "Asset Department"
    BUDGET = "Budget Department", "Budget Department"


class Status(models.TextChoices):
    """List the approval states of users and employees."""

    PENDING = "Pending", "Pending"
    APPROVED = "Approved", "Approved"
    REJECTED = "Rejected", "Rejected"


def default_link_settings() -> dict[str, Any]:
    """Return the default settings of a user-role link."""
    return {"is_deployed": True}


class AtomicSaveMixin(models.Model):
    """Run save() in a transaction so post_save outbox events share it."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save the row and let the signal handlers record events atomically."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)


class System(AtomicSaveMixin):
    """Represent one application of the platform (hdts, tts, ams, bms)."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=20, unique=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        """Return the system's slug."""
        return self.slug


class Role(AtomicSaveMixin):
    """Represent a role that users hold within one system."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["system__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["system", "name"], name="identity_role_unique_system_name"),
        ]

    def __str__(self) -> str:
        """Return `<system>: <name>`."""
        return f"{self.system.slug}: {self.name}"


class User(AtomicSaveMixin, AbstractBaseUser, PermissionsMixin):
    """Represent a platform user; the email is the login."""

    email = models.EmailField(unique=True)
    username = models.CharField(max_length=150, unique=True)
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    department = models.CharField(max_length=32, choices=Department.choices, blank=True, default="")
    company_id = models.CharField(
        max_length=6, unique=True, null=True, blank=True, validators=[company_id_validator]
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["username"]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        """Return the user's email."""
        return self.email

    def get_full_name(self) -> str:
        """Return `first last`, or the username when both are blank."""
        return f"{self.first_name} {self.last_name}".strip() or self.username

    def get_short_name(self) -> str:
        """Return the first name, or the username when blank."""
        return self.first_name or self.username


class UserSystemRole(AtomicSaveMixin):
    """Link a user to a role of a system."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="system_roles")
    system = models.ForeignKey(
        System,
        on_delete=models.CASCADE,
        related_name="user_roles",
        blank=True,
        help_text="Defaults to the role's system.",
    )
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="user_links")
    is_active = models.BooleanField(default=True)
    settings = models.JSONField(default=default_link_settings, blank=True)

    class Meta:
        ordering = ["user_id", "system_id", "role_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "system", "role"], name="identity_usersystemrole_unique_link"
            ),
        ]

    def __str__(self) -> str:
        """Return `<email> → <system>: <role>`."""
        return f"{self.user} → {self.role}"

    def clean(self) -> None:
        """Fill the system from the role and reject a role of another system."""
        if self.role_id is not None:
            if self.system_id is None:
                self.system_id = self.role.system_id
            elif self.system_id != self.role.system_id:
                raise ValidationError({"role": "The role belongs to another system."})

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Fill the system from the role when it is missing, then save."""
        if self.system_id is None and self.role_id is not None:
            self.system_id = self.role.system_id
        super().save(*args, **kwargs)


class Employee(AtomicSaveMixin):
    """Hold an HDTS employee identity (synced to the helpdesk)."""

    email = models.EmailField(unique=True)
    username = models.CharField(max_length=150)
    first_name = models.CharField(max_length=150)
    last_name = models.CharField(max_length=150)
    department = models.CharField(max_length=32, choices=Department.choices, blank=True, default="")
    company_id = models.CharField(max_length=6, unique=True, validators=[company_id_validator])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    password = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["company_id"]

    def __str__(self) -> str:
        """Return `<company id> <email>`."""
        return f"{self.company_id} {self.email}"


class SeedMark(models.Model):
    """Remember the options of the last `seed` run (one row, name "seed")."""

    name = models.CharField(max_length=32, primary_key=True, default="seed")
    options = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        """Return the mark's name."""
        return self.name


class Queue(models.TextChoices):
    """List the sync queues fed by the outbox."""

    ROLE = "tts.role.sync", "tts.role.sync"
    USER_SYSTEM_ROLE = "tts.user_system_role.sync", "tts.user_system_role.sync"
    HDTS_USER = "hdts.user.sync", "hdts.user.sync"
    EMPLOYEE = "hdts.employee.sync", "hdts.employee.sync"


class Action(models.TextChoices):
    """List the actions of sync events."""

    CREATE = "create", "create"
    UPDATE = "update", "update"
    DELETE = "delete", "delete"


class OutboxEvent(models.Model):
    """Store a sync event written in the same transaction as its change."""

    seq = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    queue = models.CharField(max_length=40, choices=Queue.choices)
    action = models.CharField(max_length=10, choices=Action.choices)
    entity_id = models.BigIntegerField(help_text="Primary key of the synced row (the payload's key).")
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["delivered_at", "seq"], name="identity_outbox_pending"),
            models.Index(fields=["queue", "entity_id", "seq"], name="identity_outbox_entity"),
        ]

    def __str__(self) -> str:
        """Return `<seq> <queue> <action> <entity id>`."""
        return f"{self.seq} {self.queue} {self.action} {self.entity_id}"
