from __future__ import annotations

import io
import time

import pytest

from devstack.console import Console, wants_color


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_color_only_on_a_terminal_without_no_color() -> None:
    assert wants_color(Tty(), {}) is True
    assert wants_color(Tty(), {"NO_COLOR": "1"}) is False
    assert wants_color(io.StringIO(), {}) is False


def test_plain_output_has_no_escape_codes() -> None:
    out = io.StringIO()
    console = Console(out, color=False)
    console.ok("seed.auth", 1.234, "System +4")
    console.skip("migrate.auth", "no pending migrations")
    console.table(("step", "result"), [("install", "skipped")])
    text = out.getvalue()
    assert "\x1b[" not in text
    assert "OK seed.auth (1.23 s): System +4" in text
    assert "SKIP migrate.auth: no pending migrations" in text
    assert "install  skipped" in text


def test_colored_output_uses_escape_codes() -> None:
    out = Tty()
    Console(out, color=True).ok("x", 0.1)
    assert "\x1b[" in out.getvalue()


def test_progress_ticks_while_a_step_runs_and_stops_after() -> None:
    out = io.StringIO()
    console = Console(out, color=False)
    with console.progress("seed.helpdesk", every=0.05):
        deadline = time.monotonic() + 5
        while "running" not in out.getvalue():
            assert time.monotonic() < deadline
            time.sleep(0.01)
    said = out.getvalue()
    time.sleep(0.15)
    assert out.getvalue() == said
    assert "... seed.helpdesk running, 0 s\n" in said and "\r" not in said  # sparse lines, not redrawn


def test_progress_shows_the_count_the_step_reports_and_an_eta() -> None:
    console = Console(io.StringIO(), color=False)
    assert console.progress_text("seed.helpdesk", 0.0, 3.0) == "... seed.helpdesk running, 3 s"
    console.advance("Ticket", 10_000, 100_000)
    first = console._count
    assert first is not None
    since = first[3]
    console._count = ("Ticket", 30_000, 100_000, since, 10_000)  # 20,000 rows in 2 s: 7 s left
    assert console.progress_text("seed.helpdesk", since - 1, since + 2) == (
        "... seed.helpdesk running, 3 s: Ticket 30,000/100,000 (30%, about 7 s left)"
    )
    console.advance("Employee", 50, 50)  # another model starts its own rate
    assert console.progress_text("x", since, since + 1).endswith(": Employee 50/50")


def test_on_a_terminal_the_progress_line_is_redrawn_in_place_and_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TERM", raising=False)
    out = Tty()
    console = Console(out, color=False)
    with console.progress("seed.helpdesk"):
        console.advance("Ticket", 2_000, 100_000)
        deadline = time.monotonic() + 5
        while "Ticket 2,000/100,000" not in out.getvalue():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        console.info("a warning in between")  # clears the line, then prints
    text = out.getvalue()
    assert text.startswith("\r   ... seed.helpdesk running")
    assert "\n" not in text.split("a warning")[0]  # drawn in place: no new line before the warning
    assert text.endswith("\n") and "   a warning in between\n" in text
    console.update("waiting for RabbitMQ (9 s left): refused")
    console.update("waiting for RabbitMQ (8 s left): refused")
    assert out.getvalue().count("\n") == text.count("\n")  # retries replace one line


def test_elsewhere_updates_are_lines() -> None:
    out = io.StringIO()
    Console(out, color=False).update("waiting for RabbitMQ (9 s left): refused")
    assert out.getvalue() == "   waiting for RabbitMQ (9 s left): refused\n"


def test_dumb_terminals_get_no_colour() -> None:
    assert wants_color(Tty(), {}) is True
    assert wants_color(Tty(), {"TERM": "dumb"}) is False
    assert wants_color(Tty(), {"NO_COLOR": "1"}) is False


def test_a_closed_pipe_silences_output_without_failing() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    console = Console(Closed(), color=False)
    console.info("first")
    console.info("second")  # nothing raised: the run goes on


def test_on_a_terminal_long_lines_and_table_cells_wrap_at_its_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "42")
    monkeypatch.delenv("TERM", raising=False)
    out = Tty()
    console = Console(out, color=False)
    console.info("mirrors match auth, no pending events, no dead-lettered events either")
    console.table(
        ("step", "detail"), [("verify", "seeded rows present, mirrors match auth, no pending events")]
    )
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 41 for line in lines), lines
    assert lines[0] == "   mirrors match auth, no pending events,"
    assert lines[1].startswith("     no dead-lettered")  # a hanging indent
    table = lines[lines.index("step    detail") + 1 :]
    assert table[0].startswith("verify  seeded rows") and all(t.startswith("        ") for t in table[1:])


def test_in_a_log_lines_stay_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "41")
    out = io.StringIO()
    Console(out, color=False).info("x " * 60)
    assert out.getvalue().count("\n") == 1
