"""The circuit breaker, driven by a fake clock: exact and instant."""

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sentiment.breaker import BreakerSettings, BreakerState, CircuitBreaker, Permit, Transition
from tests.clocks import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def transitions() -> list[Transition]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, transitions: list[Transition]) -> CircuitBreaker:
    settings = BreakerSettings(max_failures=3, window_s=300, open_s=60)
    return CircuitBreaker("m", settings, clock, on_transition=transitions.append)


def fail(breaker: CircuitBreaker, reason: str = "boom") -> None:
    permit = breaker.acquire()
    assert permit is not None
    breaker.record_failure(permit, reason)


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_breaker_opens_on_third_failure_inside_window(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker)
    clock.advance(100)
    fail(breaker)
    clock.advance(199)
    assert breaker.state is BreakerState.CLOSED
    fail(breaker)
    assert breaker.state is BreakerState.OPEN
    assert breaker.acquire() is None


def test_failures_spread_wider_than_the_window_are_forgotten(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    for _ in range(6):
        fail(breaker)
        clock.advance(151)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().failures_in_window == 1


def test_successes_do_not_hide_failures_inside_the_window(breaker: CircuitBreaker) -> None:
    fail(breaker)
    breaker.record_success(Permit(trial=False))
    fail(breaker)
    fail(breaker)
    assert breaker.state is BreakerState.OPEN


def test_open_breaker_becomes_half_open_after_the_timeout(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(breaker)
    assert breaker.snapshot().next_trial_at == clock.now + 60
    clock.advance(59.999)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.001)
    assert breaker.state is BreakerState.HALF_OPEN


def test_successful_trial_closes_the_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(breaker)
    clock.advance(60)
    trial = breaker.acquire()
    assert trial == Permit(trial=True)
    breaker.record_success(trial)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().failures_in_window == 0
    assert breaker.acquire() == Permit(trial=False)


def test_failed_trial_reopens_for_another_full_timeout(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_breaker(breaker)
    clock.advance(60)
    trial = breaker.acquire()
    assert trial is not None
    breaker.record_failure(trial, "still broken")
    assert breaker.state is BreakerState.OPEN
    assert breaker.snapshot().opened_at == clock.now
    clock.advance(59)
    assert breaker.acquire() is None
    clock.advance(1)
    assert breaker.state is BreakerState.HALF_OPEN


async def test_only_one_trial_is_in_flight_under_concurrency(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    open_breaker(breaker)
    clock.advance(60)
    release = asyncio.Event()

    async def caller() -> str:
        permit = breaker.acquire()
        if permit is None:
            return "fallback"
        await release.wait()
        breaker.record_success(permit)
        return "trial"

    callers = [asyncio.create_task(caller()) for _ in range(20)]
    await asyncio.sleep(0)
    assert breaker.snapshot().trial_in_flight
    release.set()
    outcomes = await asyncio.gather(*callers)
    assert outcomes.count("trial") == 1
    assert outcomes.count("fallback") == 19
    assert breaker.state is BreakerState.CLOSED


def test_manual_reset_closes_an_open_breaker(breaker: CircuitBreaker) -> None:
    open_breaker(breaker)
    breaker.reset()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.acquire() == Permit(trial=False)


def test_model_not_loaded_counts_as_a_failure_only_when_a_call_was_allowed(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_unavailable("model is loading")
    assert breaker.state is BreakerState.OPEN
    breaker.record_unavailable("model is loading")
    assert breaker.times_opened == 1


def test_late_failure_from_before_the_opening_is_ignored(breaker: CircuitBreaker) -> None:
    early = breaker.acquire()
    open_breaker(breaker)
    assert early is not None
    breaker.record_failure(early, "slow call finally failed")
    assert breaker.times_opened == 1


def test_every_transition_is_reported_once_with_its_reason(
    breaker: CircuitBreaker, clock: FakeClock, transitions: list[Transition]
) -> None:
    open_breaker(breaker)
    clock.advance(60)
    trial = breaker.acquire()
    assert trial is not None
    breaker.record_failure(trial, "timeout")
    clock.advance(60)
    trial = breaker.acquire()
    assert trial is not None
    breaker.record_success(trial)
    assert [(t.previous, t.current) for t in transitions] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert "3 failures within 300 s" in transitions[0].reason
    assert "timeout" in transitions[2].reason
    assert transitions[0].at == 1_000.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_failures": 0}, "max_failures=0 is out of range (1..)"),
        ({"window_s": 0.0}, "window_s=0.0 must be greater than 0"),
        ({"open_s": -1.0}, "open_s=-1.0 must be greater than 0"),
        ({"call_timeout_s": float("nan")}, "call_timeout_s=nan must be greater than 0"),
    ],
)
def test_breaker_settings_refuse_values_it_cannot_work_with(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BreakerSettings(**changes)


def test_breaker_imports_nothing_outside_the_standard_library() -> None:
    """The breaker is the bottom layer: pure logic that depends on nothing else, not even msgspec."""
    probe = "import sys; old = set(sys.modules); import sentiment.breaker; print(*set(sys.modules) - old)"
    root = Path(__file__).resolve().parents[2]
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    ours = {"sentiment", "sentiment.breaker", "sentiment.breaker.breaker"}
    assert "sentiment.breaker.breaker" in loaded
    outside = [m for m in loaded if m not in ours and m.split(".")[0] not in sys.stdlib_module_names]
    assert outside == []
