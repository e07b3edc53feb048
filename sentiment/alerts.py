"""Alerts: raised and resolved in order on a background task, stored keyed in the shared database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.clock import WallClock, utc_now
from sentiment.storage.repositories import Alert, AlertRepository, AlertSeverity, AlertState

log = structlog.get_logger(__name__)


class AlertService:
    """Sync code (the breaker's transition hook) posts alert changes; one task applies them in order.

    Order matters: a breaker that opens and closes quickly must end with its alert resolved, not raised.
    A database error is logged, never raised into the code that noticed the condition.
    """

    def __init__(self, engine: AsyncEngine, clock: WallClock = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._queue: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts")

    async def close(self, timeout_s: float = 10.0) -> None:
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            log.error("alerts_closed_with_pending_changes", pending=self._queue.qsize())
        self._task.cancel()
        self._task = None

    async def settle(self) -> None:
        """Wait until every posted change is applied."""
        await self._queue.join()

    def post_raise(self, key: str, kind: str, severity: AlertSeverity, message: str) -> None:
        self._queue.put_nowait(lambda: self.raise_alert(key, kind, severity, message))

    def post_resolve(self, key: str) -> None:
        self._queue.put_nowait(lambda: self.resolve(key))

    async def raise_alert(self, key: str, kind: str, severity: AlertSeverity, message: str) -> None:
        try:
            async with self._engine.begin() as connection:
                raised = await AlertRepository(connection).raise_alert(key, kind, severity, message, self._clock())
        except (SQLAlchemyError, OSError) as error:
            log.error("alert_not_stored", key=key, error=str(error).splitlines()[0])
            return
        if raised:
            log.warning("alert_raised", key=key, kind=kind, severity=severity)

    async def resolve(self, key: str) -> None:
        try:
            async with self._engine.begin() as connection:
                resolved = await AlertRepository(connection).resolve(key, self._clock())
        except (SQLAlchemyError, OSError) as error:
            log.error("alert_not_resolved", key=key, error=str(error).splitlines()[0])
            return
        if resolved:
            log.info("alert_resolved", key=key)

    async def list(self, state: AlertState | None = None, limit: int = 100) -> list[Alert]:
        async with self._engine.connect() as connection:
            return await AlertRepository(connection).list(state, limit)

    async def acknowledge(self, alert_id: int) -> Alert | None:
        async with self._engine.begin() as connection:
            return await AlertRepository(connection).acknowledge(alert_id, self._clock())

    async def _run(self) -> None:
        while True:
            change = await self._queue.get()
            try:
                await change()
            finally:
                self._queue.task_done()
