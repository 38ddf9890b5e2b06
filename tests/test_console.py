from __future__ import annotations

import io
import time

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
        while "still running" not in out.getvalue():
            assert time.monotonic() < deadline
            time.sleep(0.01)
    said = out.getvalue()
    time.sleep(0.15)
    assert out.getvalue() == said
    assert "... seed.helpdesk still running" in said


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
