"""Write-behind storage of predictions: off the request
path, in batches, and patient while the database is down."""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from typing import NamedTuple

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.domain import Prediction, StorageBehind
from sentiment.core.tasks import cancel_and_wait, wait_until
from sentiment.storage.database import OUTAGE_BACKOFF, missing_schema
from sentiment.storage.repositories import PredictionRepository
from sentiment.storage.settings import WriterSettings

log = structlog.get_logger(__name__)

WriteError = SQLAlchemyError | OSError


def refused_for_content(error: WriteError) -> bool:
    """The database answered and refused the rows themselves (a constraint, a value it cannot hold): retrying
    the same rows cannot help. Unreachable, restarting, locked or busy databases take the same rows later."""
    if isinstance(error, OSError | OperationalError | InterfaceError) or missing_schema(error):
        return False
    return isinstance(error, DBAPIError) and not error.connection_invalidated


class PredictionWriter:
    """Buffers answered predictions and inserts them in batches on a background task.

    The buffer is bounded by `max_pending` rows and `max_pending_mb` of memory (10,000-character texts make a
    row 40 times the size of a tweet's). Predictions reserve their rows' room before they are scored and are
    refused (StorageBehind) when there is none, so that no answered row is dropped for want of room; rows
    submitted without a reservation are dropped (and counted in `dropped`) past the bounds.
    """

    def __init__(self, engine: AsyncEngine, settings: WriterSettings, store_text: bool) -> None:
        self._engine = engine
        self._settings = settings
        self._store_text = store_text
        self._pending: deque[Prediction] = deque()
        self._pending_bytes = 0
        self._reserved = Reservation(0, 0)  # room promised to requests being answered
        self._max_pending_bytes = int(settings.max_pending_mb * 1024 * 1024)
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.submitted = 0
        self.written = 0
        self.dropped = 0
        self.failed_attempts = 0
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="prediction-writer")

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    @property
    def backlog_share(self) -> float:
        """How much of the buffer's room (rows or bytes, whichever is fuller) is used or promised."""
        rows = (len(self._pending) + self._reserved.rows) / self._settings.max_pending
        size = (self._pending_bytes + self._reserved.bytes) / self._max_pending_bytes
        return max(rows, size)

    def reserve(self, texts: Sequence[str]) -> Reservation:
        """Room for the rows these texts will make, taken before they are scored: StorageBehind when the
        buffer (with the room already promised) cannot hold them, so that a request is refused rather than
        answered with rows that would be dropped. `submit` with the reservation, or `release` it."""
        wanted = Reservation(len(texts), sum(text_bytes(text) for text in texts))
        rows = len(self._pending) + self._reserved.rows + wanted.rows
        size = self._pending_bytes + self._reserved.bytes + wanted.bytes
        if rows > self._settings.max_pending or size > self._max_pending_bytes:
            raise StorageBehind(len(self._pending))
        self._reserved = Reservation(self._reserved.rows + wanted.rows, self._reserved.bytes + wanted.bytes)
        return wanted

    def release(self, reservation: Reservation) -> None:
        self._reserved = Reservation(
            self._reserved.rows - reservation.rows, self._reserved.bytes - reservation.bytes
        )

    def submit(self, predictions: Sequence[Prediction], reservation: Reservation | None = None) -> None:
        """Queue rows for the database. Rows with a reservation always fit (their room was kept for them);
        others are dropped, and counted, past the buffer's bounds."""
        if reservation is not None:
            self.release(reservation)
        room = self._settings.max_pending - len(self._pending) - self._reserved.rows
        accepted = []
        for prediction in predictions[: max(room, 0)]:
            size = row_bytes(prediction)
            if self._pending_bytes + self._reserved.bytes + size > self._max_pending_bytes:
                break
            self._pending_bytes += size
            accepted.append(prediction)
        self._pending.extend(accepted)
        self.submitted += len(predictions)
        if len(accepted) < len(predictions):
            self.dropped += len(predictions) - len(accepted)
            log.error(
                "prediction_rows_dropped",
                dropped=len(predictions) - len(accepted),
                pending=len(self._pending),
            )
        self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything submitted so far is written
        (or dropped); False when the timeout passed first."""
        target = self.submitted
        return await wait_until(self._progress, lambda: self.written + self.dropped >= target, timeout_s)

    async def close(self, timeout_s: float = 30.0) -> None:
        """Write everything pending (bounded by `timeout_s`), then stop."""
        if self._task is None:
            return
        self._closing.set()
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._task)
        except TimeoutError:
            await cancel_and_wait(self._task)
            log.error("prediction_writer_closed_with_pending_rows", pending=len(self._pending))
        self._task = None

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing.is_set():
                    return
                self._wake.clear()
                await self._wake.wait()
                # Let a batch gather instead of inserting each
                # request's rows on their own; closing cuts it short.
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._settings.flush_interval_s):
                        await self._closing.wait()
            batch = [self._pending[i] for i in range(min(self._settings.batch_size, len(self._pending)))]
            error = await self._write(batch) if batch else None
            if error is None:
                settled = len(batch)
                self.written += settled
            elif refused_for_content(error):
                settled = await self._write_alone(batch)
            else:
                settled = 0
            for _ in range(settled):
                self._pending_bytes -= row_bytes(self._pending.popleft())
            if settled:
                async with self._progress:
                    self._progress.notify_all()
            if settled < len(batch):
                await asyncio.sleep(OUTAGE_BACKOFF.delay(self.failed_attempts))

    async def _write_alone(self, batch: list[Prediction]) -> int:
        """After the database refused a batch for its content, write its rows one at a time and drop (and
        count) only a row refused on its own, so that it cannot hold back the rows behind it. Returns how many
        rows from the front of `batch` are settled: fewer when the database stops answering on the way."""
        for settled, prediction in enumerate(batch):
            error = await self._write([prediction])
            if error is None:
                self.written += 1
            elif refused_for_content(error):
                self.dropped += 1
                log.error("prediction_row_refused", id=str(prediction.id), error=_describe(error))
            else:
                return settled
        return len(batch)

    async def _write(self, batch: list[Prediction]) -> WriteError | None:
        """Insert the rows in one transaction; the error when the database did not take them."""
        try:
            async with self._engine.begin() as connection:
                await PredictionRepository(connection).add_many(batch, self._store_text)
        except (SQLAlchemyError, OSError) as error:
            if refused_for_content(error):
                log.warning("prediction_write_refused", rows=len(batch), error=_describe(error))
                return error
            self.failed_attempts += 1
            self.last_error = _describe(error)
            log.warning(
                "prediction_write_failed", rows=len(batch), pending=len(self._pending), error=self.last_error
            )
            return error
        if self.last_error is not None:
            log.info("prediction_writes_resumed", pending=len(self._pending))
        self.failed_attempts = 0
        self.last_error = None
        return None


# What a pending row holds besides its text (its id, time, scores, names), measured with tracemalloc.
ROW_OVERHEAD_BYTES = 480


class Reservation(NamedTuple):
    rows: int
    bytes: int


def text_bytes(text: str) -> int:
    """The memory a pending row of this text takes, near enough to bound the buffer by bytes."""
    return sys.getsizeof(text) + ROW_OVERHEAD_BYTES


def row_bytes(prediction: Prediction) -> int:
    return text_bytes(prediction.text)


def _describe(error: WriteError) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
