"""Stopping background tasks."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel the tasks and wait until they have unwound: a task cancelled mid-query gives its database connection
    back as it unwinds, and an engine disposed before then leaves that connection (and, with aiosqlite, its
    non-daemon thread, which keeps the process from exiting) open."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
