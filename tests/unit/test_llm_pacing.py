"""How a language model's requests are paced: the spacing of requests_per_minute, the server's own
Retry-After, and the backoff when it gives none."""

from __future__ import annotations

import httpx
import pytest

from sentiment.inference.llm import Pace, retry_after_s
from tests.clocks import FakeClock


def test_requests_are_spaced_by_the_rate_and_a_hold_moves_every_later_slot() -> None:
    clock = FakeClock(now=0.0)
    pace = Pace(per_minute=120, clock=clock)
    assert [pace.slot() for _ in range(3)] == [0.0, 0.5, 1.0]
    clock.advance(5.0)
    assert pace.slot() == 5.0  # idle time is not saved up as a burst
    pace.hold(until_s=9.0)  # the server asked everyone to wait
    assert pace.slot() == 9.0 and pace.slot() == 9.5


def test_without_a_rate_only_holds_delay_requests() -> None:
    clock = FakeClock(now=0.0)
    pace = Pace(per_minute=None, clock=clock)
    assert [pace.slot() for _ in range(3)] == [0.0, 0.0, 0.0]
    pace.hold(until_s=2.0)
    assert pace.slot() == 2.0 and pace.slot() == 2.0


@pytest.mark.parametrize(
    ("header", "failures", "wait_s"),
    [
        ("3", 1, 3.0),
        ("0.25", 5, 0.25),
        ("Tue, 01 Dec 2026 12:00:10 GMT", 1, 10.0),
        (None, 1, 0.5),
        (None, 3, 2.0),
        (None, 10, 8.0),
        ("soon", 2, 1.0),
    ],
)
def test_the_wait_after_a_refusal_is_the_servers_or_a_doubling_backoff(
    header: str | None, failures: int, wait_s: float
) -> None:
    response = httpx.Response(429, headers={"retry-after": header} if header else {})
    noon = 1_796_126_400.0  # 2026-12-01 12:00:00 UTC
    assert retry_after_s(response, failures, now=lambda: noon) == pytest.approx(wait_s)
