"""Test the seed commands: counts, idempotence, determinism, atomicity, validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError

from identity import seeding
from identity.models import Employee, OutboxEvent, Role, SeedMark, System, User, UserSystemRole

SERVICE_DIR = Path(__file__).resolve().parents[2]
EXPECTED = {"System": 4, "Role": 8, "User": 14, "UserSystemRole": 13, "Employee": 8}
pytestmark = pytest.mark.django_db


def all_counts() -> dict[str, int]:
    """Count rows of every seeded model plus outbox events and seed marks."""
    models = (System, Role, User, UserSystemRole, Employee, OutboxEvent, SeedMark)
    return {model.__name__: model.objects.count() for model in models}


def test_default_seed_creates_expected_rows(seed_json: Callable[..., dict[str, Any]]) -> None:
    """A default seed reports the contract's document and the domain's counts."""
    document = seed_json()
    assert document["service"] == "auth"
    assert document["options"] == {"employees": 0, "seed": 7}
    assert document["counts"] == EXPECTED
    assert list(document["models"]) == list(EXPECTED)
    assert {name: r["created"] for name, r in document["models"].items()} == EXPECTED
    assert document["changed"] is True
    assert SeedMark.objects.get().options == {"employees": 0, "seed": 7}


def test_second_seed_changes_nothing(
    seed_json: Callable[..., dict[str, Any]], run: Callable[..., tuple[str, str]]
) -> None:
    """Seeding twice reports no change, records no event and leaves the seed mark alone."""
    seed_json()
    events = OutboxEvent.objects.count()
    mark_time = SeedMark.objects.get().updated_at
    second = seed_json()
    assert second["changed"] is False
    assert {name: r["unchanged"] for name, r in second["models"].items()} == EXPECTED
    assert OutboxEvent.objects.count() == events
    assert SeedMark.objects.get().updated_at == mark_time
    out, _ = run("seed")
    assert "Nothing to do: already seeded." in out


def test_fixed_data(seed_json: Callable[..., dict[str, Any]]) -> None:
    """Fixed users and employees follow the domain's description."""
    seed_json()
    assert set(System.objects.values_list("slug", flat=True)) == {"hdts", "tts", "ams", "bms"}
    for slug in ("hdts", "tts", "ams", "bms"):
        admin = User.objects.get(email=f"admin{slug}@example.com")
        assert admin.is_staff
        assert admin.system_roles.get().role.name == "Admin"
    coordinators = User.objects.filter(system_roles__role__name="Ticket Coordinator").order_by("company_id")
    assert [u.department for u in coordinators] == [
        "IT Department",
        "Asset Department",
        "IT Department",
        "Asset Department",
    ]
    hdts_admin = User.objects.get(system_roles__role__name="Admin", company_id__isnull=False)
    assert hdts_admin.department == "Budget Department"
    statuses = sorted(Employee.objects.values_list("status", flat=True))
    assert statuses.count("Approved") == 6 and statuses.count("Pending") == 1
    assert statuses.count("Rejected") == 1
    assert all(link.system_id == link.role.system_id for link in UserSystemRole.objects.all())


def test_larger_count_adds_only_the_difference(seed_json: Callable[..., dict[str, Any]]) -> None:
    """A larger count creates only the new employees; the first ones stay the same."""
    seed_json("--employees", "5")
    first = list(Employee.objects.order_by("company_id").values_list("company_id", "email"))
    document = seed_json("--employees", "12")
    assert document["models"]["Employee"] == {
        "created": 7,
        "updated": 0,
        "unchanged": 13,
        "repaired": 0,
        "kept": 0,
    }
    assert list(Employee.objects.order_by("company_id").values_list("company_id", "email"))[:13] == first


def test_smaller_count_is_refused_before_writing(run: Callable[..., tuple[str, str]]) -> None:
    """A smaller count than the last seed's fails with the fix and writes nothing."""
    run("seed", "--employees", "6")
    Employee.objects.filter(company_id="MA0003").delete()
    before = all_counts()
    with pytest.raises(CommandError) as caught:
        run("seed", "--employees", "2", "--seed", "9")
    assert str(caught.value) == (
        "auth holds 6 seeded employees beyond the 8 fixed ones; --employees 2 would leave 4 behind: "
        "run 'inv reset.auth' first, or pass the same or a larger count."
    )
    assert all_counts() == before
    assert SeedMark.objects.get().options == {"employees": 6, "seed": 7}


def test_changing_seed_updates_generated_values(seed_json: Callable[..., dict[str, Any]]) -> None:
    """Another --seed updates the generated employees deterministically, keyed on company id."""
    seed_json("--employees", "20", "--seed", "1")
    before = dict(Employee.objects.values_list("company_id", "email"))
    document = seed_json("--employees", "20", "--seed", "2")
    after = dict(Employee.objects.values_list("company_id", "email"))
    assert document["models"]["Employee"]["created"] == 0
    assert document["models"]["Employee"]["updated"] > 0
    assert set(before) == set(after)
    assert before != after
    back = seed_json("--employees", "20", "--seed", "1")
    assert dict(Employee.objects.values_list("company_id", "email")) == before
    assert back["changed"] is True


def test_generation_prefix_is_stable() -> None:
    """The first N generated employees do not depend on how many are generated."""
    short = list(seeding.generated_employees(10, 7))
    long = list(seeding.generated_employees(50, 7))
    assert long[:10] == short
    assert long[-1].company_id == "MA0058"


def test_failure_mid_seed_writes_nothing(
    transactional_db: None,
    monkeypatch: pytest.MonkeyPatch,
    run: Callable[..., tuple[str, str]],
) -> None:
    """A step failing after earlier steps succeeded rolls everything back."""

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(seeding, "seed_employees", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        run("seed", "--json")
    assert set(all_counts().values()) == {0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--employees", "-1"), "0 or more"),
        (("--employees", "abc"), "whole number"),
        (("--employees", "1.5"), "whole number"),
        (("--employees", "10000"), "at most 9991"),
        (("--employees", "9992"), "at most 9991"),
        (("--seed", "x"), "whole number"),
    ],
)
def test_bad_options_fail_before_writing(
    run: Callable[..., tuple[str, str]], args: tuple[str, ...], message: str
) -> None:
    """Bad counts raise CommandError and write nothing."""
    with pytest.raises(CommandError, match=message):
        run("seed", *args)
    assert set(all_counts().values()) == {0}


def test_bad_count_in_step_command(run: Callable[..., tuple[str, str]]) -> None:
    """The single employees step validates --count too."""
    with pytest.raises(CommandError, match="--count must be 0 or more"):
        run("seed_employees", "--count", "-3")
    assert Employee.objects.count() == 0


def test_step_commands_in_order(run: Callable[..., tuple[str, str]]) -> None:
    """The four step commands give the default state but the administrator (only `seed` adds it).

    A later step alone asks for the first.
    """
    with pytest.raises(CommandError, match="run seed_systems first"):
        run("seed_tts")
    for step in ("seed_systems", "seed_tts", "seed_hdts", "seed_employees"):
        run(step)
    assert {name: count for name, count in seeding.model_counts().items()} == {**EXPECTED, "User": 13}
    assert OutboxEvent.objects.count() == 27


def test_maximum_employee_count(seed_json: Callable[..., dict[str, Any]]) -> None:
    """The largest allowed count seeds every company id up to MA9999."""
    document = seed_json("--employees", str(seeding.MAX_EXTRA_EMPLOYEES))
    assert document["counts"]["Employee"] == 9999
    assert Employee.objects.order_by("-company_id").first().company_id == "MA9999"  # type: ignore[union-attr]
    assert OutboxEvent.objects.filter(queue="hdts.employee.sync").count() == 9999


def manage(*args: str, env: dict[str, str]) -> str:
    """Run manage.py in a subprocess; return its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=SERVICE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def dump(env: dict[str, str]) -> list[dict[str, Any]]:
    """Dump the identity rows without password hashes, event ids and times."""
    volatile = {"password", "event_id", "created_at", "delivered_at", "updated_at", "last_login"}
    rows = json.loads(manage("dumpdata", "identity", env=env))
    for row in rows:
        row["fields"] = {k: v for k, v in row["fields"].items() if k not in volatile}
    return rows


def test_same_seed_gives_same_rows_on_fresh_databases(tmp_path: Path) -> None:
    """Two fresh databases seeded with the same options hold the same rows and events."""
    dumps = []
    for name in ("one", "two"):
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp_path / name}.sqlite3",
            "SEED_USER_PASSWORD": "not-a-real-secret",
        }
        manage("migrate", "-v0", env=env)
        document = json.loads(manage("seed", "--employees", "25", "--seed", "3", "--json", env=env))
        assert document["counts"]["Employee"] == 33
        dumps.append(dump(env))
    assert dumps[0] == dumps[1]
    assert any(row["model"] == "identity.outboxevent" for row in dumps[0])


def employee_state() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return the employees and their outbox events, ids replaced by company ids (ids vary)."""
    company = dict(Employee.objects.values_list("pk", "company_id"))
    employees = list(
        Employee.objects.order_by("company_id").values_list(
            "company_id", "email", "username", "first_name", "last_name", "department", "status"
        )
    )
    recorded = OutboxEvent.objects.filter(queue="hdts.employee.sync").order_by("seq")
    events = [
        (
            action,
            company.get(entity_id, payload.get("company_id")),
            sorted((name, value) for name, value in payload.items() if name != "employee_id"),
        )
        for action, entity_id, payload in recorded.values_list("action", "entity_id", "payload")
    ]
    return employees, events


def seed_employee_story(seed_json: Callable[..., dict[str, Any]]) -> tuple[Any, ...]:
    """Seed 300 employees, delete two, re-seed with another seed; return the state after each."""
    seed_json("--employees", "300")
    created = employee_state()
    Employee.objects.filter(company_id__in=["MA0003", "MA0100"]).delete()
    document = seed_json("--employees", "300", "--seed", "8")
    assert document["models"]["Employee"]["created"] == 2
    assert document["models"]["Employee"]["updated"] > 250
    assert not Employee.objects.filter(password="").exists()
    return created, employee_state()


def test_employee_fast_path_writes_and_records_what_sync_rows_did(
    seed_json: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """New employees inserted without model instances: same rows, same outbox events."""
    fast = seed_employee_story(seed_json)
    Employee.objects.all().delete()
    OutboxEvent.objects.all().delete()
    SeedMark.objects.all().delete()

    def through_sync_rows(
        rows: Any, references: Any, repair: bool, on_create: Callable[[], dict[str, Any]]
    ) -> seeding.SyncResult:
        return seeding.sync_rows(Employee, rows, ("company_id",), references, repair, on_create=on_create)

    monkeypatch.setattr(seeding, "sync_employees", through_sync_rows)
    assert seed_employee_story(seed_json) == fast
