"""Test the wait_events command: instant success, timeout report, events applied meanwhile."""

from __future__ import annotations

import json
import threading
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

from helpdesk import waiting
from helpdesk.handlers import handle_event
from helpdesk.models import ExternalEmployee, ProcessedEvent

from .conftest import employee_payload, envelope

EMP_Q = "hdts.employee.sync"


def run(*args: str, stdin: str = "") -> tuple[dict[str, Any], StringIO]:
    """Run wait_events --json with stdin and return its report and stdout."""
    out = StringIO()
    call_command("wait_events", *args, "--json", stdout=out, stdin=StringIO(stdin))
    return json.loads(out.getvalue()), out


def lines(events: list[dict[str, Any]]) -> str:
    """Return the events as JSON lines."""
    return "".join(json.dumps(event) + "\n" for event in events)


@pytest.mark.django_db
def test_returns_at_once_when_all_are_applied() -> None:
    events = [envelope(EMP_Q, "create", employee_payload(number)) for number in (1, 2, 3)]
    for event in events:
        handle_event(event)
    report, _ = run("--timeout", "5", stdin=lines(events) + lines(events[:1]))
    assert report["processed"] == 3
    assert report["missing"] == 0
    assert report["seconds"] < 1


@pytest.mark.django_db
def test_accepts_bare_ids_and_id_objects_from_a_file(tmp_path: Path) -> None:
    events = [envelope(EMP_Q, "create", employee_payload(number)) for number in (1, 2)]
    for event in events:
        handle_event(event)
    path = tmp_path / "ids.txt"
    path.write_text(f"{events[0]['id']}\n\n{json.dumps({'id': events[1]['id']})}\n", encoding="utf-8")
    out = StringIO()
    call_command("wait_events", str(path), stdout=out)
    assert out.getvalue().startswith("All 2 events were applied")


@pytest.mark.django_db
def test_times_out_with_one_sentence_and_a_json_report() -> None:
    applied = envelope(EMP_Q, "create", employee_payload(1))
    handle_event(applied)
    missing = [str(uuid.uuid4()) for _ in range(25)]
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(
            "wait_events",
            "--timeout",
            "0.1",
            "--json",
            stdout=out,
            stdin=StringIO(lines([applied]) + "\n".join(missing)),
        )
    message = str(caught.value)
    assert message.startswith("25 of 26 events were not applied within 0.1 s; ")
    assert "\n" not in message and message.endswith("wait again.")
    assert "consumes hdts.user.sync and hdts.employee.sync" in message
    report = json.loads(out.getvalue())
    assert report == {"processed": 1, "missing": 25, "missing_ids": missing[:20]}


@pytest.mark.django_db
def test_a_deferred_outcome_counts_as_missing() -> None:
    # helpdesk never parks events today; waiting.py is shared with workflow, which does.
    parked = envelope(EMP_Q, "create", employee_payload(4))
    ProcessedEvent.objects.create(event_id=parked["id"], queue=EMP_Q, action="create", outcome="deferred")
    with pytest.raises(CommandError, match=r"^1 of 1 events were not applied within 0 s \(1 of them wait"):
        call_command("wait_events", "--timeout", "0", stdout=StringIO(), stdin=StringIO(lines([parked])))
    ProcessedEvent.objects.filter(event_id=parked["id"]).update(outcome="applied")
    report, _ = run("--timeout", "0", stdin=lines([parked]))
    assert report["processed"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "stdin", "match"),
    [
        (("--timeout", "soon"), "", "--timeout 'soon' is not a number"),
        (("--timeout", "-1"), "", "--timeout '-1' is not a number"),
        ((), "not-an-id\n", "Line 1 holds no event id"),
        ((), "{broken\n", "Line 1 is not a JSON object"),
    ],
)
def test_bad_input_is_a_command_error(args: tuple[str, ...], stdin: str, match: str) -> None:
    with pytest.raises(CommandError, match=match):
        call_command("wait_events", *args, stdout=StringIO(), stdin=StringIO(stdin))


def test_missing_file_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("wait_events", str(tmp_path / "nope.txt"), stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_picks_up_an_event_applied_by_another_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    event = envelope(EMP_Q, "create", employee_payload(7))
    first_poll_missed = threading.Event()
    real_pause = waiting.pause

    def pause(seconds: float) -> None:
        first_poll_missed.set()  # a poll found the event missing: now apply it elsewhere
        real_pause(seconds)

    def apply_elsewhere() -> None:
        try:
            if first_poll_missed.wait(timeout=20):
                handle_event(event)  # this thread's own database connection
        finally:
            connections.close_all()

    monkeypatch.setattr(waiting, "pause", pause)
    applier = threading.Thread(target=apply_elsewhere)
    applier.start()
    try:
        report, _ = run("--timeout", "20", stdin=lines([event]))
    finally:
        applier.join(timeout=30)
    assert first_poll_missed.is_set()
    assert report["processed"] == 1 and report["missing"] == 0
    assert ExternalEmployee.objects.filter(external_employee_id=7).exists()
