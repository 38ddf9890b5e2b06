"""Test the apply_events command: files, stdin, duplicates and bad input."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from helpdesk.models import ExternalEmployee, HDTSUser, ProcessedEvent

from .conftest import employee_payload, envelope, user_payload

pytestmark = pytest.mark.django_db


def sample_events() -> list[dict[str, Any]]:
    """Return a mix of events: users, employees and one foreign queue."""
    return [
        envelope("hdts.user.sync", "create", user_payload(1), minutes=0),
        envelope("hdts.user.sync", "create", user_payload(2), minutes=0),
        envelope("hdts.employee.sync", "create", employee_payload(1), minutes=0),
        envelope("hdts.user.sync", "update", user_payload(2, status="Pending"), minutes=1),
        envelope("tts.role.sync", "create", {"role_id": 1}, minutes=0),
    ]


def as_lines(events: list[dict[str, Any]]) -> str:
    """Return the events as JSON lines, with a blank line for good measure."""
    return "\n".join(json.dumps(event) for event in events) + "\n\n"


def run_apply(*args: str, stdin: StringIO | None = None) -> dict[str, Any]:
    """Run ``apply_events --json`` and return its report."""
    out = StringIO()
    kwargs: dict[str, Any] = {"stdout": out}
    if stdin is not None:
        kwargs["stdin"] = stdin
    call_command("apply_events", *args, "--json", **kwargs)
    return json.loads(out.getvalue())


def test_apply_from_file_twice(tmp_path: Path) -> None:
    events = sample_events()
    path = tmp_path / "events.jsonl"
    path.write_text(as_lines(events))
    first = run_apply(str(path))
    ids = [event["id"] for event in events[:4]]
    assert first == {"applied": 4, "duplicate": 0, "deferred": 0, "ignored": 1, "ids": ids}
    assert HDTSUser.objects.get(hdts_user_id=2).status == "Pending"
    assert ExternalEmployee.objects.count() == 1
    second = run_apply(str(path))
    assert second == {"applied": 0, "duplicate": 4, "deferred": 0, "ignored": 1, "ids": ids}
    assert ProcessedEvent.objects.count() == 4


def test_apply_from_stdin_twice() -> None:
    text = as_lines(sample_events())
    assert run_apply("-", stdin=StringIO(text))["applied"] == 4
    assert run_apply(stdin=StringIO(text))["duplicate"] == 4


def test_human_output() -> None:
    out = StringIO()
    call_command("apply_events", "-", stdin=StringIO(as_lines(sample_events())), stdout=out)
    assert out.getvalue().strip() == "Events: 4 applied, 0 duplicate, 0 deferred, 1 ignored."


def test_malformed_line_rolls_back_everything() -> None:
    events = sample_events()
    text = as_lines(events[:2]) + json.dumps({"id": "x"}) + "\n"
    with pytest.raises(CommandError, match="Line 4"):
        run_apply(stdin=StringIO(text))
    assert not HDTSUser.objects.exists()
    assert not ProcessedEvent.objects.exists()


def test_invalid_json_line() -> None:
    with pytest.raises(CommandError, match="Line 1 is not valid JSON"):
        run_apply(stdin=StringIO("{not json\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        run_apply(str(tmp_path / "absent.jsonl"))
