"""Retrying: waits that grow to a cap, and a loop that gives up after its attempts or its patience."""

import math

import pytest

from sentiment.core.retry import Backoff, retry


class FakeTime:
    """A clock that only moves when the retry loop sleeps; every wait is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class Flaky:
    """Raises the given errors in turn, then answers how many calls it took."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.calls


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    backoff = Backoff(first_s=0.5, factor=2.0, max_s=5.0)
    assert [backoff.delay(failures) for failures in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_factor_of_one_waits_the_same_every_time() -> None:
    assert {Backoff(first_s=1.0, factor=1.0).delay(failures) for failures in (1, 2, 50)} == {1.0}


def test_the_wait_after_a_very_long_outage_stays_at_the_cap() -> None:
    assert Backoff(first_s=0.5, max_s=5.0).delay(10_000) == 5.0
    assert Backoff(first_s=0.5).delay(10_000) == math.inf


async def test_a_call_that_fails_then_works_returns_after_a_wait_per_failure() -> None:
    time, call = FakeTime(), Flaky(OSError("down"), OSError("down"))
    seen: list[tuple[str, int]] = []
    result = await retry(
        call,
        retry_on=OSError,
        backoff=Backoff(first_s=0.5),
        on_failure=lambda error, failures: seen.append((str(error), failures)),
        sleep=time.sleep,
        clock=time.clock,
    )
    assert result == 3
    assert time.waits == [0.5, 1.0]
    assert seen == [("down", 1), ("down", 2)]


async def test_the_last_error_is_raised_once_the_attempts_are_used_up_and_every_failure_is_seen() -> None:
    time, call = FakeTime(), Flaky(*(OSError(f"failure {n}") for n in range(1, 6)))
    seen: list[int] = []
    with pytest.raises(OSError, match="failure 3"):
        await retry(
            call,
            retry_on=OSError,
            backoff=Backoff(first_s=0.5),
            attempts=3,
            on_failure=lambda error, failures: seen.append(failures),
            sleep=time.sleep,
        )
    assert (call.calls, seen, time.waits) == (3, [1, 2, 3], [0.5, 1.0])


async def test_a_failure_later_than_the_patience_after_the_first_try_is_raised() -> None:
    time, call = FakeTime(), Flaky(*(OSError("down") for _ in range(10)))
    with pytest.raises(OSError):
        await retry(
            call,
            retry_on=OSError,
            backoff=Backoff(first_s=1.0, factor=1.0),
            give_up_after_s=2.5,
            sleep=time.sleep,
            clock=time.clock,
        )
    assert (call.calls, time.waits) == (4, [1.0, 1.0, 1.0])  # the failure at 3 s is past 2.5 s


async def test_an_error_of_another_kind_is_raised_at_once() -> None:
    time, call = FakeTime(), Flaky(ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        await retry(call, retry_on=OSError, backoff=Backoff(first_s=1.0), sleep=time.sleep)
    assert (call.calls, time.waits) == (1, [])
