"""Test the seed on a living database: deleted rows come back, edits stay, people's rows stay."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from identity.models import Employee, OutboxEvent, Role, SeedMark, System, User, UserSystemRole

pytestmark = pytest.mark.django_db
Run = Callable[..., tuple[str, str]]
Seed = Callable[..., dict[str, Any]]


def seeded(run: Run, *args: str) -> dict[str, Any]:
    """Run ``stack_state --json`` and return its ``seeded`` part."""
    document: dict[str, Any] = json.loads(run("stack_state", "--json", *args)[0])
    assert document["integrity"]["ok"], document["integrity"]
    return document["seeded"]  # type: ignore[no-any-return]


def numbers(expected: dict[str, int], **changes: dict[str, int]) -> dict[str, dict[str, int]]:
    """Return the seeded report of a clean database with ``changes`` per model."""
    return {
        model: {"expected": count, "missing": 0, "extra": 0, **changes.get(model, {})}
        for model, count in expected.items()
    }


CLEAN = {"System": 4, "Role": 8, "User": 14, "UserSystemRole": 13, "Employee": 11}


def test_seeded_numbers_after_a_seed(run: Run, seed_json: Seed) -> None:
    assert seeded(run) is None
    seed_json("--employees", "3")
    assert seeded(run) == numbers(CLEAN)
    edited = {model: {"edited": 0} for model in CLEAN}
    assert seeded(run, "--edits") == numbers(CLEAN, **edited)
    out, _ = run("stack_state")
    assert "Seeded rows: System 4 (0 missing, 0 extra)" in out


def test_deleted_rows_come_back_with_their_dependants(run: Run, seed_json: Seed) -> None:
    seed_json("--employees", "3")
    User.objects.get(email="paolo.cruz@example.com").delete()  # cascades its role link
    System.objects.get(slug="ams").delete()  # cascades its Admin role and adminams' link
    Employee.objects.get(company_id="MA0010").delete()
    assert seeded(run) == numbers(
        CLEAN,
        System={"missing": 1},
        Role={"missing": 1},
        User={"missing": 1},
        UserSystemRole={"missing": 2},
        Employee={"missing": 1},
    )
    document = seed_json("--employees", "3")
    created = {name: r["created"] for name, r in document["models"].items()}
    assert created == {"System": 1, "Role": 1, "User": 1, "UserSystemRole": 2, "Employee": 1}
    assert document["changed"] is True
    assert seeded(run, "--edits")["UserSystemRole"] == {"expected": 13, "missing": 0, "extra": 0, "edited": 0}
    assert User.objects.get(email="adminams@example.com").system_roles.get().role.system.slug == "ams"


def test_edits_are_kept_then_repaired(run: Run, seed_json: Seed) -> None:
    seed_json("--employees", "3")
    user = User.objects.get(email="adminhdts@example.com")
    user.first_name = "Helpdesk"
    user.save()
    role = Role.objects.get(system__slug="tts", name="Asset Manager")
    role.description = "Our own words."
    role.save()
    employee = Employee.objects.get(company_id="MA0009")
    employee.department = (
        "Budget Department" if employee.department != "Budget Department" else "IT Department"
    )
    employee.save()
    edited = seeded(run, "--edits")
    assert (edited["User"]["edited"], edited["Role"]["edited"], edited["Employee"]["edited"]) == (1, 1, 1)
    out, _ = run("seed", "--employees", "3")
    assert "Kept 3 seeded rows people edited; pass --repair" in out
    document = seed_json("--employees", "3")
    assert document["changed"] is False
    assert document["models"]["User"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 13,
        "repaired": 0,
        "kept": 1,
    }
    assert User.objects.get(email="adminhdts@example.com").first_name == "Helpdesk"
    assert Role.objects.get(pk=role.pk).description == "Our own words."
    repaired = seed_json("--employees", "3", "--repair")
    assert {name: r["repaired"] for name, r in repaired["models"].items()} == {
        "System": 0,
        "Role": 1,
        "User": 1,
        "UserSystemRole": 0,
        "Employee": 1,
    }
    assert User.objects.get(email="adminhdts@example.com").first_name == "HDTS"
    assert seeded(run, "--edits")["Employee"]["edited"] == 0


def test_other_seed_updates_untouched_employees_but_keeps_edits(run: Run, seed_json: Seed) -> None:
    seed_json("--employees", "20", "--seed", "1")
    employee = Employee.objects.get(company_id="MA0012")
    employee.first_name = "Edited"
    employee.save()
    document = seed_json("--employees", "20", "--seed", "2")
    report = document["models"]["Employee"]
    assert report["kept"] == 1
    assert report["updated"] > 0
    assert report["updated"] + report["unchanged"] == 27
    assert Employee.objects.get(company_id="MA0012").first_name == "Edited"
    assert seeded(run, "--edits")["Employee"]["edited"] == 1
    seed_json("--employees", "20", "--seed", "2", "--repair")
    assert Employee.objects.get(company_id="MA0012").first_name != "Edited"


def test_people_rows_are_reported_and_never_touched(run: Run, seed_json: Seed) -> None:
    seed_json("--employees", "3")
    tts = System.objects.get(slug="tts")
    auditor = Role.objects.create(system=tts, name="Auditor", description="Audits.")
    person = User.objects.create(email="pat@example.com", username="pat", first_name="Pat")
    link = UserSystemRole.objects.create(user=person, role=auditor)
    hire = Employee.objects.create(
        email="new.hire@example.com",
        username="new.hire",
        first_name="New",
        last_name="Hire",
        company_id="MA0500",
    )
    assert seeded(run) == numbers(
        CLEAN, Role={"extra": 1}, User={"extra": 1}, UserSystemRole={"extra": 1}, Employee={"extra": 1}
    )
    for args in ((), ("--repair",), ("--seed", "4", "--repair")):
        seed_json("--employees", "3", *args)
        for row in (auditor, person, link, hire):
            before = {k: v for k, v in vars(row).items() if not k.startswith("_")}
            row.refresh_from_db()
            assert {k: v for k, v in vars(row).items() if not k.startswith("_")} == before


def test_without_a_seed_mark_differing_rows_are_kept(run: Run, seed_json: Seed) -> None:
    seed_json()
    SeedMark.objects.all().delete()
    system = System.objects.get(slug="bms")
    system.name = "Budget System"
    system.save()
    assert seed_json()["models"]["System"]["kept"] == 1
    assert seed_json("--repair")["models"]["System"]["repaired"] == 1
    assert System.objects.get(slug="bms").name == "Budget Management System"


def test_kept_edit_records_no_event_and_repair_records_one_update(run: Run, seed_json: Seed) -> None:
    """The outbox follows the rows: nothing for a kept edit, one update when --repair puts it back."""
    seed_json()
    user = User.objects.get(email="paolo.cruz@example.com")
    user.last_name = "Changed"
    user.save()
    start = OutboxEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert seed_json()["models"]["User"]["kept"] == 1
    assert not OutboxEvent.objects.filter(seq__gt=start).exists()
    assert seed_json("--repair")["models"]["User"]["repaired"] == 1
    events = list(OutboxEvent.objects.filter(seq__gt=start).values_list("queue", "action", "entity_id"))
    assert events == [("tts.user_system_role.sync", "update", user.system_roles.get().id)]
