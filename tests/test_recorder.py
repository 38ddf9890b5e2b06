"""The step recorder: outcomes, failures, the summary's notion of "changed"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.console import Console
from devstack.errors import StepError
from devstack.recorder import Recorder, write_report


def test_records_ran_skipped_and_failed_steps(capsys: pytest.CaptureFixture[str]) -> None:
    recorder = Recorder(Console())
    recorder.run("install", lambda: (False, "virtualenvs match"))
    recorder.run("seed.auth", lambda: (True, "Employee +8"))

    def broken() -> tuple[bool, str]:
        raise StepError("auth: boom")

    with pytest.raises(StepError):
        recorder.run("sync", broken)
    assert [(s.name, s.status) for s in recorder.steps] == [
        ("install", "skipped"),
        ("seed.auth", "ran"),
        ("sync", "failed"),
    ]
    assert recorder.has("sync") and not recorder.has("verify")
    assert "virtualenvs match" in capsys.readouterr().out


def test_only_steps_that_write_count_as_changes() -> None:
    recorder = Recorder(Console())
    recorder.record("check-rabbit", True, 0.1, "answers")
    recorder.record("verify", True, 0.1, "ok")
    recorder.skip_all(["seed.auth", "sync"], "nothing changed")
    assert not recorder.changed()
    recorder.record("seed.helpdesk", True, 0.2, "Ticket +5")
    assert recorder.changed()


def test_report_is_written_as_json(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.json"
    write_report(path, {"ok": True})
    assert json.loads(path.read_text(encoding="utf-8")) == {"ok": True}
