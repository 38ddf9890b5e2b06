"""The step recorder: each step of a run ran, skipped (and why) or failed, and how long it took."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.console import Console
from devstack.errors import StackError

Outcome = tuple[bool, str]


@dataclass
class StepResult:
    """One step of a run: whether it ran or was skipped (and why), and how long it took."""

    name: str
    status: str
    seconds: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "detail": self.detail,
        }


@dataclass
class Recorder:
    """Run steps, print each outcome as it happens and keep them for the summary."""

    console: Console
    #: A plan: steps are "would run" / "would skip" and nothing was done.
    plan: bool = False
    steps: list[StepResult] = field(default_factory=list)

    def run(self, name: str, action: Callable[[], Outcome]) -> StepResult:
        """Run one step; ``action`` returns whether it did work and a one-line detail."""
        started = time.perf_counter()
        self.console.start(name)
        try:
            with self.console.progress(name):
                ran, detail = action()
        except StackError:
            self.failed(name, time.perf_counter() - started)
            raise
        return self.record(name, ran, time.perf_counter() - started, detail)

    def record(self, name: str, ran: bool, seconds: float, detail: str) -> StepResult:
        """Print a finished step's outcome and keep it for the summary."""
        result = StepResult(name, self.status(ran), seconds, detail)
        self.steps.append(result)
        if self.plan:
            self.console.planned(name, ran, detail)
        elif ran:
            self.console.ok(name, seconds, detail)
        else:
            self.console.skip(name, detail)
        return result

    def failed(self, name: str, seconds: float) -> None:
        self.steps.append(StepResult(name, "failed", seconds))

    def skip_all(self, names: Iterable[str], reason: str) -> None:
        """Record several steps as skipped for one reason, printed once."""
        chosen = list(names)
        self.steps += [StepResult(name, self.status(False), 0.0, reason) for name in chosen]
        if self.plan:
            self.console.planned(", ".join(chosen), False, reason)
        else:
            self.console.skip(", ".join(chosen), reason)

    def status(self, ran: bool) -> str:
        if self.plan:
            return "would run" if ran else "would skip"
        return "ran" if ran else "skipped"

    def has(self, name: str) -> bool:
        return any(step.name == name for step in self.steps)

    def changed(self) -> bool:
        """Tell whether a step that writes ran, or would run in a plan (checks and verify do not count)."""
        return any(
            s.status == self.status(True) and not s.name.startswith(("check", "verify")) for s in self.steps
        )

    def print_summary(self, summary: dict[str, Any]) -> None:
        self.console.header("Summary")
        self.console.table(
            ("step", "result", "time", "detail"),
            [(s.name, s.status, f"{s.seconds:.2f} s", s.detail) for s in self.steps],
        )
        for service, counts in (summary.get("counts") or {}).items():
            if counts:
                self.console.info(f"{service}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        self.console.info(f"total {summary['seconds']:.2f} s")


def write_report(path: Path, summary: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
