"""Stopping background tasks: shutdown waits until each has given back what it held."""

import asyncio
import contextlib
from pathlib import Path

import sentiment
from sentiment.core.tasks import cancel_and_wait


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
    """On Python 3.11 `asyncio.wait_for` returns the inner result when a cancellation arrives just as the inner
    call finishes, so a loop around it (a health probe every few seconds) survives its cancellation: measured
    here in about a third of cancellations of such a loop, and shutdown then waited for it for ever.
    `asyncio.timeout` has no such gap."""
    package = Path(sentiment.__file__).parent
    offenders = [
        str(path.relative_to(package)) for path in package.rglob("*.py") if "asyncio.wait_for(" in path.read_text()
    ]
    assert offenders == []
