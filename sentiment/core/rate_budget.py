"""The per-address rate limit of the requests that score text, as a budget that can also be charged after the
fact: a request is admitted while its client's budget lasts, and the work it turns out to amount to (a data
set's rows, counted as the /predict/batch requests they would take) is charged to it afterwards, as debt that
the client's later requests wait out.

The generic cell rate algorithm (GCRA): each unit moves the client's "theoretical arrival time" forward by
period / limit, and a request is admitted while that time, with the request's unit, is at most one period
ahead of now. So `limit` requests fit in a burst, then one every period / limit. Unlike litestar's fixed
window, debt carries over: a start charged 4,000 units keeps its client waiting 4,000 units' time, not only
until the current window ends. Times are integer nanoseconds, so that `limit` requests always fit exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

PRUNE_FLOOR = 1024
NS = 1_000_000_000


def batches(rows: int, batch_size: int) -> int:
    """The /predict/batch requests `rows` texts would take (one at least: a request is a request)."""
    return max(1, math.ceil(rows / batch_size))


class RateBudget:
    """`limit` units per `period_s` for each client key."""

    def __init__(self, limit: int, period_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.period_s = period_s
        self._period_ns = round(period_s * NS)
        self._interval_ns = self._period_ns // limit
        self._clock = clock
        # Per key, the theoretical arrival time: when its budget is whole again (absent: whole now).
        self._whole_at: dict[str, int] = {}
        self._prune_at = PRUNE_FLOOR

    def take(self, key: str) -> float:
        """Admit one request and charge its unit (0.0), or say how many seconds it must wait (charging
        nothing)."""
        now = self._now()
        whole_at = max(self._whole_at.get(key, now), now) + self._interval_ns
        wait_ns = whole_at - self._period_ns - now
        if wait_ns > 0:
            return wait_ns / NS
        self._set(key, whole_at, now)
        return 0.0

    def charge(self, key: str, units: int) -> None:
        """Charge work an admitted request amounts to, whatever is left of the budget: what it overdraws is
        waited out by the client's next requests."""
        now = self._now()
        self._set(key, max(self._whole_at.get(key, now), now) + units * self._interval_ns, now)

    def _now(self) -> int:
        return round(self._clock() * NS)

    def _set(self, key: str, whole_at: int, now: int) -> None:
        self._whole_at[key] = whole_at
        # A key whose budget is whole again is the same as an absent one: dropped once the map has doubled,
        # so a flood of addresses costs memory only while their budgets are spent.
        if len(self._whole_at) >= self._prune_at:
            self._whole_at = {k: at for k, at in self._whole_at.items() if at > now}
            self._prune_at = max(PRUNE_FLOOR, 2 * len(self._whole_at))

    def __len__(self) -> int:
        return len(self._whole_at)


class RowCharge:
    """What an admitted request that starts a data set owes for its rows, charged as they become known (the
    rows seen at start, then the full count once the job has made it); the request's own unit is paid."""

    def __init__(self, budget: RateBudget, key: str, batch_size: int) -> None:
        self._budget = budget
        self._key = key
        self._batch_size = batch_size
        self._paid = 1

    def __call__(self, rows: int) -> None:
        """`rows`: all the rows known so far (never fewer than before); only the difference is charged."""
        owed = batches(rows, self._batch_size)
        if owed > self._paid:
            self._budget.charge(self._key, owed - self._paid)
            self._paid = owed
