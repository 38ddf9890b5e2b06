"""Test the wait_events command: instant success, timeout report, events applied meanwhile."""

import json
import threading
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from workflows import waiting
from workflows.handlers import handle_event
from workflows.models import RoleUser

from .factories import default_auth_events, link_event, role_event


def run(*args: str, stdin: str = "") -> dict[str, Any]:
    """Run wait_events --json with stdin and return its report."""
    out = StringIO()
    call_command("wait_events", *args, "--json", stdout=out, stdin=StringIO(stdin))
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def lines(events: list[dict[str, Any]]) -> str:
    """Return the events as JSON lines."""
    return "".join(json.dumps(event) + "\n" for event in events)


@pytest.mark.django_db
def test_returns_at_once_when_all_are_applied() -> None:
    events = default_auth_events()
    for event in events:
        handle_event(event)
    report = run("--timeout", "5", stdin=lines(events) + lines(events[:2]))
    assert (report["processed"], report["missing"]) == (13, 0)
    assert report["seconds"] < 1


@pytest.mark.django_db
def test_accepts_bare_ids_and_id_objects_from_a_file(tmp_path: Path) -> None:
    events = [role_event(2, "Admin"), role_event(5, "Asset Manager")]
    for event in events:
        handle_event(event)
    path = tmp_path / "ids.txt"
    path.write_text(f"{events[0]['id']}\n\n{json.dumps({'id': events[1]['id']})}\n", encoding="utf-8")
    out = StringIO()
    call_command("wait_events", str(path), stdout=out)
    assert out.getvalue().startswith("All 2 events were applied")


@pytest.mark.django_db
def test_times_out_with_one_sentence_and_a_json_report() -> None:
    applied = role_event(2, "Admin")
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
    assert "consumes tts.role.sync and tts.user_system_role.sync" in message
    assert json.loads(out.getvalue()) == {"processed": 1, "missing": 25, "missing_ids": missing[:20]}


@pytest.mark.django_db
def test_a_parked_link_counts_as_missing_until_its_role_arrives() -> None:
    link = link_event(7, 5, full_name="Carla Diaz", seconds=10)
    assert handle_event(link) == "deferred"
    with pytest.raises(CommandError, match=r"^1 of 1 events were not applied within 0 s \(1 of them wait"):
        call_command("wait_events", "--timeout", "0", stdout=StringIO(), stdin=StringIO(lines([link])))
    handle_event(role_event(5, "Asset Manager"))
    assert run("--timeout", "0", stdin=lines([link]))["processed"] == 1


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
    event = role_event(2, "Admin")
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
        report = run("--timeout", "20", stdin=lines([event]))
    finally:
        applier.join(timeout=30)
    assert first_poll_missed.is_set()
    assert (report["processed"], report["missing"]) == (1, 0)
    assert not RoleUser.objects.exists()
