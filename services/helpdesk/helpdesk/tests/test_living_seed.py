"""Test the seed on a living database: deleted rows come back, edits stay, people's rows stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from helpdesk.models import Employee, SeedMark, Ticket

pytestmark = pytest.mark.django_db


def seed(*args: str) -> dict[str, Any]:
    """Run ``seed --json`` and return its report."""
    out = StringIO()
    call_command("seed", *args, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def state(*args: str) -> dict[str, Any]:
    """Run ``stack_state --json`` and return its document."""
    out = StringIO()
    call_command("stack_state", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def rows(model: type[Employee] | type[Ticket]) -> dict[str, tuple[Any, ...]]:
    """Return every row's values by natural key."""
    if model is Employee:
        return {
            e.company_id: (e.first_name, e.last_name, e.email, e.department, e.role, e.status)
            for e in Employee.objects.all()
        }
    return {
        t.ticket_number: (t.employee_id, t.subject, t.category, t.status, t.priority, t.submitted_at)
        for t in Ticket.objects.all()
    }


def people_ticket(number: str = "HD-0001") -> Ticket:
    """Create a ticket the way a person would in the admin."""
    return Ticket.objects.create(
        ticket_number=number,
        employee=Employee.objects.get(company_id="MA0001"),
        subject="Printer jam",
        category=Ticket.Category.IT_SUPPORT,
        sub_category="Hardware Issue",
        submitted_at=datetime(2025, 6, 1, tzinfo=UTC),
    )


def test_seeded_is_null_before_the_first_seed() -> None:
    assert state()["seeded"] is None


def test_stack_state_seeded_after_a_seed() -> None:
    seed()
    assert state()["seeded"] == {
        "Employee": {"expected": 50, "missing": 0, "extra": 0},
        "Ticket": {"expected": 20, "missing": 0, "extra": 0},
    }
    assert state("--edits")["seeded"] == {
        "Employee": {"expected": 50, "missing": 0, "extra": 0, "edited": 0},
        "Ticket": {"expected": 20, "missing": 0, "extra": 0, "edited": 0},
    }


def test_stack_state_counts_deletes_additions_and_edits() -> None:
    seed()
    Ticket.objects.filter(ticket_number__in=["TX00000003", "TX00000020"]).delete()
    people_ticket()
    people_ticket("TX0000001a")  # sorts inside the seeded range, but is no seeded key
    people_ticket("TX00000021")  # the next key, beyond what the seed owns
    Employee.objects.create(
        first_name="Pat", last_name="Doe", email="pat@example.com", company_id="MA0051", department="IT"
    )
    Employee.objects.filter(company_id="MA0002").update(first_name="Edited")
    Ticket.objects.filter(ticket_number="TX00000005").update(status=Ticket.Status.CLOSED, priority="Low")
    seeded = state("--edits")["seeded"]
    assert seeded["Employee"] == {"expected": 50, "missing": 0, "extra": 1, "edited": 1}
    assert seeded["Ticket"] == {"expected": 20, "missing": 2, "extra": 3, "edited": 1}
    assert "edited" not in state()["seeded"]["Ticket"]


def test_deleted_ticket_comes_back_with_its_seeded_values() -> None:
    seed()
    before = rows(Ticket)
    Ticket.objects.filter(ticket_number="TX00000007").delete()
    report = seed()
    assert report["models"]["Ticket"]["created"] == 1
    assert report["models"]["Ticket"]["unchanged"] == 19
    assert report["changed"] is True
    after = rows(Ticket)
    assert after == before
    assert state()["seeded"]["Ticket"]["missing"] == 0


def test_deleted_employee_comes_back() -> None:
    seed("--tickets", "0")
    Employee.objects.filter(company_id="MA0004").delete()
    assert state()["seeded"]["Employee"]["missing"] == 1
    report = seed("--tickets", "0")
    assert report["models"]["Employee"]["created"] == 1
    assert Employee.objects.filter(company_id="MA0004").exists()


def test_edit_is_kept_by_default() -> None:
    seed()
    Employee.objects.filter(company_id="MA0002").update(first_name="Edited", status="Denied")
    Ticket.objects.filter(ticket_number="TX00000004").update(subject="Renamed by a person")
    err = StringIO()
    out = StringIO()
    call_command("seed", "--json", stdout=out, stderr=err)
    report = json.loads(out.getvalue())
    assert report["changed"] is False
    assert report["models"]["Employee"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 49,
        "repaired": 0,
        "kept": 1,
    }
    assert report["models"]["Ticket"]["kept"] == 1
    assert Employee.objects.get(company_id="MA0002").first_name == "Edited"
    assert Ticket.objects.get(ticket_number="TX00000004").subject == "Renamed by a person"
    assert "pass --repair" in err.getvalue()


def test_repair_restores_edits() -> None:
    seed()
    employees, tickets = rows(Employee), rows(Ticket)
    Employee.objects.filter(company_id="MA0002").update(first_name="Edited")
    Ticket.objects.filter(ticket_number="TX00000004").update(subject="Renamed by a person")
    report = seed("--repair")
    assert report["changed"] is True
    assert report["models"]["Employee"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 49,
        "repaired": 1,
        "kept": 0,
    }
    assert report["models"]["Ticket"]["repaired"] == 1
    assert (rows(Employee), rows(Ticket)) == (employees, tickets)
    assert state("--edits")["seeded"]["Ticket"]["edited"] == 0


def test_other_seed_updates_untouched_rows_but_keeps_edits() -> None:
    seed()
    Employee.objects.filter(company_id="MA0002").update(first_name="Edited")
    report = seed("--seed", "8")
    employee = report["models"]["Employee"]
    assert employee["kept"] == 1
    assert employee["updated"] + employee["unchanged"] == 49
    assert employee["updated"] > 0
    assert Employee.objects.get(company_id="MA0002").first_name == "Edited"
    assert SeedMark.objects.get().options["seed"] == 8
    fresh = rows(Employee)
    report = seed("--seed", "8", "--repair")
    assert report["models"]["Employee"]["repaired"] == 1
    assert rows(Employee)["MA0002"] != fresh["MA0002"]
    assert state("--edits")["seeded"]["Employee"]["edited"] == 0


def test_people_rows_are_reported_and_never_touched() -> None:
    seed()
    mine = people_ticket()
    person = Employee.objects.create(
        first_name="Pat", last_name="Doe", email="pat@example.com", company_id="ZZ0001", department="IT"
    )
    assert state()["seeded"]["Ticket"]["extra"] == 1
    for args in ((), ("--repair",), ("--seed", "9", "--repair")):
        report = seed(*args)
        assert report["counts"]["Ticket"] == 21
        mine.refresh_from_db()
        person.refresh_from_db()
        assert (mine.subject, mine.ticket_number) == ("Printer jam", "HD-0001")
        assert (person.first_name, person.company_id) == ("Pat", "ZZ0001")


def test_a_person_row_under_a_key_the_seed_grows_into_is_adopted_as_is() -> None:
    seed()
    people_ticket("TX00000021")
    report = seed("--tickets", "22")
    assert report["models"]["Ticket"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 20,
        "repaired": 0,
        "kept": 1,
    }
    assert Ticket.objects.get(ticket_number="TX00000021").subject == "Printer jam"


def test_larger_ticket_count_writes_only_the_new_rows() -> None:
    seed()
    before = rows(Ticket)
    report = seed("--tickets", "25")
    assert report["models"]["Ticket"] == {
        "created": 5,
        "updated": 0,
        "unchanged": 20,
        "repaired": 0,
        "kept": 0,
    }
    assert report["models"]["Employee"]["updated"] == 0
    after = rows(Ticket)
    assert {key: after[key] for key in before} == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--employees", "10"),
            "helpdesk holds 50 seeded employees; --employees 10 would leave 40 behind: "
            "run 'inv reset.helpdesk' first, or pass the same or a larger count.",
        ),
        (
            ("--tickets", "5"),
            "helpdesk holds 20 seeded tickets; --tickets 5 would leave 15 behind: "
            "run 'inv reset.helpdesk' first, or pass the same or a larger count.",
        ),
    ],
)
def test_smaller_count_is_refused_with_nothing_written(args: tuple[str, ...], message: str) -> None:
    seed()
    Ticket.objects.filter(ticket_number="TX00000002").delete()
    with pytest.raises(CommandError) as caught:
        seed(*args, "--seed", "9")
    assert str(caught.value) == message
    assert Ticket.objects.count() == 19
    assert SeedMark.objects.get().options == {"employees": 50, "tickets": 20, "seed": 7}


def test_without_a_seed_mark_differing_rows_are_kept() -> None:
    call_command("seed_employees", "--count", "5", stdout=StringIO())
    Employee.objects.filter(company_id="MA0003").update(first_name="Edited")
    report = seed("--employees", "5", "--tickets", "0")
    assert report["models"]["Employee"]["kept"] == 1
    assert Employee.objects.get(company_id="MA0003").first_name == "Edited"
    assert seed("--employees", "5", "--tickets", "0", "--repair")["models"]["Employee"]["repaired"] == 1
