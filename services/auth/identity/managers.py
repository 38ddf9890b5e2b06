"""Create users whose login is their email."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth.base_user import BaseUserManager

if TYPE_CHECKING:
    from .models import User


class UserManager(BaseUserManager["User"]):
    """Create users and superusers keyed on email."""

    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields: Any) -> User:
        """Create and save a user with a normalized email and a hashed password."""
        if not email:
            raise ValueError("Users need an email address.")
        email = self.normalize_email(email)
        fields.setdefault("username", email.split("@", 1)[0])
        user = self.model(email=email, **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        """Create a regular user (not staff, not superuser)."""
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        """Create an approved staff superuser."""
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        fields.setdefault("status", "Approved")
        if fields["is_staff"] is not True or fields["is_superuser"] is not True:
            raise ValueError("A superuser needs is_staff=True and is_superuser=True.")
        return self._create(email, password, **fields)
