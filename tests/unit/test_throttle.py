"""The throttle of wrong secrets, driven by a fake clock: exact and instant."""

import pytest

from sentiment.core.throttle import AttemptThrottle
from tests.clocks import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def fail(throttle: AttemptThrottle, client: str, times: int) -> None:
    for _ in range(times):
        throttle.failed(client)


def test_free_attempts_cost_no_wait(clock: FakeClock) -> None:
    throttle = AttemptThrottle(clock, free_attempts=5)
    assert throttle.wait_s("a") == 0.0
    fail(throttle, "a", 5)
    assert throttle.wait_s("a") == 0.0


def test_each_failure_past_the_free_ones_doubles_the_wait_up_to_the_cap(clock: FakeClock) -> None:
    throttle = AttemptThrottle(clock, free_attempts=2, base_delay_s=1.0, max_delay_s=10.0)
    fail(throttle, "a", 2)
    waits = []
    for _ in range(6):
        throttle.failed("a")
        waits.append(throttle.wait_s("a"))
        clock.advance(waits[-1])
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_the_wait_counts_down_with_the_clock(clock: FakeClock) -> None:
    throttle = AttemptThrottle(clock, free_attempts=0, base_delay_s=4.0)
    throttle.failed("a")
    clock.advance(1.5)
    assert throttle.wait_s("a") == 2.5
    clock.advance(2.5)
    assert throttle.wait_s("a") == 0.0


def test_clients_are_throttled_apart(clock: FakeClock) -> None:
    throttle = AttemptThrottle(clock, free_attempts=1)
    fail(throttle, "a", 3)
    assert throttle.wait_s("a") > 0.0
    assert throttle.wait_s("b") == 0.0


def test_success_forgets_the_client(clock: FakeClock) -> None:
    throttle = AttemptThrottle(clock, free_attempts=1, base_delay_s=1.0)
    fail(throttle, "a", 4)
    throttle.succeeded("a")
    assert throttle.wait_s("a") == 0.0
    throttle.failed("a")
    assert throttle.wait_s("a") == 0.0  # its free attempt is back


def test_memory_is_bounded_forgetting_the_client_that_failed_least_recently(clock: FakeClock) -> None:
    throttle = AttemptThrottle(clock, free_attempts=0, max_clients=2)
    throttle.failed("a")
    throttle.failed("b")
    throttle.failed("a")  # a failed again: b is now the oldest
    throttle.failed("c")
    assert throttle.wait_s("b") == 0.0
    assert throttle.wait_s("a") > 0.0 and throttle.wait_s("c") > 0.0
    assert len(throttle._clients) == 2


def test_endless_failures_stay_at_the_cap_without_overflow(clock: FakeClock) -> None:
    throttle = AttemptThrottle(clock, free_attempts=0, base_delay_s=1.0, max_delay_s=300.0)
    fail(throttle, "a", 5_000)
    assert throttle.wait_s("a") == 300.0
