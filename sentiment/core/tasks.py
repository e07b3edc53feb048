"""Stopping background tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def cancel_and_wait(*tasks: asyncio.Task[Any], timeout_s: float = 10.0) -> None:
    """Cancel the tasks and wait until they have unwound: a task cancelled mid-query gives its database connection
    back as it unwinds, and an engine disposed before then leaves that connection (and, with aiosqlite, its
    non-daemon thread, which keeps the process from exiting) open. A task still running after `timeout_s` is
    logged and left, so that shutdown itself never hangs."""
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
