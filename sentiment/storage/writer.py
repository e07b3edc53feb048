"""Storage of predictions: durable in a local journal before they are answered, then written to the database
off the request path, in batches, and patiently while the database is down."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

import structlog
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.domain import Prediction, StorageBehind
from sentiment.core.tasks import cancel_and_wait, wait_until
from sentiment.storage.database import OUTAGE_BACKOFF, database_away, missing_schema
from sentiment.storage.journal import Journal, JournalFailed
from sentiment.storage.repositories import PredictionRepository
from sentiment.storage.settings import WriterSettings

log = structlog.get_logger(__name__)

WriteError = SQLAlchemyError | OSError


def refused_for_content(error: WriteError) -> bool:
    """The database answered and refused the rows themselves (a constraint, a value it cannot hold): retrying
    the same rows cannot help. Unreachable, restarting, locked or busy databases take the same rows later."""
    return isinstance(error, DBAPIError) and not database_away(error) and not missing_schema(error)


class PredictionWriter:
    """Makes answered predictions durable in the journal before they are answered, then inserts them from the
    journal into the database in batches on a background task.

    What waits for the database is bounded by `max_pending` rows and `journal_mb` of disk. Predictions reserve
    their rows' room before they are scored and are refused (StorageBehind) when there is none, so that a
    request is answered 503 rather than 200 with rows that could not be kept.
    """

    def __init__(self, engine: AsyncEngine, settings: WriterSettings, store_text: bool) -> None:
        self._engine = engine
        self._settings = settings
        self._store_text = store_text
        self._journal = Journal(Path(settings.journal_dir))
        self._reserved = Reservation(0, 0)  # room promised to requests being answered
        self._max_backlog_bytes = int(settings.journal_mb * 1024 * 1024)
        self._closing = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0
        self.failed_attempts = 0
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        """Rows in the journal that the database does not have yet."""
        return self._journal.backlog_rows

    @property
    def pending_bytes(self) -> int:
        return self._journal.backlog_bytes

    @property
    def journal_error(self) -> str | None:
        """Why the last append to the journal failed (a full disk), until one succeeds."""
        return self._journal.failure

    @property
    def backlog_share(self) -> float:
        """How much of the room (rows or bytes, whichever is fuller) is used or promised."""
        rows = (self.pending + self._reserved.rows) / self._settings.max_pending
        size = (self.pending_bytes + self._reserved.bytes) / self._max_backlog_bytes
        return max(rows, size)

    def start(self) -> None:
        """Open the journal (adopting what processes before this one left) and start writing."""
        self._journal.open()
        self._task = asyncio.create_task(self._run(), name="prediction-writer")

    def reserve(self, texts: Sequence[str]) -> Reservation:
        """Room for the rows these texts will make, taken before they are scored: StorageBehind when the room
        (with what is already promised) cannot hold them. `store` with the reservation, or `release` it."""
        wanted = Reservation(len(texts), sum(record_bytes(text) for text in texts))
        rows = self.pending + self._reserved.rows + wanted.rows
        size = self.pending_bytes + self._reserved.bytes + wanted.bytes
        if rows > self._settings.max_pending or size > self._max_backlog_bytes:
            raise StorageBehind(self.pending)
        self._reserved = Reservation(self._reserved.rows + wanted.rows, self._reserved.bytes + wanted.bytes)
        return wanted

    def release(self, reservation: Reservation) -> None:
        self._reserved = Reservation(
            self._reserved.rows - reservation.rows, self._reserved.bytes - reservation.bytes
        )

    async def store(self, predictions: Sequence[Prediction], reservation: Reservation) -> None:
        """Return once the rows are durable in the journal; StorageBehind when the disk refuses them."""
        try:
            await self._journal.append(predictions)
        except JournalFailed as failure:
            raise StorageBehind(self.pending, reason=str(failure)) from failure
        finally:
            self.release(reservation)

    async def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the database has everything stored so far
        (or refused it); False when the timeout passed first."""
        target = self._journal.durable_rows
        return await wait_until(self._progress, lambda: self._journal.consumed_rows >= target, timeout_s)

    async def close(self, timeout_s: float = 30.0) -> None:
        """Write what the database takes within `timeout_s`, then stop: the rest stays in the journal."""
        if self._task is None:
            return
        await self._journal.settled()
        self._closing.set()
        self._journal.arrived.set()
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._task)
        except TimeoutError:
            await cancel_and_wait(self._task)
            log.warning("prediction_writer_stopped_with_rows_in_journal", pending=self.pending)
        self._task = None
        self._journal.close()

    async def _run(self) -> None:
        retrying = False
        while True:
            # Cleared before reading: rows made durable while the read runs wake the wait below.
            self._journal.arrived.clear()
            batch = await asyncio.to_thread(self._journal.read, self._settings.batch_size)
            if batch is None:
                if self._closing.is_set():
                    return
                await self._journal.arrived.wait()
                await self._let_a_batch_gather()
                continue
            rows = batch.rows
            # Rows a dead process wrote, or a batch whose commit may have landed before an error, may already
            # be in the database: those are skipped, never inserted twice.
            if batch.inherited or retrying:
                rows = await self._not_stored(rows)
            retrying = not await self._settle(rows)
            if retrying:
                await asyncio.sleep(OUTAGE_BACKOFF.delay(self.failed_attempts))
                continue
            self._journal.advance(batch)
            self.dropped += batch.lost_rows
            async with self._progress:
                self._progress.notify_all()
            if batch.end_of_journal:
                # Caught up: under steady traffic the next rows gather for one insert instead of a
                # transaction every few requests.
                await self._let_a_batch_gather()

    async def _let_a_batch_gather(self) -> None:
        """Wait `flush_interval_s` before the next insert; closing cuts it short."""
        with suppress(TimeoutError):
            async with asyncio.timeout(self._settings.flush_interval_s):
                await self._closing.wait()

    async def _settle(self, rows: list[Prediction]) -> bool:
        """Insert the rows; False when the database is away (the batch is tried again)."""
        error = await self._write(rows) if rows else None
        if error is None:
            self.written += len(rows)
            return True
        if refused_for_content(error):
            return await self._write_alone(rows)
        return False

    async def _not_stored(self, rows: list[Prediction]) -> list[Prediction]:
        try:
            async with self._engine.connect() as connection:
                stored = await PredictionRepository(connection).existing_ids([row.id for row in rows])
        except (SQLAlchemyError, OSError):
            return rows  # the insert will meet the same error and wait for the database
        return [row for row in rows if row.id not in stored]

    async def _write_alone(self, batch: list[Prediction]) -> bool:
        """After the database refused a batch for its content, write its rows one at a time and drop (and
        count) only a row refused on its own, so that it cannot hold back the rows behind it. False when the
        database stops answering on the way (the batch is tried again, skipping the rows it has)."""
        for prediction in batch:
            error = await self._write([prediction])
            if error is None:
                self.written += 1
            elif refused_for_content(error):
                self.dropped += 1
                log.error("prediction_row_refused", id=str(prediction.id), error=_describe(error))
            else:
                return False
        return True

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
                "prediction_write_failed", rows=len(batch), pending=self.pending, error=self.last_error
            )
            return error
        if self.last_error is not None:
            log.info("prediction_writes_resumed", pending=self.pending)
        self.failed_attempts = 0
        self.last_error = None
        return None


class Reservation(NamedTuple):
    rows: int
    bytes: int


# What a row adds to its text in the journal (its id, time, scores, names, as MessagePack): about 300 bytes.
RECORD_OVERHEAD_BYTES = 320


def record_bytes(text: str) -> int:
    """The journal bytes a row of this text takes, near enough (by its UTF-8 length) to bound it by bytes."""
    return len(text.encode("utf-8", "surrogatepass")) + RECORD_OVERHEAD_BYTES


def _describe(error: WriteError) -> str:
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
