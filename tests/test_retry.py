from __future__ import annotations

import itertools

import pytest

from devstack import retry


class FakeTime:
    """A clock that only moves when something sleeps, recording each pause."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_pauses_grow_by_the_factor_up_to_the_cap() -> None:
    assert list(itertools.islice(retry.pauses(0.05, 2, 0.3), 5)) == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert list(itertools.islice(retry.pauses(), 6)) == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]


@pytest.mark.parametrize(("first", "factor", "cap"), [(0, 2, 1), (0.1, 0.5, 1), (0.5, 2, 0.1)])
def test_pauses_refuse_a_backoff_that_would_not_back_off(first: float, factor: float, cap: float) -> None:
    with pytest.raises(ValueError, match="bad backoff"):
        next(retry.pauses(first, factor, cap))


def test_attempts_cut_the_last_pause_to_land_on_the_deadline() -> None:
    fake = FakeTime()
    lefts = list(retry.attempts(1.0, first=0.1, factor=2, cap=1, sleep=fake.sleep, clock=fake.clock))
    assert fake.slept == [0.1, 0.2, 0.4, 0.3]
    assert [round(x, 6) for x in lefts] == [1.0, 0.9, 0.7, 0.3, 0.0]
    assert fake.now == pytest.approx(101.0)


def test_timeout_zero_is_one_attempt_and_no_pause() -> None:
    fake = FakeTime()
    assert len(list(retry.attempts(0, sleep=fake.sleep, clock=fake.clock))) == 1
    assert fake.slept == []
    with pytest.raises(ValueError, match="0 or more"):
        next(retry.attempts(-1))


def test_wait_until_stops_as_soon_as_the_predicate_holds() -> None:
    fake = FakeTime()
    answers = iter([False, False, True])
    assert retry.wait_until(lambda: next(answers), 10, sleep=fake.sleep, clock=fake.clock)
    assert fake.slept == [0.05, 0.1]


def test_wait_until_gives_up_at_the_timeout() -> None:
    fake = FakeTime()
    calls: list[float] = []

    def never() -> bool:
        calls.append(fake.now)
        return False

    assert not retry.wait_until(never, 1.0, cap=0.25, sleep=fake.sleep, clock=fake.clock)
    assert calls[0] == 100.0 and calls[-1] == pytest.approx(101.0)
    assert max(fake.slept) == 0.25


def test_retry_returns_the_first_success_and_reports_each_retry() -> None:
    fake = FakeTime()
    results = iter([KeyError("a"), KeyError("b"), "done"])

    def call() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    heard: list[tuple[str, float]] = []
    got = retry.retry(
        call,
        retry_on=KeyError,
        timeout=5,
        first=0.5,
        on_retry=lambda exc, left: heard.append((exc.args[0], left)),
        sleep=fake.sleep,
        clock=fake.clock,
    )
    assert got == "done"
    assert heard == [("a", 5.0), ("b", 4.5)]


def test_retry_raises_the_last_error_after_the_timeout_without_announcing_it() -> None:
    fake = FakeTime()
    count = itertools.count()
    heard: list[float] = []

    def fail() -> None:
        raise KeyError(next(count))

    with pytest.raises(KeyError) as caught:
        retry.retry(
            fail, retry_on=KeyError, timeout=0.3, on_retry=lambda e, left: heard.append(left),
            sleep=fake.sleep, clock=fake.clock,
        )  # fmt: skip
    assert caught.value.args[0] == len(heard)  # the error raised is the last one, never announced
    assert fake.now == pytest.approx(100.3)


def test_retry_lets_other_errors_through_at_once() -> None:
    fake = FakeTime()

    def boom() -> None:
        raise RuntimeError("not retried")

    with pytest.raises(RuntimeError):
        retry.retry(boom, retry_on=KeyError, timeout=5, sleep=fake.sleep, clock=fake.clock)
    assert fake.slept == []
