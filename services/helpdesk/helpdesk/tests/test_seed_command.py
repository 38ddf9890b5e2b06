"""Test the seed commands: idempotence, growth, validation and atomicity."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from helpdesk import seeding
from helpdesk.models import Employee, SeedMark, Ticket

pytestmark = pytest.mark.django_db


def run_seed_json(*args: str) -> dict[str, Any]:
    """Run ``seed --json`` and return its parsed report."""
    out, err = StringIO(), StringIO()
    call_command("seed", *args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue())


def test_default_seed_counts_and_report_shape() -> None:
    report = run_seed_json()
    assert report == {
        "service": "helpdesk",
        "options": {"employees": 50, "tickets": 20, "seed": 7},
        "models": {
            "Employee": {"created": 50, "updated": 0, "unchanged": 0, "repaired": 0, "kept": 0},
            "Ticket": {"created": 20, "updated": 0, "unchanged": 0, "repaired": 0, "kept": 0},
        },
        "counts": {"Employee": 50, "Ticket": 20, "HDTSUser": 0, "ExternalEmployee": 0},
        "changed": True,
    }
    assert Employee.objects.count() == 50
    assert Ticket.objects.count() == 20
    assert SeedMark.objects.get(name="seed").options == {"employees": 50, "tickets": 20, "seed": 7}


def test_second_run_changes_nothing() -> None:
    run_seed_json()
    mark_time = SeedMark.objects.get().updated_at
    report = run_seed_json()
    assert report["changed"] is False
    assert report["models"]["Employee"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 50,
        "repaired": 0,
        "kept": 0,
    }
    assert report["models"]["Ticket"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 20,
        "repaired": 0,
        "kept": 0,
    }
    assert SeedMark.objects.get().updated_at == mark_time


def test_human_output_says_nothing_to_do() -> None:
    call_command("seed", stdout=StringIO())
    out = StringIO()
    call_command("seed", stdout=out)
    assert "Nothing to do: already seeded." in out.getvalue()


def test_larger_count_adds_only_the_difference() -> None:
    run_seed_json("--employees", "50")
    before = dict(Employee.objects.values_list("company_id", "email"))
    report = run_seed_json("--employees", "60")
    assert report["models"]["Employee"] == {
        "created": 10,
        "updated": 0,
        "unchanged": 50,
        "repaired": 0,
        "kept": 0,
    }
    after = dict(Employee.objects.values_list("company_id", "email"))
    assert {key: after[key] for key in before} == before
    assert sorted(set(after) - set(before)) == [f"MA{i:04d}" for i in range(51, 61)]


def test_smaller_count_is_refused_before_writing() -> None:
    run_seed_json("--employees", "60", "--tickets", "30")
    Ticket.objects.filter(ticket_number="TX00000001").delete()
    mark = SeedMark.objects.get()
    message = (
        "helpdesk holds 60 seeded employees and 30 seeded tickets; --employees 50 --tickets 20 would "
        "leave 10 employees and 10 tickets behind: run 'inv reset.helpdesk' first, or pass the same or "
        "larger counts."
    )
    with pytest.raises(CommandError) as caught:
        call_command("seed", "--employees", "50", "--tickets", "20", "--json", stdout=StringIO())
    assert str(caught.value) == message
    assert Employee.objects.count() == 60
    assert Ticket.objects.count() == 29
    assert SeedMark.objects.get().options == mark.options
    assert SeedMark.objects.get().updated_at == mark.updated_at


def test_tickets_follow_the_domain_rules() -> None:
    run_seed_json("--tickets", "200")
    categories = set(Ticket.objects.values_list("category", flat=True))
    assert categories == set(Ticket.Category.values)
    assert Ticket.objects.values("employee").distinct().count() == 50
    for ticket in Ticket.objects.all():
        if ticket.status != Ticket.Status.NEW:
            assert ticket.priority and ticket.department, ticket.ticket_number
        is_budget = ticket.category == Ticket.Category.NEW_BUDGET_PROPOSAL
        assert (ticket.requested_budget is not None) == is_budget
    assert Ticket.objects.filter(status=Ticket.Status.NEW).exists()
    assert Ticket.objects.order_by("ticket_number").first().ticket_number == "TX00000001"


def test_employee_keys_and_roles() -> None:
    run_seed_json()
    first = Employee.objects.get(company_id="MA0001")
    assert first.role == Employee.Role.SYSTEM_ADMIN
    assert first.email.endswith(".0001@example.com")
    assert set(Employee.objects.values_list("status", flat=True)) == set(Employee.Status.values)
    assert Employee.objects.filter(role=Employee.Role.TICKET_COORDINATOR).count() == 5


def test_changing_seed_updates_the_same_rows() -> None:
    run_seed_json()
    pks = set(Employee.objects.values_list("pk", flat=True))
    report = run_seed_json("--seed", "8")
    assert report["changed"] is True
    assert report["models"]["Employee"]["created"] == 0
    assert report["models"]["Employee"]["updated"] > 0
    assert set(Employee.objects.values_list("pk", flat=True)) == pks
    assert run_seed_json("--seed", "8")["changed"] is False


def test_first_rows_do_not_depend_on_the_count() -> None:
    small = list(seeding.desired_employees(10, 7))
    large = list(seeding.desired_employees(100, 7))
    assert large[:10] == small
    assert list(seeding.desired_tickets(5, 7, [1, 2]))[:5] == list(seeding.desired_tickets(50, 7, [1, 2]))[:5]


def test_failure_mid_seed_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(seeding, "seed_tickets", explode)
    with pytest.raises(RuntimeError):
        call_command("seed", stdout=StringIO(), stderr=StringIO())
    assert Employee.objects.count() == 0
    assert Ticket.objects.count() == 0
    assert not SeedMark.objects.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--employees", "-1"], "negative"),
        (["--employees", "abc"], "not a whole number"),
        (["--tickets", "1.5"], "not a whole number"),
        (["--employees", "10000"], "at most 9,999 employees"),
        (["--employees", "0", "--tickets", "5"], "at least one employee"),
        (["--seed", "x"], "not a whole number"),
    ],
)
def test_bad_inputs_raise_command_error_and_write_nothing(args: list[str], fragment: str) -> None:
    with pytest.raises(CommandError, match=fragment):
        call_command("seed", *args, stdout=StringIO(), stderr=StringIO())
    assert Employee.objects.count() == 0
    assert not SeedMark.objects.exists()


def test_seed_employees_and_seed_tickets_commands() -> None:
    out = StringIO()
    call_command("seed_employees", "--count", "5", stdout=out)
    assert "Employee: 5 created" in out.getvalue()
    out = StringIO()
    call_command("seed_tickets", "--count", "7", stdout=out)
    assert "Ticket: 7 created" in out.getvalue()
    out = StringIO()
    call_command("seed_tickets", "--count", "7", stdout=out)
    assert "Nothing to do: already seeded." in out.getvalue()
    assert Ticket.objects.values("employee").distinct().count() == 5


def test_seed_tickets_without_employees_fails() -> None:
    with pytest.raises(CommandError, match="at least one employee"):
        call_command("seed_tickets", "--count", "3", stdout=StringIO())
    assert Ticket.objects.count() == 0


@pytest.mark.parametrize("value", ["-1", "abc", "10000"])
def test_seed_employees_rejects_bad_counts(value: str) -> None:
    with pytest.raises(CommandError):
        call_command("seed_employees", "--count", value, stdout=StringIO())
    assert Employee.objects.count() == 0


def test_chunks_cover_more_than_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeding, "CHUNK_SIZE", 7)
    first = run_seed_json("--employees", "20", "--tickets", "50")
    assert first["counts"]["Ticket"] == 50
    second = run_seed_json("--employees", "20", "--tickets", "50", "--seed", "3")
    assert second["models"]["Ticket"]["created"] == 0
    assert second["models"]["Ticket"]["updated"] + second["models"]["Ticket"]["unchanged"] == 50
    assert run_seed_json("--employees", "20", "--tickets", "50", "--seed", "3")["changed"] is False


def test_conflicting_person_row_is_one_error_and_writes_nothing() -> None:
    """A person's employee holding a seeded email under another company id stops the whole seed."""
    _, values = next(seeding.desired_employees(1, 7))
    Employee.objects.create(
        company_id="ZZ0001",
        email=values["email"],
        first_name="Ada",
        last_name="Person",
        department="IT Department",
        password="x",
    )
    with pytest.raises(CommandError, match="Seeding conflicts with rows people added or edited"):
        call_command("seed", stdout=StringIO(), stderr=StringIO())
    assert list(Employee.objects.values_list("company_id", flat=True)) == ["ZZ0001"]
    assert Ticket.objects.count() == 0
    assert not SeedMark.objects.exists()


def test_progress_is_announced_per_chunk_when_the_runner_asks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(seeding.PROGRESS_ENV, "1")
    monkeypatch.setattr(seeding, "CHUNK_SIZE", 8)
    run_seed_json("--employees", "10", "--tickets", "20")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("PROGRESS ")]
    reports = [json.loads(line.removeprefix("PROGRESS ")) for line in lines]
    assert reports == [
        {"model": "Employee", "done": 8, "total": 10},
        {"model": "Employee", "done": 10, "total": 10},
        {"model": "Ticket", "done": 8, "total": 20},
        {"model": "Ticket", "done": 16, "total": 20},
        {"model": "Ticket", "done": 20, "total": 20},
    ]


def test_no_progress_lines_unless_asked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(seeding.PROGRESS_ENV, raising=False)
    run_seed_json()
    assert "PROGRESS" not in capsys.readouterr().err
