"""Terminal output: colour when it helps, plain when ``NO_COLOR`` is set or not a terminal."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TextIO

from colorama import Fore, Style, just_fix_windows_console


def quiet_stdout() -> None:
    """Point stdout at the null device after a reader left (``| head``), so the interpreter's last
    flush at exit cannot fail again."""
    null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  # lives until the process ends
    try:
        os.dup2(null.fileno(), sys.stdout.fileno())
    except (OSError, ValueError):
        sys.stdout = null


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
        self._lock = threading.Lock()
        self._drawn = 0  # width of the progress line drawn in place (0: none)
        self._count: tuple[str, int, int, float, int] | None = None  # what, done, total, since, first

    def _paint(self, text: str, *styles: str) -> str:
        if not self.color:
            return text
        return "".join(styles) + text + Style.RESET_ALL

    def _print(self, text: str, indent: int | None = None) -> None:
        with self._lock:
            self._clear()
            self._write(self.fit(text, indent) + "\n")

    def fit(self, text: str, indent: int | None = None) -> str:
        """On a terminal, wrap a long line at its width with a hanging indent, so the terminal
        never breaks it mid-word; elsewhere (a log, a pipe) lines stay whole."""
        if not self.live():
            return text
        width = shutil.get_terminal_size().columns - 1
        if len(text) <= width:
            return text
        hang = " " * (indent if indent is not None else len(text) - len(text.lstrip()) + 2)
        return textwrap.fill(
            text, width, subsequent_indent=hang, break_long_words=False, break_on_hyphens=False
        )

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
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
        with self._lock:
            self._clear()
        print(self._paint(f"ERROR {text}", Fore.RED, Style.BRIGHT), file=sys.stderr, flush=True)

    def live(self) -> bool:
        """Whether a progress line can be redrawn in place: a terminal that is not dumb."""
        return wants_color(self.stream, {"TERM": os.environ.get("TERM", "")})

    def advance(self, what: str, done: int, total: int) -> None:
        """Take a running step's own count (``done`` of ``total`` ``what``) for the progress line."""
        now = time.perf_counter()
        since, first = (
            (self._count[3], self._count[4]) if self._count and self._count[0] == what else (now, done)
        )
        self._count = (what, done, total, since, first)

    def progress_text(self, step: str, began: float, now: float) -> str:
        """``step`` with its elapsed time and, once it reported a count, the count and an ETA."""
        text = f"... {step} running, {now - began:.0f} s"
        if self._count is None:
            return text
        what, done, total, since, first = self._count
        text += f": {what} {done:,}/{total:,}" if total else f": {what} {done:,}"
        if total and done < total and done > first and now > since:
            rate = (done - first) / (now - since)
            text += f" ({100 * done / total:.0f}%, about {(total - done) / rate:.0f} s left)"
        return text

    @contextmanager
    def progress(self, step: str, every: float = 5.0) -> Iterator[None]:
        """Show that ``step`` runs, until it ends, with the count it reports (:meth:`advance`).

        On a terminal one line is redrawn in place twice a second; elsewhere (a log, CI) a line
        is printed every ``every`` seconds.
        """
        done = threading.Event()
        began = time.perf_counter()
        live = self.live()
        self._count = None

        def tick() -> None:
            while not done.wait(0.5 if live else every):
                self.update(self.progress_text(step, began, time.perf_counter()))

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
            with self._lock:
                self._clear()
            self._count = None

    def update(self, text: str) -> None:
        """A line that replaces the previous one on a terminal (retries), a new line elsewhere."""
        if not self.live():
            self.info(text)
            return
        line = f"   {text}"[: max(shutil.get_terminal_size().columns - 1, 20)]
        with self._lock:
            self._write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)

    def _clear(self) -> None:
        """Remove the progress line drawn in place, if any (the caller holds the lock)."""
        if self._drawn:
            self._write("\r" + " " * self._drawn + "\r")
            self._drawn = 0

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """Columns padded to their widest cell; on a terminal the last column wraps under itself."""
        cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        last = sum(w + 2 for w in widths[:-1])  # where the last column starts
        for n, row in enumerate(cells):
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            if n == 0:
                self._print(self._paint(line, Style.BRIGHT))
            else:
                self._print(line, indent=last)
