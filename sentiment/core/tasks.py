"""Background tasks: waiting for the progress they report, and stopping them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")


async def wait_until(condition: asyncio.Condition, done: Callable[[], bool], timeout_s: float | None) -> bool:
    """Wait until `done()` holds, checked whenever `condition`
    is notified; False when `timeout_s` passed first."""
    try:
        async with asyncio.timeout(timeout_s), condition:
            await condition.wait_for(done)
    except TimeoutError:
        return False
    return True


async def poll_until(
    done: Callable[[], bool],
    timeout_s: float,
    every_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Check `done()` every `every_s` until it holds (True) or `timeout_s` has passed (False): for state that
    changes without notifying anyone (a worker thread's, a model's loading)."""
    deadline = clock() + timeout_s
    while not done():
        if clock() > deadline:
            return False
        await sleep(every_s)
    return True


async def to_the_end(step: Awaitable[T]) -> T:
    """Run a step that must not stop halfway, a database transaction above all, to its end even when the task
    running it is cancelled meanwhile; the cancellation is raised after it. (A transaction cancelled in the
    middle of a statement can give its SQLite connection back to the pool still holding the write lock: every
    other writer then waits out the lock timeout.)"""
    running = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        with suppress(Exception):
            await running
        raise


async def cancel_and_wait(*tasks: asyncio.Task[Any], timeout_s: float = 10.0) -> None:
    """Cancel the tasks and wait until they have unwound: a task cancelled mid-query gives its database
    connection back as it unwinds, and an engine disposed before then leaves that connection (and, with
    aiosqlite, its non-daemon thread, which keeps the process from exiting) open. A task still running after
    `timeout_s` is logged and left, so that shutdown itself never hangs."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    if pending:
        log.error("tasks_did_not_stop", tasks=sorted(task.get_name() for task in pending), waited_s=timeout_s)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved: a task that failed before shutdown is not reported again at exit


class Deadline:
    """The time by which a sequence of steps (a shutdown) must be over: each step takes what the ones before
    it left. Counted from `start`."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._end: float | None = None

    def start(self) -> None:
        self._end = self._clock() + self._seconds

    def remaining(self, keep_s: float = 0.0) -> float:
        """Seconds left, less `keep_s` kept for the steps after this one; never negative."""
        left = self._seconds if self._end is None else self._end - self._clock()
        return max(0.0, left - keep_s)


async def within(deadline: Deadline, step: str, work: Callable[[], Awaitable[object]]) -> None:
    """Run a shutdown step, abandoned (and logged) when the deadline passes first."""
    try:
        async with asyncio.timeout(deadline.remaining()):
            await work()
    except TimeoutError:
        log.error("shutdown_step_abandoned", step=step)
