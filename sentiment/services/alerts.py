"""Alerts: raised and resolved in order on a background task, stored keyed in the shared database. A change
that cannot be stored (the database is down) waits and
is stored when it returns, with the time it happened."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime

import msgspec
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import Alert, AlertSeverity, AlertState, first_line
from sentiment.core.retry import Backoff, retry
from sentiment.core.tasks import cancel_and_wait, wait_until
from sentiment.storage.repositories import AlertRepository

log = structlog.get_logger(__name__)

RETRY = Backoff(first_s=1.0, factor=1.0)  # a change waiting for the database is tried again every second
MAX_WAITING_CHANGES = 10_000


class AlertChange(msgspec.Struct, frozen=True):
    key: str
    at: datetime
    raise_: bool
    kind: str = ""
    severity: AlertSeverity = "warning"
    message: str = ""


class AlertService:
    """Sync code (the breaker's transition hook, the rule
    monitor) posts changes; one task applies them in order.

    Order matters: a breaker that opens and closes quickly must end with its alert resolved, not raised.
    A database error is logged and the change retried, never raised into the code that noticed the condition.
    """

    def __init__(self, engine: AsyncEngine, clock: WallClock = utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._changes: deque[AlertChange] = deque(maxlen=MAX_WAITING_CHANGES)
        self._posted = asyncio.Event()
        self._applied = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alerts")

    async def close(self, timeout_s: float = 10.0) -> None:
        if self._task is None:
            return
        if not await self.settle(timeout_s):
            log.error("alerts_closed_with_waiting_changes", waiting=len(self._changes))
        await cancel_and_wait(self._task)
        self._task = None

    async def settle(self, timeout_s: float | None = None) -> bool:
        """Wait until every posted change is stored; False when the timeout passed first."""
        return await wait_until(self._applied, lambda: not self._changes, timeout_s)

    def post_raise(self, key: str, kind: str, severity: AlertSeverity, message: str) -> None:
        self._post(AlertChange(key, self._clock(), True, kind, severity, message))

    def post_resolve(self, key: str) -> None:
        self._post(AlertChange(key, self._clock(), False))

    def _post(self, change: AlertChange) -> None:
        self._changes.append(change)
        self._posted.set()

    async def list(self, state: AlertState | None = None, limit: int = 100) -> list[Alert]:
        async with self._engine.connect() as connection:
            return await AlertRepository(connection).list(state, limit)

    async def acknowledge(self, alert_id: int) -> Alert | None:
        async with self._engine.begin() as connection:
            return await AlertRepository(connection).acknowledge(alert_id, self._clock())

    async def _run(self) -> None:
        while True:
            if not self._changes:
                self._posted.clear()
                await self._posted.wait()
                continue
            await retry(self._apply_oldest, retry_on=(SQLAlchemyError, OSError), backoff=RETRY)
            self._changes.popleft()
            async with self._applied:
                self._applied.notify_all()

    async def _apply_oldest(self) -> None:
        """Store the oldest waiting change (looked up on every try: a full deque drops its oldest changes)."""
        change = self._changes[0]
        try:
            async with self._engine.begin() as connection:
                alerts = AlertRepository(connection)
                if change.raise_:
                    done = await alerts.raise_alert(
                        change.key, change.kind, change.severity, change.message, change.at
                    )
                else:
                    done = await alerts.resolve(change.key, change.at)
        except (SQLAlchemyError, OSError) as error:
            log.warning("alert_change_waiting_for_database", key=change.key, error=first_line(error))
            raise
        if done:
            if change.raise_:
                log.warning("alert_raised", key=change.key, kind=change.kind, severity=change.severity)
            else:
                log.info("alert_resolved", key=change.key)
