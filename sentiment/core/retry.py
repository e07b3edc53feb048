"""Trying again: the waits between attempts, and one loop that retries a failing call with them.

The sleep and the clock are injected, so tests run instantly and exactly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Backoff(msgspec.Struct, frozen=True):
    """Waits between attempts: `first_s`, then `factor` times the wait before (1: always the same), at most
    `max_s`."""

    first_s: float
    factor: float = 2.0
    max_s: float = math.inf

    def delay(self, failures: int) -> float:
        """The wait after `failures` failures in a row (1 after the first)."""
        try:
            return min(self.first_s * self.factor ** (failures - 1), self.max_s)
        except OverflowError:  # a long outage: the wait stopped growing long ago
            return self.max_s


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    backoff: Backoff,
    attempts: int | None = None,
    give_up_after_s: float | None = None,
    on_failure: Callable[[BaseException, int], None] = lambda error, failures: None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Await `call()` until it returns, waiting `backoff` after each error of a `retry_on`
    type; any other error goes straight to the caller. Gives up, raising the last error,
    after `attempts` attempts or on a failure more than `give_up_after_s` seconds after the
    first attempt began (neither given: never). `on_failure(error, failures)` sees every
    retried-type failure, the last one included, before the wait or the giving up."""
    deadline = clock() + give_up_after_s if give_up_after_s is not None else None
    failures = 0
    while True:
        try:
            return await call()
        except retry_on as error:
            failures += 1
            on_failure(error, failures)
            if attempts is not None and failures >= attempts:
                raise
            if deadline is not None and clock() > deadline:
                raise
        await sleep(backoff.delay(failures))
