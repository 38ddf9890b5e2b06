"""Seed the accounts that log in to the admin site: the administrator and the staff group.

The administrator ``admin@example.com`` is a superuser with the seed password and no system
role, so nothing about it is synced (the outbox only carries users holding an HDTS role).
It is a seeded row like the others: created when missing, kept when a person edited it
(``--repair`` gives it its seeded values back). Its password is set when it is created; a
person's later change is kept, and ``--repair`` sets the seed password again.

The seeded staff users (the system Admins) join the group ``System administrators``, which
may view and change the identity models. Missing group rows, permission links and
memberships are created again; links and members people added are never removed.
"""

from __future__ import annotations

from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Group, Permission

from . import outbox
from .errors import SeedError
from .models import Employee, OutboxEvent, Role, SeedMark, Status, System, User, UserSystemRole
from .passwords import PasswordSource
from .seed_data import HDTS_USERS, SYSTEMS, TTS_USERS, admin_user
from .seeding import ModelReport, Policy, SeedReport, sync_rows

ADMIN_EMAIL = "admin@example.com"
ADMIN_VALUES = {
    "username": "admin",
    "first_name": "",
    "last_name": "",
    "department": "",
    "company_id": None,
    "status": Status.APPROVED.value,
    "is_staff": True,
    "is_superuser": True,
    "is_active": True,
}
STAFF_GROUP = "System administrators"
#: What the staff group may do, per identity model.
STAFF_PERMISSIONS: dict[type, tuple[str, ...]] = {
    System: ("view", "change"),
    Role: ("view", "change"),
    User: ("view", "change"),
    UserSystemRole: ("view", "change"),
    Employee: ("view", "change"),
    SeedMark: ("view",),
    OutboxEvent: ("view",),
}


def staff_emails() -> list[str]:
    """Return the emails of the seeded staff users (the system Admins), in seed order."""
    users = [admin_user(slug) for slug, _ in SYSTEMS] + list(TTS_USERS) + list(HDTS_USERS)
    return [user.email for user in users if user.is_staff]


def seed_admin(passwords: PasswordSource, policy: Policy | None = None) -> SeedReport:
    """Create or update the administrator; with ``repair`` also give it the seed password back."""
    policy = policy or Policy()
    rows = [{"email": ADMIN_EMAIL, **ADMIN_VALUES}]
    result = sync_rows(
        User,
        rows,
        ("email",),
        policy.fixed(rows),
        policy.repair,
        on_create=lambda: {"password": passwords.hashed()},
    )
    report = result.report
    if policy.repair and not result.created_ids:
        admin = User.objects.get(email=ADMIN_EMAIL)
        if not check_password(passwords.plain(), admin.password):
            User.objects.filter(pk=admin.pk).update(password=passwords.hashed())
            if not result.updated_ids:
                report.unchanged -= 1
                report.repaired += 1
    seeded = SeedReport(models={"User": report})
    seeded.events = outbox.record_changes(outbox.affected(users=result.changed_ids))
    return seeded


def staff_permissions() -> list[int]:
    """Return the ids of the staff group's permissions, or raise SeedError when one is missing."""
    wanted = {
        (model._meta.app_label, f"{action}_{model._meta.model_name}")
        for model, actions in STAFF_PERMISSIONS.items()
        for action in actions
    }
    found = {
        (app_label, codename): pk
        for pk, app_label, codename in Permission.objects.filter(
            content_type__app_label__in={app for app, _ in wanted}, codename__in={c for _, c in wanted}
        ).values_list("pk", "content_type__app_label", "codename")
    }
    missing = sorted(codename for app, codename in wanted if (app, codename) not in found)
    if missing:
        raise SeedError(f"Permissions {', '.join(missing)} are missing; run 'manage.py migrate' first.")
    return sorted(found[key] for key in wanted)


def seed_staff_group() -> list[str]:
    """Create the staff group, its missing permissions and its missing members; return notes."""
    group, created = Group.objects.get_or_create(name=STAFF_GROUP)
    links = Group.permissions.through
    have = set(links.objects.filter(group_id=group.pk).values_list("permission_id", flat=True))
    new_links = [links(group_id=group.pk, permission_id=pk) for pk in staff_permissions() if pk not in have]
    links.objects.bulk_create(new_links)
    members = User.groups.through
    staff = list(User.objects.filter(email__in=staff_emails()).order_by("email").values_list("pk", flat=True))
    have = set(members.objects.filter(group_id=group.pk).values_list("user_id", flat=True))
    new_members = [members(group_id=group.pk, user_id=pk) for pk in staff if pk not in have]
    members.objects.bulk_create(new_members)
    if not (created or new_links or new_members):
        return []
    done = "created" if created else "completed"
    return [
        f"Group {STAFF_GROUP}: {done}, {len(new_links)} permissions and {len(new_members)} "
        "staff members added."
    ]


def with_admin(seeded: dict[str, dict[str, int]], edits: bool = False) -> dict[str, dict[str, int]]:
    """Count the administrator as one more seeded User in a ``seeded_state`` report."""
    stored = User.objects.filter(email=ADMIN_EMAIL).values_list(*ADMIN_VALUES).first()
    numbers = seeded["User"]
    numbers["expected"] += 1
    if stored is None:
        numbers["missing"] += 1
    else:
        numbers["extra"] -= 1
        if edits and stored != tuple(ADMIN_VALUES.values()):
            numbers["edited"] = numbers.get("edited", 0) + 1
    return seeded


def seed_accounts(passwords: PasswordSource, policy: Policy | None = None) -> SeedReport:
    """Seed the administrator and the staff group (call inside the seed's transaction)."""
    report = SeedReport(models={"User": ModelReport()})
    report.merge(seed_admin(passwords, policy))
    report.notes.extend(seed_staff_group())
    return report
