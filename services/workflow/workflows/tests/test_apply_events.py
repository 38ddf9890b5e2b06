"""Test the apply_events command (file, stdin, all-or-nothing)."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from workflows.models import ProcessedEvent, Role, RoleUser

from .factories import default_auth_events, envelope

pytestmark = pytest.mark.django_db


def _lines(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(event) + "\n" for event in events)


def _run(*args: str, stdin: str | None = None) -> dict[str, Any]:
    out = StringIO()
    extra: dict[str, Any] = {"stdin": StringIO(stdin)} if stdin is not None else {}
    call_command("apply_events", *args, "--json", stdout=out, **extra)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def test_file_twice_second_run_all_duplicate(tmp_path: Path) -> None:
    events = default_auth_events()
    other = envelope("hdts.employee.sync", "create", {"employee_id": 1})
    path = tmp_path / "events.jsonl"
    path.write_text(_lines([*events, other]) + "\n", encoding="utf-8")

    first = _run(str(path))
    assert (first["applied"], first["duplicate"], first["deferred"], first["ignored"]) == (13, 0, 0, 1)
    assert first["ids"] == [event["id"] for event in events]
    assert (Role.objects.count(), RoleUser.objects.count()) == (4, 9)

    second = _run(str(path))
    assert (second["applied"], second["duplicate"], second["ignored"]) == (0, 13, 1)
    assert second["ids"] == first["ids"]


def test_stdin_links_first_are_deferred_then_applied() -> None:
    events = default_auth_events()
    reordered = events[4:] + events[:4]  # links before roles
    first = _run("-", stdin=_lines(reordered))
    assert (first["applied"], first["deferred"]) == (4, 9)
    assert len(first["ids"]) == 13
    assert RoleUser.objects.count() == 9
    second = _run(stdin=_lines(reordered))
    assert second["duplicate"] == 13


def test_invalid_line_rolls_back_everything(tmp_path: Path) -> None:
    events = default_auth_events()
    path = tmp_path / "events.jsonl"
    path.write_text(_lines(events[:3]) + "{broken\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Line 4 is not valid JSON"):
        call_command("apply_events", str(path), stdout=StringIO())
    assert not Role.objects.exists()
    assert not ProcessedEvent.objects.exists()


def test_malformed_event_is_a_command_error(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"id": "x", "queue": "tts.role.sync"}) + "\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"Line 1: .*not a UUID"):
        call_command("apply_events", str(path), stdout=StringIO())


def test_missing_file_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("apply_events", str(tmp_path / "nope.jsonl"), stdout=StringIO())


def test_human_output(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(_lines(default_auth_events()), encoding="utf-8")
    out = StringIO()
    call_command("apply_events", str(path), stdout=out)
    assert out.getvalue().strip() == "Applied 13, duplicate 0, deferred 0, ignored 0 events."
