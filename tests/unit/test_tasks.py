"""Background tasks: waiting for their progress is bounded,
and shutdown waits until each has given back what it held."""

import asyncio
import contextlib
from pathlib import Path

import pytest

import sentiment
from sentiment.core.tasks import cancel_and_wait, poll_until, to_the_end, wait_until


async def test_wait_until_returns_true_once_a_notification_finds_the_predicate_holding() -> None:
    progress, written = asyncio.Condition(), []

    async def write(rows: int) -> None:
        for _ in range(rows):
            await asyncio.sleep(0)
            async with progress:
                written.append(1)
                progress.notify_all()

    writer = asyncio.create_task(write(3))
    assert await wait_until(progress, lambda: len(written) >= 3, timeout_s=5)
    await writer


async def test_wait_until_answers_false_when_the_timeout_passes_first() -> None:
    assert not await wait_until(asyncio.Condition(), lambda: False, timeout_s=0.01)


async def test_wait_until_of_a_predicate_already_holding_returns_at_once() -> None:
    assert await wait_until(asyncio.Condition(), lambda: True, timeout_s=0)


class PolledClock:
    """A clock moved only by the polling loop's sleeps; `loads_at` is when the polled state turns true."""

    def __init__(self, loads_at: float) -> None:
        self.now, self.loads_at, self.checks = 0.0, loads_at, 0

    def time(self) -> float:
        return self.now

    def loaded(self) -> bool:
        self.checks += 1
        return self.now >= self.loads_at

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_poll_until_checks_every_interval_until_the_state_holds() -> None:
    clock = PolledClock(loads_at=1.0)
    assert await poll_until(clock.loaded, timeout_s=5, every_s=0.25, sleep=clock.sleep, clock=clock.time)
    assert (clock.now, clock.checks) == (1.0, 5)


async def test_poll_until_gives_up_with_false_once_past_the_timeout() -> None:
    clock = PolledClock(loads_at=10.0)
    assert not await poll_until(clock.loaded, timeout_s=1, every_s=0.5, sleep=clock.sleep, clock=clock.time)
    assert clock.now == 1.5  # the check at 1.0 s is not yet past the timeout


async def test_cancel_and_wait_returns_only_after_every_task_has_unwound() -> None:
    unwound: list[str] = []

    async def holding_a_connection(name: str) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # giving a connection back takes a trip through the loop
            unwound.append(name)

    tasks = [asyncio.create_task(holding_a_connection(name)) for name in ("alerts", "monitor")]
    await asyncio.sleep(0)
    await cancel_and_wait(*tasks)
    assert unwound == ["alerts", "monitor"]
    assert all(task.cancelled() for task in tasks)


async def test_cancel_and_wait_of_finished_or_failed_tasks_raises_nothing() -> None:
    async def fails() -> None:
        raise RuntimeError("already failed")

    done, failed = asyncio.create_task(asyncio.sleep(0)), asyncio.create_task(fails())
    await asyncio.sleep(0.01)
    await cancel_and_wait(done, failed)
    assert done.done() and isinstance(failed.exception(), RuntimeError)


async def test_a_task_that_will_not_stop_is_left_after_the_timeout_instead_of_hanging_shutdown() -> None:
    released = asyncio.Event()

    async def ignores_cancellation_until_released() -> None:
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    task = asyncio.create_task(ignores_cancellation_until_released(), name="stubborn")
    await asyncio.sleep(0)
    await cancel_and_wait(task, timeout_s=0.3)
    assert not task.done()
    released.set()
    await task


def test_no_module_uses_asyncio_wait_for() -> None:
    """On Python 3.11 `asyncio.wait_for` returns the inner result when a cancellation arrives just as the
    inner call finishes, so a loop around it (a health probe every few seconds) survives its cancellation:
    measured here in about a third of cancellations of such a loop, and shutdown then waited for it for ever.
    `asyncio.timeout` has no such gap."""
    package = Path(sentiment.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "asyncio.wait_for(" in path.read_text()
    ]
    assert offenders == []


async def test_a_step_run_to_the_end_finishes_when_its_task_is_cancelled_and_the_cancel_comes_after() -> None:
    """What a database transaction needs: cancelled halfway, its connection could keep the write lock."""
    steps: list[str] = []

    async def transaction() -> None:
        steps.append("begun")
        await asyncio.sleep(0.05)
        steps.append("committed")

    async def job() -> None:
        await to_the_end(transaction())
        steps.append("went on")  # never: the cancellation is raised once the step is done

    task = asyncio.create_task(job())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["begun", "committed"]
