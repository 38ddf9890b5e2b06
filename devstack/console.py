"""Terminal output: colour when it helps, plain when ``NO_COLOR`` is set or not a terminal."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

from colorama import Fore, Style, just_fix_windows_console


def wants_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Tell whether to colour ``stream``: a terminal, ``NO_COLOR`` not set, ``TERM`` not dumb."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM", "").strip().lower() == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Console:
    """Print headers, steps and results the same way in every task."""

    def __init__(self, stream: TextIO | None = None, color: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.color = wants_color(self.stream) if color is None else color
        if self.color:
            just_fix_windows_console()

    def _paint(self, text: str, *styles: str) -> str:
        if not self.color:
            return text
        return "".join(styles) + text + Style.RESET_ALL

    def _print(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except BrokenPipeError:  # `inv seed-all | head -2`: the reader left; the run goes on quietly
            self.stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
            self.color = False

    def header(self, text: str) -> None:
        self._print(self._paint(f"== {text}", Style.BRIGHT))

    def start(self, step: str, detail: str = "") -> None:
        suffix = f" ({detail})" if detail else ""
        self._print(self._paint(f"-> {step}{suffix} ...", Fore.CYAN))

    def ok(self, step: str, seconds: float, detail: str = "") -> None:
        suffix = f": {detail}" if detail else ""
        self._print(f"   {self._paint('OK', Fore.GREEN, Style.BRIGHT)} {step} ({seconds:.2f} s){suffix}")

    def skip(self, step: str, reason: str) -> None:
        self._print(f"   {self._paint('SKIP', Fore.YELLOW)} {step}: {reason}")

    def planned(self, step: str, would_run: bool, detail: str) -> None:
        """A step of a plan: what a real run would do, and why."""
        label = self._paint("WOULD RUN", Fore.GREEN) if would_run else self._paint("WOULD SKIP", Fore.YELLOW)
        self._print(f"   {label} {step}: {detail}")

    def info(self, text: str) -> None:
        self._print(f"   {text}")

    def warn(self, text: str) -> None:
        self._print(self._paint(f"   WARNING {text}", Fore.YELLOW))

    def check(self, status: str, name: str, text: str) -> None:
        """One line of ``inv doctor``: ``OK``, ``WARN`` or ``FAIL`` (coloured), the check, what it found."""
        styles = {"OK": (Fore.GREEN, Style.BRIGHT), "WARN": (Fore.YELLOW, Style.BRIGHT)}.get(
            status, (Fore.RED, Style.BRIGHT)
        )
        self._print(f"{self._paint(status, *styles)}{' ' * (4 - len(status))} {name:<11} {text}")

    def error(self, text: str) -> None:
        print(self._paint(f"ERROR {text}", Fore.RED, Style.BRIGHT), file=sys.stderr, flush=True)

    @contextmanager
    def progress(self, step: str, every: float = 5.0) -> Iterator[None]:
        """Say every ``every`` seconds that ``step`` is still running, until it ends."""
        done = threading.Event()
        started = time.perf_counter()

        def tick() -> None:
            while not done.wait(every):
                self.info(f"... {step} still running ({time.perf_counter() - started:.0f} s)")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for n, row in enumerate(cells):
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            self._print(self._paint(line, Style.BRIGHT) if n == 0 else line)
