"""Termination signals are handled like Ctrl-C: children stopped, transactions rolled back.

``timeout``, CI cancellation and supervisors send SIGTERM; a closed terminal sends SIGHUP;
Windows consoles send SIGBREAK. While a task runs, each of those kills the service commands
the runner started (their open transaction is rolled back by the database) and raises
:class:`Terminated` in the main thread, so every ``finally`` runs: workers started for a broker
sync are stopped and the run lock is released. The task then exits with 128 + the signal number.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from devstack.commands import kill_children

#: The signals handled where the platform has them (SIGHUP: POSIX; SIGBREAK: Windows).
NAMES = ("SIGTERM", "SIGHUP", "SIGBREAK")


class Terminated(KeyboardInterrupt):
    """The runner received a termination signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def _stop(signum: int, frame: FrameType | None) -> None:
    kill_children()
    raise Terminated(signum)


@contextmanager
def handled(names: Sequence[str] = NAMES) -> Iterator[list[str]]:
    """Handle the termination signals this platform has while the block runs; yield their names."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    previous = {}
    for name in names:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _stop)
    try:
        yield [signal.Signals(n).name for n in previous]
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
