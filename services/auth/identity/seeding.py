"""Seed systems, roles, users and HDTS employees idempotently.

Every step upserts rows keyed on natural keys with bulk writes, records the
matching outbox events itself (bulk writes fire no signals) and returns a
report. `run_seed` runs all steps in order in one transaction.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from . import outbox
from .errors import SeedError
from .models import Employee, Role, SeedMark, Status, System, User, UserSystemRole
from .passwords import PasswordSource
from .seed_data import (
    ADMIN_ROLE,
    DEPARTMENTS,
    FIRST_NAMES,
    FIXED_EMPLOYEES,
    HDTS_ROLES,
    HDTS_USERS,
    LAST_NAMES,
    MAX_EMPLOYEES,
    ROLE_DESCRIPTIONS,
    STATUS_WEIGHTS,
    SYSTEMS,
    TTS_ROLES,
    TTS_USERS,
    SeedEmployee,
    SeedUser,
    admin_user,
)
from .upsert import BATCH_SIZE, ModelReport, UpsertResult, upsert

SERVICE = "auth"
DEFAULT_SEED = 7
MODEL_NAMES: tuple[str, ...] = ("System", "Role", "User", "UserSystemRole", "Employee")
MAX_EXTRA_EMPLOYEES = MAX_EMPLOYEES - len(FIXED_EMPLOYEES)
INTEGER = re.compile(r"[+-]?\d+")
LINK_SETTINGS: dict[str, Any] = {"is_deployed": True}


@dataclass
class SeedReport:
    """Report what one or more seed steps did."""

    models: dict[str, ModelReport] = field(default_factory=dict)
    events: int = 0
    notes: list[str] = field(default_factory=list)

    def model(self, name: str) -> ModelReport:
        """Return the report of a model, creating it empty."""
        return self.models.setdefault(name, ModelReport())

    def merge(self, other: SeedReport) -> None:
        """Add another step's report to this one."""
        for name, report in other.models.items():
            self.model(name).add(report)
        self.events += other.events
        self.notes.extend(other.notes)

    @property
    def changed(self) -> bool:
        """Tell whether any row was created or updated."""
        return any(report.changed for report in self.models.values())

    def lines(self) -> list[str]:
        """Describe the report in human text, one line per model."""
        out = [
            f"{name}: {r.created} created, {r.updated} updated, {r.unchanged} unchanged"
            for name, r in self.models.items()
        ]
        out.append(f"Outbox: {self.events} sync events recorded.")
        out.extend(self.notes)
        if not self.changed:
            out.append("Nothing to do: already seeded.")
        return out


@dataclass
class SeedOutcome:
    """Hold the result of a full `seed` run (the contract's JSON document)."""

    options: dict[str, int]
    report: SeedReport
    counts: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """Return the JSON document of the contract."""
        return {
            "service": SERVICE,
            "options": self.options,
            "models": {name: self.report.model(name).as_dict() for name in MODEL_NAMES},
            "counts": self.counts,
            "changed": self.report.changed,
        }


def parse_int(value: object, option: str) -> int:
    """Parse an integer option given as int or text, or raise SeedError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not INTEGER.fullmatch(text):
        raise SeedError(f"{option} must be a whole number, got {value!r}; pass e.g. {option} 10.")
    return int(text)


def parse_count(value: object, option: str, maximum: int) -> int:
    """Parse a count between 0 and `maximum`, or raise SeedError."""
    count = parse_int(value, option)
    if count < 0:
        raise SeedError(f"{option} must be 0 or more, got {count}; pass a non-negative count.")
    if count > maximum:
        raise SeedError(
            f"{option} must be at most {maximum} so that the {len(FIXED_EMPLOYEES)} fixed and the "
            f"generated employees fit company ids MA0001-MA{MAX_EMPLOYEES}, got {count}; "
            "pass a smaller count."
        )
    return count


def parse_employee_count(value: object, option: str = "--employees") -> int:
    """Parse the number of extra employees to generate."""
    return parse_count(value, option, MAX_EXTRA_EMPLOYEES)


def system_ids(slugs: Sequence[str]) -> dict[str, int]:
    """Return the ids of systems by slug, or raise SeedError when one is missing."""
    found = dict(System.objects.filter(slug__in=slugs).values_list("slug", "id"))
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        raise SeedError(f"System {', '.join(missing)} is missing; run seed_systems first.")
    return found


def seed_roles(pairs: Sequence[tuple[str, str]]) -> UpsertResult:
    """Upsert roles given as (system slug, role name) pairs."""
    ids = system_ids(sorted({slug for slug, _ in pairs}))
    rows = [
        {"system_id": ids[slug], "name": name, "description": ROLE_DESCRIPTIONS[(slug, name)]}
        for slug, name in pairs
    ]
    return upsert(Role, rows, key=("system_id", "name"))


def seed_users(entries: Sequence[tuple[str, SeedUser]], passwords: PasswordSource) -> SeedReport:
    """Upsert users and their role links, given as (system slug, user) pairs."""
    ids = system_ids(sorted({slug for slug, _ in entries}))
    role_ids = {
        (slug, name): role_id
        for slug, name, role_id in Role.objects.filter(system_id__in=ids.values()).values_list(
            "system__slug", "name", "id"
        )
    }
    missing = sorted({f"{slug} {u.role}" for slug, u in entries if (slug, u.role) not in role_ids})
    if missing:
        raise SeedError(f"Role {', '.join(missing)} is missing; run the earlier seed steps first.")
    user_rows = [
        {
            "email": u.email,
            "username": u.username,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "department": u.department,
            "company_id": u.company_id,
            "status": Status.APPROVED.value,
            "is_staff": u.is_staff,
            "is_active": True,
        }
        for _, u in entries
    ]
    users = upsert(User, user_rows, key=("email",), on_create=lambda: {"password": passwords.hashed()})
    link_rows = [
        {
            "user_id": users.pk_by_key[(u.email,)],
            "system_id": ids[slug],
            "role_id": role_ids[(slug, u.role)],
            "is_active": True,
            "settings": dict(LINK_SETTINGS),
        }
        for slug, u in entries
    ]
    links = upsert(UserSystemRole, link_rows, key=("user_id", "system_id", "role_id"))
    report = SeedReport(models={"User": users.report, "UserSystemRole": links.report})
    report.events = outbox.record_changes(outbox.affected(users=users.changed_ids, links=links.changed_ids))
    return report


def seed_systems(passwords: PasswordSource | None = None) -> SeedReport:
    """Seed the four systems, their Admin roles and one admin user each."""
    passwords = passwords or PasswordSource()
    with transaction.atomic():
        systems = upsert(System, [{"slug": slug, "name": name} for slug, name in SYSTEMS], key=("slug",))
        roles = seed_roles([(slug, ADMIN_ROLE) for slug, _ in SYSTEMS])
        report = SeedReport(models={"System": systems.report, "Role": roles.report})
        report.events = outbox.record_changes(
            outbox.affected(systems=systems.changed_ids, roles=roles.changed_ids)
        )
        report.merge(seed_users([(slug, admin_user(slug)) for slug, _ in SYSTEMS], passwords))
    return report


def seed_system_users(
    slug: str, role_names: Sequence[str], users: Sequence[SeedUser], passwords: PasswordSource
) -> SeedReport:
    """Seed the extra roles and the fixed users of one system."""
    with transaction.atomic():
        roles = seed_roles([(slug, name) for name in role_names])
        report = SeedReport(models={"Role": roles.report})
        report.events = outbox.record_changes(outbox.affected(roles=roles.changed_ids))
        report.merge(seed_users([(slug, user) for user in users], passwords))
    return report


def seed_tts(passwords: PasswordSource | None = None) -> SeedReport:
    """Seed the TTS roles Asset Manager and Budget Manager and the 4 TTS users."""
    return seed_system_users("tts", TTS_ROLES, TTS_USERS, passwords or PasswordSource())


def seed_hdts(passwords: PasswordSource | None = None) -> SeedReport:
    """Seed the HDTS roles Employee and Ticket Coordinator and the 5 HDTS users."""
    return seed_system_users("hdts", HDTS_ROLES, HDTS_USERS, passwords or PasswordSource())


def generated_employees(count: int, seed: int) -> Iterator[SeedEmployee]:
    """Yield `count` extra employees, drawn in order so a prefix never depends on `count`."""
    rng = random.Random(seed)
    statuses = [status for status, _ in STATUS_WEIGHTS]
    weights = [weight for _, weight in STATUS_WEIGHTS]
    for number in range(len(FIXED_EMPLOYEES) + 1, len(FIXED_EMPLOYEES) + count + 1):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        department = rng.choice(DEPARTMENTS)
        status = rng.choices(statuses, weights)[0]
        handle = f"{first}.{last}.{number:04d}".lower()
        yield SeedEmployee(
            company_id=f"MA{number:04d}",
            email=f"{handle}@example.com",
            username=handle,
            first_name=first,
            last_name=last,
            department=department,
            status=status,
        )


def all_employees(count: int, seed: int) -> Iterator[SeedEmployee]:
    """Yield the fixed employees, then the generated ones."""
    yield from FIXED_EMPLOYEES
    yield from generated_employees(count, seed)


def seed_employees(
    count: int = 0, seed: int = DEFAULT_SEED, passwords: PasswordSource | None = None
) -> SeedReport:
    """Seed the 8 fixed HDTS employees plus `count` generated ones (deterministic by seed)."""
    count = parse_employee_count(count, "--count")
    passwords = passwords or PasswordSource()
    report = SeedReport(models={"Employee": ModelReport()})
    with transaction.atomic():
        for batch in outbox.chunked(all_employees(count, seed), BATCH_SIZE):
            rows = [
                {
                    "company_id": e.company_id,
                    "email": e.email,
                    "username": e.username,
                    "first_name": e.first_name,
                    "last_name": e.last_name,
                    "department": e.department,
                    "status": e.status,
                }
                for e in batch
            ]
            result = upsert(
                Employee, rows, key=("company_id",), on_create=lambda: {"password": passwords.hashed()}
            )
            report.model("Employee").add(result.report)
            report.events += outbox.record_changes(outbox.Keys(employees=set(result.changed_ids)))
        extra = Employee.objects.count() - len(FIXED_EMPLOYEES) - count
    if extra > 0:
        report.notes.append(
            f"Kept {extra} employees beyond the requested count: a smaller count never deletes."
        )
    return report


def model_counts() -> dict[str, int]:
    """Count the rows of every seeded model."""
    models = (System, Role, User, UserSystemRole, Employee)
    return {name: model.objects.count() for name, model in zip(MODEL_NAMES, models, strict=True)}


def run_seed(employees: object = 0, seed: object = DEFAULT_SEED) -> SeedOutcome:
    """Validate the options, then run every seed step in order in one transaction."""
    options = {
        "employees": parse_employee_count(employees),
        "seed": parse_int(seed, "--seed"),
    }
    passwords = PasswordSource()
    report = SeedReport(models={name: ModelReport() for name in MODEL_NAMES})
    with transaction.atomic():
        report.merge(seed_systems(passwords))
        report.merge(seed_tts(passwords))
        report.merge(seed_hdts(passwords))
        report.merge(seed_employees(options["employees"], options["seed"], passwords))
        mark = SeedMark.objects.filter(name="seed").first()
        if report.changed or mark is None or mark.options != options:
            SeedMark.objects.update_or_create(name="seed", defaults={"options": options})
        counts = model_counts()
    report.notes.extend(passwords.notes)
    return SeedOutcome(options=options, report=report, counts=counts)
