"""Seed the administrator that logs in to this service's admin site.

This file is the same in every consumer (the runner's tests/test_shared_copies.py checks it):
edit one copy, then copy it over the others.

The administrator ``admin@example.com`` (its username and its email) is a superuser in
Django's own user table, apart from the tables mirrored from auth; nothing counts or syncs
it. It is a seeded row like the others: created when missing with the seed password, kept
when a person edited it, and given its seeded values back with ``--repair``. Its password is
set when it is created; a person's later change is kept, and ``--repair`` sets the seed
password again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password

from .passwords import seed_password

ADMIN_LOGIN = "admin@example.com"
ADMIN_VALUES: dict[str, Any] = {
    "email": ADMIN_LOGIN,
    "is_staff": True,
    "is_superuser": True,
    "is_active": True,
}


def seed_admin(
    hashed: Callable[[], str], repair: bool = False, password: Callable[[], str] = seed_password
) -> str:
    """Create or check the administrator; return the outcome: created, unchanged, kept or repaired.

    ``hashed`` returns the hash of the seed password (called only when a row needs it) and
    ``password`` the password itself (read only with ``repair``, to check the stored hash).
    """
    manager = get_user_model()._default_manager
    admin = manager.filter(username=ADMIN_LOGIN).first()
    if admin is None:
        manager.create(username=ADMIN_LOGIN, password=hashed(), **ADMIN_VALUES)
        return "created"
    edited = any(getattr(admin, name) != value for name, value in ADMIN_VALUES.items())
    if not repair:
        return "kept" if edited else "unchanged"
    new_password = not check_password(password(), admin.password)
    if not (edited or new_password):
        return "unchanged"
    for name, value in ADMIN_VALUES.items():
        setattr(admin, name, value)
    if new_password:
        admin.password = hashed()
    admin.save()
    return "repaired"


def admin_notes(outcome: str) -> list[str]:
    """Describe what the seed did to the administrator (nothing when it was already right)."""
    return {
        "created": [f"Created the administrator {ADMIN_LOGIN}: log in to /admin/ with the seed password."],
        "kept": [
            f"Kept the administrator {ADMIN_LOGIN} as people edited it; pass --repair to give it "
            "its seeded values and the seed password back."
        ],
        "repaired": [f"Gave the administrator {ADMIN_LOGIN} its seeded values and the seed password back."],
    }.get(outcome, [])
