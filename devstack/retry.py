"""The one backoff of the runner: poll until something holds, or retry a call until it works.

Every wait of the runner goes through :func:`attempts`: one attempt at once, then one after
each pause, pauses growing from ``first`` by ``factor`` up to ``cap`` seconds, the last pause
cut so that the last attempt comes at the deadline, ``timeout`` seconds after the first one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

#: The default pauses: 0.05, 0.1, 0.2, 0.4, then 0.5 s. Short enough for local processes and files.
FIRST = 0.05
FACTOR = 2.0
CAP = 0.5


def pauses(first: float = FIRST, factor: float = FACTOR, cap: float = CAP) -> Iterator[float]:
    """Yield the pauses between attempts, without end: ``first``, times ``factor``, at most ``cap``."""
    if first <= 0 or factor < 1 or cap < first:
        raise ValueError(f"bad backoff: first={first}, factor={factor}, cap={cap}")
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, cap)


def attempts(
    timeout: float,
    *,
    first: float = FIRST,
    factor: float = FACTOR,
    cap: float = CAP,
    on_pause: Callable[[float], None] | None = None,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[float]:
    """Yield before each attempt the seconds left; end when ``timeout`` seconds have passed.

    There is always a first attempt, even with ``timeout`` 0. ``on_pause`` hears the seconds
    left just before each pause, so a caller can say it will try again. ``sleep`` is what
    pauses: ``time.sleep``, or a wait that may return early (``psutil.wait_procs``).
    """
    if timeout < 0:
        raise ValueError(f"timeout must be 0 or more, got {timeout}")
    deadline = clock() + timeout
    for delay in pauses(first, factor, cap):
        yield max(deadline - clock(), 0.0)
        left = deadline - clock()
        if left <= 0:
            return
        if on_pause is not None:
            on_pause(left)
        sleep(min(delay, left))


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    *,
    first: float = FIRST,
    factor: float = FACTOR,
    cap: float = CAP,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Ask ``predicate`` until it says yes or ``timeout`` seconds pass; return its last answer."""
    for _ in attempts(timeout, first=first, factor=factor, cap=cap, sleep=sleep, clock=clock):
        if predicate():
            return True
    return False


def retry(
    call: Callable[[], T],
    *,
    retry_on: type[E],
    timeout: float,
    first: float = FIRST,
    factor: float = FACTOR,
    cap: float = CAP,
    on_retry: Callable[[E, float], None] | None = None,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Return what ``call`` returns, calling it again while it raises ``retry_on``.

    Once ``timeout`` seconds have passed the last error is raised. ``on_retry`` hears each
    error that will be retried and the seconds left; other errors end the retries at once.
    """
    errors: list[E] = []

    def announce(left: float) -> None:
        if on_retry is not None:
            on_retry(errors[-1], left)

    backoff = attempts(
        timeout, first=first, factor=factor, cap=cap, on_pause=announce, sleep=sleep, clock=clock
    )
    for _ in backoff:
        try:
            return call()
        except retry_on as exc:
            errors[:] = [exc]
    raise errors[-1]
