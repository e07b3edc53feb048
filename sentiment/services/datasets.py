"""Data sets: an uploaded CSV kept on disk, scored by a background job through the model's batching queue.

upload (streamed to the data folder, header checked) -> start (columns and model checked on a first look at
the rows) -> the job: count the rows -> read chunks -> score each, sorted by length (and by VADER too when
there is a gold column) -> append the scored rows to the export file, in input order, synced to disk -> store
the chunk's predictions, its counts by label, time and group, the progress, the tallies and the export's size
in one transaction.

A job stopped before it is done (a shutdown, a kill, a replica gone) is resumed, here at the next start or by
any live replica once its heartbeat is stale: one replica takes it over (a compare-and-set on its status and
heartbeat), starts its export with what the last chunk stored says the export held
(services/partial_export.py), restores the tallies stored with that chunk and goes on after the input rows it
had consumed, so every row is scored, stored and exported once. Each start or resume is a run of its own, and
a run writes only while the data set is still its own.

Every row is accounted for: a row that cannot be scored (not UTF-8, wrong number of fields, empty text) is
counted, listed with its line number and skipped; a row whose time cannot be read is scored and listed, and
left out of the time trend only. Values are made storable first (a NUL becomes U+FFFD); a chunk the database
still refuses for its content is not retried as an outage: the rows it refuses on their own are found, listed
with their line numbers and skipped, and the rest of the chunk is stored.

The folder is bounded (services/quota.py): every upload and every scored chunk is counted against the quota
before (or as) it is written. An upload nobody starts is deleted after SENTIMENT_UPLOAD_EXPIRY_HOURS; an admin
cancels a job or deletes a data set with everything stored of it.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
import time
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import IO, Literal, NamedTuple, TypeVar
from uuid import UUID

import msgspec
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.buckets import key_start
from sentiment.core.clock import WallClock, utc_now
from sentiment.core.columns import ColumnGuess, gold_labels, guess_columns
from sentiment.core.domain import (
    LABELS,
    VADER_KEY,
    Conflict,
    InvalidInput,
    Prediction,
    Scored,
    SentimentError,
    UnknownModel,
    first_line,
)
from sentiment.core.evaluation import (
    Agreement,
    Confusion,
    Disagreement,
    GoldLabels,
    Metrics,
    UnreadableGold,
    agreement,
    metrics,
    missing_classes_note,
    most_disagreed,
    polarity,
    read_gold_values,
)
from sentiment.core.ids import new_id
from sentiment.core.retry import retry
from sentiment.core.tasks import cancel_and_wait, poll_until, to_the_end
from sentiment.core.timeparse import (
    NoTimeFormat,
    TimeFormat,
    detect_format,
    format_named,
    hour_key,
    panel_width,
    trend_starts,
    trend_width,
)
from sentiment.inference.registry import ModelEntry, ModelRegistry
from sentiment.services.models import OfferedModels, offered_models
from sentiment.services.partial_export import FRESH, PartialExport, ResumePoint, resume_point
from sentiment.services.quota import MB, DiskQuota
from sentiment.services.scoring import ChunkScorer, ScoringFailed
from sentiment.services.settings import DatasetSettings
from sentiment.services.tabular import (
    Chunk,
    Inspection,
    Problem,
    Row,
    Table,
    TableError,
    inspect_rows,
    open_table,
    read_chunks,
)
from sentiment.services.training import DatasetSource
from sentiment.storage.database import OUTAGE_BACKOFF
from sentiment.storage.datasets import (
    GROUP_TIME_SEPARATOR,
    RUNNING,
    CountKey,
    Dataset,
    DatasetRepository,
    DatasetStatus,
    refused_predictions,
)
from sentiment.storage.repositories import PredictionRepository, storable_text
from sentiment.storage.writer import WriteError, refused_for_content

log = structlog.get_logger(__name__)

T = TypeVar("T")

MAX_PROBLEMS_KEPT = 1000
QUICK_LOOK_ROWS = 2000
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0
MODEL_LOAD_WAIT_S = 600.0
DATABASE_PATIENCE_S = 120.0
GROUP_LENGTH = 200
TOP_GROUPS = 12
# The largest groups drawn one panel each over time (small multiples) on a report.
GROUP_TRENDS = 6
# A comparison: at most this many models besides the one that stores the rows; the rows they disagree on most
# that a report lists, and how much of each row's text it keeps.
MAX_COMPARED = 4
DISAGREEMENTS_KEPT = 25
DISAGREEMENT_TEXT = 280
# Example texts on a report: the most confident of each label, and one of each label per large group.
EXAMPLES_PER_LABEL = 3
# The column picker: rows read to guess the columns (enough to meet a second group in a file sorted by it),
# and rows shown.
LOOK_ROWS = 5000
PREVIEW_ROWS = 5
EXPIRY_SWEEP_S = 300.0
RESUME_SWEEP_S = 30.0
INTERRUPTED = "the service stopped while scoring; the job resumes when the service starts again"

# Told the rows a start amounts to, as they become known (the first look's, then the full count), so that a
# rate limit can charge them.
RowsCharge = Callable[[int], None]


class UploadTooLarge(SentimentError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the file is larger than the upload limit of {limit:,} bytes (SENTIMENT_MAX_UPLOAD_BYTES)"
        )


class RowsRefused(SentimentError):
    """The database answered and refused a chunk's rows for their content: the same rows would be refused
    again, so the job looks for the rows refused on their own instead of waiting as for an outage."""

    def __init__(self, error: WriteError) -> None:
        super().__init__(
            f"the database refused the rows for their content ({cause_name(error)}); the service's log has "
            "the details"
        )


class DatasetStopped(SentimentError):
    """The data set was cancelled or deleted while a job worked on it (here or on another replica)."""

    def __init__(self, dataset_id: UUID) -> None:
        super().__init__(f"data set {dataset_id} was cancelled or deleted while it was being scored")


class DatasetOptions(msgspec.Struct, frozen=True):
    """Which columns to read and which model scores them; all columns but the text one are optional."""

    text_column: str
    model: str | None = None
    time_column: str | None = None
    group_column: str | None = None
    gold_column: str | None = None
    # A FORMATS name or a strptime pattern; detected from the rows when absent.
    time_format: str | None = None
    # Models that score every row too, for a comparison (their answers are not stored as predictions).
    compare: tuple[str, ...] = ()


class Progress(msgspec.Struct, frozen=True):
    """A data set as its callers see it: the stored record plus the figures derived from it."""

    dataset: Dataset
    status: DatasetStatus
    percent: float | None
    eta_s: float | None


class GroupCounts(msgspec.Struct, frozen=True):
    name: str
    counts: dict[str, int]
    total: int


class Example(msgspec.Struct, frozen=True):
    label: str
    text: str
    confidence: float
    group: str | None = None


class Look(msgspec.Struct, frozen=True):
    """An uploaded data set's first rows, the guessed role of its columns, and the labels of every column that
    reads as gold labels."""

    dataset: Dataset
    preview: list[list[str]]
    guess: ColumnGuess
    gold_columns: dict[str, tuple[str, ...]]


class TrendPoint(msgspec.Struct, frozen=True):
    start: datetime
    counts: dict[str, int]


class DatasetReport(msgspec.Struct, frozen=True):
    progress: Progress
    distribution: dict[str, int]
    trend_width: Literal["hour", "day", "month"] | None
    trend: list[TrendPoint]
    # False when the rows' times span so long that only the buckets holding rows are listed.
    trend_complete: bool
    groups: list[GroupCounts]
    group_count: int
    metrics: dict[str, Metrics]
    # The largest groups' trends over the same buckets as `trend` (none for data sets scored before they were
    # counted, or without a time or group column).
    group_trends: dict[str, list[TrendPoint]] = {}
    group_trend_width: Literal["hour", "day", "month"] | None = None
    # With models compared: every pair's agreement and kappa, and the rows they disagree on most.
    agreements: list[Agreement] = []
    disagreements: list[Disagreement] = []
    # The most confident stored texts of each label, overall and in each of the largest groups.
    examples: list[Example] = []


class Upload:
    """A file being received: written to the data folder as it arrives, never held in memory."""

    def __init__(self, dataset_id: UUID, name: str, path: Path, limit: int, quota: DiskQuota) -> None:
        self.id = dataset_id
        self.name = name
        self.path = path
        self.size = 0
        self._limit = limit
        self._quota = quota
        self._file: IO[bytes] = path.open("wb")
        self._buffer = bytearray()

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._limit:
            raise UploadTooLarge(self._limit)
        self._quota.take(len(data))
        self._buffer += data
        if len(self._buffer) >= 1 << 20:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        await self._on_disk(self._file.write, data)

    async def close(self) -> None:
        await self._flush()
        await self._on_disk(self._file.close)

    async def _on_disk(self, write: Callable[..., object], *args: object) -> None:
        """A write in a thread; a disk that is full is a 507 saying so, not a 500."""
        try:
            await asyncio.to_thread(write, *args)
        except OSError as error:
            if (full := self._quota.full_disk(error)) is not None:
                raise full from error
            raise

    async def discard(self) -> None:
        with suppress(OSError):
            self._file.close()
        await asyncio.to_thread(shutil.rmtree, self.path.parent, True)


def upload_name(filename: str) -> str:
    """The name a data set is shown and exported by: the file name without its folders and without control
    characters (a NUL, a line break), which no database column or header should hold."""
    base = Path(filename.replace("\\", "/")).name
    printable = "".join(character for character in base if unicodedata.category(character)[0] != "C")
    return printable.strip()[:255] or "upload.csv"


def failure_reason(error: BaseException) -> str:
    """Why a job failed, as anyone who can list data sets reads it: one line, never SQL, its parameters (row
    texts) or a server path; the log has the rest."""
    if isinstance(error, SentimentError):
        return first_line(error)
    if isinstance(error, SQLAlchemyError):
        return (
            f"the database failed while storing the rows ({cause_name(error)}); the service's log has the "
            "details"
        )
    if isinstance(error, OSError):
        return f"the data folder could not be read or written ({error.strerror or type(error).__name__})"
    return f"internal error ({type(error).__name__}); the service's log has the details"


def cause_name(error: BaseException) -> str:
    """A database error as its driver names its kind (asyncpg's own class, not SQLAlchemy's adapter of it,
    which is a bare `Error` for most): never its message, which may quote SQL or row values."""
    cause = getattr(error, "orig", None) or error
    return type(cause.__cause__ or cause).__name__


def export_path(folder: Path, dataset_id: UUID) -> Path:
    """Where a data set's scored rows are kept for export, as CSV."""
    return folder / str(dataset_id) / "scored.csv"


class ReadPlan(msgspec.Struct):
    """What a started job reads: the table, the chosen columns' positions and how to read times and labels."""

    table: Table
    text: int
    time: int | None
    group: int | None
    gold: int | None
    time_format: TimeFormat | None
    # Rows the first look read: all of them in a file of up to QUICK_LOOK_ROWS rows.
    rows_seen: int

    def gold_labels(self, inspection: Inspection) -> GoldLabels | None:
        """How the gold column's values read as labels, from all of them (a whole-file count)."""
        if self.gold is None:
            return None
        try:
            return read_gold_values(inspection.gold_values)
        except UnreadableGold as error:
            raise InvalidInput(f"gold column {self.table.columns[self.gold]!r}: {error}") from None


def plan_reading(table: Table, options: DatasetOptions) -> ReadPlan:
    """The columns' positions, the time format (given or detected) and the gold column, checked on a first
    look at the rows."""
    text = table.index(options.text_column, "text")
    time_i = table.index(options.time_column, "time") if options.time_column else None
    group = table.index(options.group_column, "group") if options.group_column else None
    gold = table.index(options.gold_column, "gold-label") if options.gold_column else None
    look = inspect_rows(table, time_i, gold, limit=QUICK_LOOK_ROWS)
    if look.rows == 0:
        raise TableError("the file has a header but no rows")
    time_format = None
    if time_i is not None:
        if options.time_format:
            time_format = format_named(options.time_format)
            if time_format is None:
                raise InvalidInput(
                    f"time format {options.time_format!r} is neither a known format nor a "
                    "strptime pattern such as %d-%m-%Y %H:%M"
                )
        else:
            try:
                time_format = detect_format(look.time_sample)
            except NoTimeFormat as error:
                raise InvalidInput(f"time column {options.time_column!r}: {error}") from None
    # Numeric codings are read from the whole column's values (the job counts them); a first look at words
    # already tells a column of labels from one that is not.
    if gold is not None and not all(value.lstrip("-").isdigit() for value in look.gold_values):
        try:
            read_gold_values(look.gold_values)
        except UnreadableGold as error:
            raise InvalidInput(f"gold column {options.gold_column!r}: {error}") from None
    return ReadPlan(table, text, time_i, group, gold, time_format, look.rows)


def stored_options(dataset: Dataset) -> DatasetOptions:
    """The options a job was started with, as its data set recorded them (the time format by its name)."""
    return DatasetOptions(
        text_column=dataset.text_column or "",
        model=dataset.model,
        time_column=dataset.time_column,
        group_column=dataset.group_column,
        gold_column=dataset.gold_column,
        time_format=dataset.time_format,
    )


class JobRun(NamedTuple):
    """One run of a data set's job: its start, or a resume after its process stopped (`resumed`: the data set
    as the run took it over). The data set is the run's while its stored run id is `run`."""

    dataset_id: UUID
    run: UUID
    resumed: Dataset | None = None


class Running(NamedTuple):
    run: UUID
    task: asyncio.Task[None]


def expired_uploads(datasets: Iterable[Dataset], now: datetime, max_age: timedelta) -> list[UUID]:
    """The uploads nobody started that are older than `max_age` at `now`."""
    return [d.id for d in datasets if d.status == "uploaded" and now - d.created_at > max_age]


class DatasetService:
    def __init__(
        self,
        engine: AsyncEngine,
        registry: ModelRegistry,
        settings: DatasetSettings,
        store_text: bool,
        clock: WallClock = utc_now,
        max_text_length: int | None = None,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._settings = settings
        self._store_text = store_text
        # The API's limit on a text holds for rows too: a row past it is reported, not scored.
        self._max_text_length = max_text_length
        self._clock = clock
        self._folder = Path(settings.data_dir)
        self._quota = DiskQuota(self._folder, int(settings.quota_mb * MB), int(settings.min_free_mb * MB))
        self._jobs: dict[UUID, Running] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    def offered(self) -> OfferedModels:
        return offered_models(self._registry)

    def model_labels(self) -> dict[str, tuple[str, ...]]:
        return {entry.key: tuple(entry.labels) for entry in self._registry.serving()}

    async def look(self, dataset_id: UUID) -> Look | None:
        """The first rows of an uploaded data set and what its columns look like: for the column picker."""
        dataset = await self._get(dataset_id)
        if dataset is None:
            return None

        def read() -> list[list[str]]:
            table = open_table(self._source(dataset.id, dataset.name))
            chunk = next(read_chunks(table, 0, LOOK_ROWS), None)
            return [list(row.values) for row in chunk.rows] if chunk else []

        rows = await asyncio.to_thread(read)
        columns = dataset.columns
        gold = {
            column: found
            for index, column in enumerate(columns)
            if (found := gold_labels([row[index] for row in rows if index < len(row) and row[index].strip()]))
        }
        return Look(dataset, rows[:PREVIEW_ROWS], guess_columns(columns, rows), gold)

    # -- files --------------------------------------------------------------------------------------------

    def _source(self, dataset_id: UUID, name: str) -> Path:
        suffix = ".tsv" if Path(name).suffix.lower() in {".tsv", ".tab"} else ".csv"
        return self._folder / str(dataset_id) / f"source{suffix}"

    async def training_source(self, dataset_id: UUID) -> DatasetSource | None:
        """The file and columns a model is fine-tuned on: the data set's text and gold columns."""
        dataset = await self._get(dataset_id)
        if dataset is None:
            return None
        if not dataset.text_column or not dataset.gold_column:
            raise InvalidInput(
                f"data set {dataset.name} has no gold column: choose one when starting it, to train a model "
                "on its labels"
            )
        return DatasetSource(
            str(self._source(dataset.id, dataset.name)),
            dataset.name,
            dataset.text_column,
            dataset.gold_column,
        )

    def export_file(self, dataset_id: UUID) -> Path:
        return export_path(self._folder, dataset_id)

    # -- upload and start ---------------------------------------------------------------------------------

    async def receive(self, filename: str) -> Upload:
        """Open the file an upload is streamed into, unless the folder is full; `create` (or
        `Upload.discard`) ends it."""
        await self._quota.measure()
        self._quota.check()
        dataset_id = new_id()
        name = upload_name(filename)
        path = self._source(dataset_id, name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return Upload(dataset_id, name, path, self._settings.max_upload_bytes, self._quota)
        except OSError as error:
            raise SentimentError(
                f"the data folder {self._folder} cannot be written ({error.strerror}): set "
                "SENTIMENT_DATA_DIR to a writable folder"
            ) from None

    async def create(self, upload: Upload) -> Dataset:
        """Keep the received file as a data set once its header reads as a table."""
        try:
            await upload.close()
            table = await asyncio.to_thread(open_table, upload.path)
        except BaseException:
            await upload.discard()
            raise
        dataset = Dataset(
            id=upload.id,
            name=upload.name,
            status="uploaded",
            created_at=self._clock(),
            size_bytes=upload.size,
            columns=table.columns,
        )
        async with self._engine.begin() as connection:
            await DatasetRepository(connection).add(dataset)
        log.info("dataset_uploaded", dataset=str(dataset.id), bytes=upload.size, columns=len(table.columns))
        return dataset

    async def submit(
        self, upload: Upload, options: DatasetOptions, charge: RowsCharge | None = None
    ) -> Progress:
        """Keep the file and start scoring it in one step (the API); a refused start leaves nothing behind."""
        dataset = await self.create(upload)
        try:
            progress = await self.start(dataset.id, options, charge)
        except BaseException:
            await self.forget(dataset.id)
            raise
        assert progress is not None  # created just above
        return progress

    async def start(
        self, dataset_id: UUID, options: DatasetOptions, charge: RowsCharge | None = None
    ) -> Progress | None:
        """Check the columns and the model on a first look at the rows, and that the folder has room for the
        scored file, then score in the background. `charge` is told the rows seen so far, then the count."""
        dataset = await self._get(dataset_id)
        if dataset is None:
            return None
        if dataset.status != "uploaded":
            raise Conflict(
                f"data set {dataset_id} is already {dataset.status}; upload the file again to rescore it"
            )
        entry = self._registry.select(options.model)
        others = self._compared_with(entry, options.compare)
        await self._quota.measure()
        self._quota.check()
        table_path = self._source(dataset.id, dataset.name)
        plan = await asyncio.to_thread(lambda: plan_reading(open_table(table_path), options))
        job = JobRun(dataset_id, new_id())
        values = {
            "status": "queued",
            "run_id": job.run,
            "model": entry.key,
            "compare_models": [other.key for other in others] or None,
            "text_column": options.text_column,
            "time_column": options.time_column or None,
            "group_column": options.group_column or None,
            "gold_column": options.gold_column or None,
            "time_format": plan.time_format.name if plan.time_format else None,
            "heartbeat_at": self._clock(),
        }
        async with self._engine.begin() as connection:
            if not await DatasetRepository(connection).claim(dataset_id, **values):
                raise Conflict(f"data set {dataset_id} was started by another request")
        if charge is not None:
            charge(plan.rows_seen)
        self._launch(job, plan, entry, others, charge)
        log.info("dataset_started", dataset=str(dataset_id), model=entry.key, compare=[o.key for o in others])
        return await self.progress(dataset_id)

    def _compared_with(self, entry: ModelEntry, keys: Sequence[str]) -> list[ModelEntry]:
        """The models to compare with `entry`: each named once, not `entry` itself, each one that could
        score now (an unknown key is refused as for the main model)."""
        others = [self._registry.select(key) for key in dict.fromkeys(keys) if key and key != entry.key]
        if len(others) > MAX_COMPARED:
            raise InvalidInput(f"compare at most {MAX_COMPARED} models with the one that scores the rows")
        return others

    def _launch(
        self,
        job: JobRun,
        plan: ReadPlan,
        entry: ModelEntry,
        others: Sequence[ModelEntry],
        charge: RowsCharge | None,
    ) -> None:
        task = asyncio.create_task(
            self._run(job, plan, entry, others, charge), name=f"dataset-{job.dataset_id}"
        )
        self._jobs[job.dataset_id] = Running(job.run, task)
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="dataset-heartbeat")

    async def resume_stopped(self) -> list[UUID]:
        """Take over and resume the jobs that stopped before they were done (a clean shutdown marked them
        interrupted, or their heartbeat is stale: their process is gone); the ones this service took (another
        replica may take some first)."""
        stale_before = self._clock() - timedelta(seconds=STALE_AFTER_S)
        async with self._engine.connect() as connection:
            stopped = await DatasetRepository(connection).stopped_jobs(stale_before)
        resumed = []
        for candidate in stopped:
            if candidate.id in self._jobs:
                continue  # its heartbeat is late (the database was away), but it runs here
            run = new_id()
            async with self._engine.begin() as connection:
                repository = DatasetRepository(connection)
                values = {"status": "queued", "run_id": run, "heartbeat_at": self._clock(), "error": None}
                # Read back as taken over: what the last chunk stored is what this run goes on from.
                taken = await repository.take_over(candidate.id, stale_before, **values)
                dataset = await repository.get(candidate.id) if taken else None
            if dataset is not None:
                log.info("dataset_resuming", dataset=str(dataset.id), after_rows=dataset.rows_done)
                await self._resume(dataset, run)
                resumed.append(dataset.id)
        return resumed

    async def _resume(self, dataset: Dataset, run: UUID) -> None:
        """Start the run that took over `dataset`, with the options and the model it recorded; one that cannot
        go on here (its model unknown, its file gone) fails saying why."""
        job = JobRun(dataset.id, run, dataset)
        try:
            if dataset.model is None:
                raise SentimentError("the data set records no model to resume with")
            try:
                entry = self._registry.entry(dataset.model)
                others = [self._registry.entry(key) for key in dataset.compare_models or []]
            except UnknownModel as error:
                raise SentimentError(f"the job cannot resume: {first_line(error)}") from None
            path = self._source(dataset.id, dataset.name)
            plan = await asyncio.to_thread(lambda: plan_reading(open_table(path), stored_options(dataset)))
            await self._quota.measure()
        except (SentimentError, OSError) as error:
            log.warning("dataset_failed", dataset=str(dataset.id), error=first_line(error))
            await self._fail(job, error)
            return
        self._launch(job, plan, entry, others, None)

    async def resume_forever(self) -> None:
        """At start and every RESUME_SWEEP_S, resume the jobs that stopped (on a replica that died, too); a
        database error waits for the next round."""
        while True:
            try:
                await self.resume_stopped()
            except (SQLAlchemyError, OSError) as error:
                log.warning("dataset_resume_failed", error=first_line(error))
            await asyncio.sleep(RESUME_SWEEP_S)

    async def forget(self, dataset_id: UUID) -> bool:
        """Delete a data set that was never started (an upload whose columns were refused, or that expired);
        False, and its files left alone, when somebody started it meanwhile."""
        async with self._engine.begin() as connection:
            if not await DatasetRepository(connection).delete_unstarted(dataset_id):
                return False
        await asyncio.to_thread(shutil.rmtree, self._folder / str(dataset_id), True)
        return True

    async def expire_uploads(self) -> int:
        """Delete the uploads nobody started within SENTIMENT_UPLOAD_EXPIRY_HOURS; how many were deleted."""
        async with self._engine.connect() as connection:
            uploads = await DatasetRepository(connection).unstarted()
        max_age = timedelta(hours=self._settings.upload_expiry_hours)
        deleted = [d for d in expired_uploads(uploads, self._clock(), max_age) if await self.forget(d)]
        if deleted:
            log.info(
                "uploads_expired", count=len(deleted), older_than_hours=self._settings.upload_expiry_hours
            )
        return len(deleted)

    async def expire_forever(self) -> None:
        """Every few minutes, delete the expired uploads; a database error waits for the next round."""
        while True:
            try:
                await self.expire_uploads()
            except (SQLAlchemyError, OSError) as error:
                log.warning("upload_expiry_failed", error=first_line(error))
            await asyncio.sleep(EXPIRY_SWEEP_S)

    async def cancel(self, dataset_id: UUID) -> Progress | None:
        """Stop a running job: its status becomes cancelled, its progress stays for the record and its partial
        export is removed. Conflict when no job is at work on the data set."""
        progress = await self.progress(dataset_id)
        if progress is None:
            return None
        if progress.status not in RUNNING or not await self._stop(dataset_id):
            raise Conflict(
                f"data set {dataset_id} is {progress.status}, not being scored: there is no job to cancel"
            )
        log.info("dataset_cancelled", dataset=str(dataset_id))
        return await self.progress(dataset_id)

    async def delete(self, dataset_id: UUID) -> bool:
        """Delete a data set with its files and everything stored of it (predictions, their rollups, its
        counts), cancelling its job first; False when there is no such data set."""
        dataset = await self._get(dataset_id)
        if dataset is None:
            return False
        if dataset.status in RUNNING:
            await self._stop(dataset_id)
        async with self._engine.begin() as connection:
            deleted = await DatasetRepository(connection).delete(dataset_id)
        await asyncio.to_thread(shutil.rmtree, self._folder / str(dataset_id), True)
        log.info("dataset_deleted", dataset=str(dataset_id), status=dataset.status)
        return deleted

    async def _stop(self, dataset_id: UUID) -> bool:
        """Mark the data set cancelled, then stop its job: here at once, on another replica at its next write
        or heartbeat (each finds the data set no longer running). False when it was not running."""
        async with self._engine.begin() as connection:
            stopped = await DatasetRepository(connection).update_running(
                dataset_id, status="cancelled", finished_at=self._clock()
            )
        running = self._jobs.get(dataset_id)
        if running is not None:
            await cancel_and_wait(running.task)
        self._remove_partial_exports(dataset_id)
        return stopped

    # -- reading ------------------------------------------------------------------------------------------

    async def _get(self, dataset_id: UUID) -> Dataset | None:
        async with self._engine.connect() as connection:
            return await DatasetRepository(connection).get(dataset_id)

    def _progress(self, dataset: Dataset) -> Progress:
        status = dataset.status
        if status in RUNNING and dataset.id not in self._jobs:
            beat = dataset.heartbeat_at or dataset.created_at
            if (self._clock() - beat).total_seconds() > STALE_AFTER_S:
                status = "interrupted"  # its process ended without saying so; nobody is scoring it yet
                if dataset.run_id is not None:  # a job of the service's own, not an import
                    dataset = msgspec.structs.replace(dataset, error=INTERRUPTED)
        percent = eta = None
        if dataset.rows_total:
            percent = round(100 * dataset.rows_done / dataset.rows_total, 1)
            if dataset.rate and status in RUNNING:
                eta = round((dataset.rows_total - dataset.rows_done) / dataset.rate, 1)
        return Progress(dataset, status, percent, eta)

    async def progress(self, dataset_id: UUID) -> Progress | None:
        dataset = await self._get(dataset_id)
        return self._progress(dataset) if dataset else None

    async def recent(self, limit: int = 20) -> list[Progress]:
        async with self._engine.connect() as connection:
            return [self._progress(d) for d in await DatasetRepository(connection).recent(limit)]

    async def page(self, page: int, page_size: int) -> tuple[list[Progress], int]:
        """Page `page` (from 1; past the end, the last) of the data sets, newest first, and their number."""
        async with self._engine.connect() as connection:
            repository = DatasetRepository(connection)
            total = await repository.count()
            page = min(max(1, page), max(1, -(-total // page_size)))
            found = await repository.recent(page_size, (page - 1) * page_size)
        return [self._progress(d) for d in found], total

    async def report(self, dataset_id: UUID) -> DatasetReport | None:
        async with self._engine.connect() as connection:
            repository = DatasetRepository(connection)
            dataset = await repository.get(dataset_id)
            if dataset is None:
                return None
            distribution = await repository.label_counts(dataset_id)
            span = await repository.time_span(dataset_id)
            width, trend, every_bucket = None, [], True
            if span is not None:
                width = trend_width(*span)
                counts: dict[datetime, dict[str, int]] = {}
                for key, sentiment, count in await repository.time_counts(dataset_id, width):
                    counts.setdefault(key_start(key), {})[sentiment] = count
                starts, every_bucket = trend_starts(key_start(span[0]), key_start(span[1]), width, counts)
                trend = [
                    TrendPoint(start, {label: counts.get(start, {}).get(label, 0) for label in LABELS})
                    for start in starts
                ]
            top, group_count = await repository.group_counts(dataset_id, TOP_GROUPS)
            # Read once the job is done: a running job's report is polled every second, and the examples scan
            # the data set's rows.
            examples = (
                []
                if dataset.status in RUNNING
                else [
                    Example(label, text, confidence, group)
                    for group, label, text, confidence in await repository.examples(
                        dataset_id, EXAMPLES_PER_LABEL, [name for name, _ in top[:GROUP_TRENDS]], 1
                    )
                ]
            )
            group_trends: dict[str, list[TrendPoint]] = {}
            group_width = None
            if span is not None and width is not None and top:
                group_width = panel_width(*span, width)
                per_group: dict[str, dict[datetime, dict[str, int]]] = {}
                shown = [name for name, _ in top[:GROUP_TRENDS]]
                counted = await repository.group_time_counts(dataset_id, shown, group_width)
                for name, key, sentiment, count in counted:
                    per_group.setdefault(name, {}).setdefault(key_start(key), {})[sentiment] = count
                filled = {start for buckets in per_group.values() for start in buckets}
                panel_starts, _ = trend_starts(key_start(span[0]), key_start(span[1]), group_width, filled)
                group_trends = {
                    name or "(none)": [
                        TrendPoint(start, {label: buckets.get(start, {}).get(label, 0) for label in LABELS})
                        for start in panel_starts
                    ]
                    for name in shown
                    if (buckets := per_group.get(name))
                }
        groups = [
            GroupCounts(
                name or "(none)", {label: counts.get(label, 0) for label in LABELS}, sum(counts.values())
            )
            for name, counts in top
        ]
        # No gold rows, no figures (rather than an accuracy of 0): no gold column, or no usable gold label.
        figures = {
            model: metrics(confusion)
            for model, confusion in dataset.confusion.items()
            if any(map(any, confusion))
        }
        return DatasetReport(
            progress=self._progress(dataset),
            distribution={label: distribution.get(label, 0) for label in LABELS},
            trend_width=width,
            trend=trend,
            trend_complete=every_bucket,
            groups=groups,
            group_count=group_count,
            metrics=figures,
            group_trends=group_trends,
            group_trend_width=group_width,
            agreements=agreements(dataset.agreement or {}),
            disagreements=msgspec.convert(dataset.disagreements or [], list[Disagreement]),
            examples=examples,
        )

    async def export(self, dataset_id: UUID) -> tuple[Dataset, Path] | None:
        dataset = await self._get(dataset_id)
        if dataset is None:
            return None
        path = self.export_file(dataset_id)
        if dataset.status != "done":
            raise Conflict(
                f"data set {dataset_id} is {self._progress(dataset).status}; its scored CSV is ready once "
                "scoring is done"
            )
        if not path.is_file():
            raise Conflict(
                f"the scored CSV of data set {dataset_id} is not in {self._folder}: with several "
                "replicas, SENTIMENT_DATA_DIR must be a folder they share"
            )
        return dataset, path

    # -- the job ------------------------------------------------------------------------------------------

    async def _run(
        self,
        job: JobRun,
        plan: ReadPlan,
        entry: ModelEntry,
        others: Sequence[ModelEntry],
        charge: RowsCharge | None,
    ) -> None:
        try:
            # A resumed run keeps when the job first started.
            started = {} if job.resumed else {"started_at": self._clock()}
            await self._save(job, status="counting", **started)
            inspection = await asyncio.to_thread(inspect_rows, plan.table, plan.time, plan.gold)
            if charge is not None:
                charge(inspection.rows)
            gold = plan.gold_labels(inspection)
            for model in (entry, *others):
                await self._wait_loaded(model)
            await self._save(job, status="scoring", rows_total=inspection.rows, model_details=entry.details)
            await self._score(job, plan, entry, others, gold)
        except asyncio.CancelledError:
            # The export stays: the run that resumes the job goes on from what the last chunk stored says.
            with suppress(Exception):
                await asyncio.shield(self._save(job, status="interrupted", error=INTERRUPTED))
            raise
        except DatasetStopped:
            log.info("dataset_job_stopped", dataset=str(job.dataset_id))
        except (SentimentError, OSError, SQLAlchemyError) as error:
            log.warning("dataset_failed", dataset=str(job.dataset_id), error=first_line(error))
            await self._fail(job, error)
        except Exception as error:
            log.exception("dataset_failed", dataset=str(job.dataset_id))
            await self._fail(job, error)
        finally:
            self._jobs.pop(job.dataset_id, None)

    async def _fail(self, job: JobRun, error: BaseException) -> None:
        """Record why the job failed and remove its partial export; both left alone when the data set is no
        longer this run's (cancelled, deleted, or resumed by another run that writes that export now)."""
        with suppress(Exception):
            await self._save(job, status="failed", error=failure_reason(error), finished_at=self._clock())
            self._remove_partial_exports(job.dataset_id)

    async def _wait_loaded(self, entry: ModelEntry) -> None:
        def settled() -> bool:
            return entry.loaded or (entry.error is not None and not entry.loading)

        if not await poll_until(settled, MODEL_LOAD_WAIT_S, every_s=0.2):
            raise ScoringFailed(f"model {entry.key} is still {entry.status} after {MODEL_LOAD_WAIT_S:g} s")
        if not entry.loaded:
            raise ScoringFailed(f"model {entry.key} failed to load: {entry.error}")

    def _partial_export(self, dataset_id: UUID, run: UUID) -> Path:
        """Where a run writes the export (each run a file of its own: see services/partial_export.py)."""
        return self.export_file(dataset_id).with_name(f"scored.{run}.part")

    def _remove_partial_exports(self, dataset_id: UUID) -> None:
        for path in self.export_file(dataset_id).parent.glob("scored.*.part"):
            with suppress(OSError):
                path.unlink(missing_ok=True)

    async def _score(
        self,
        job: JobRun,
        plan: ReadPlan,
        entry: ModelEntry,
        others: Sequence[ModelEntry],
        gold: GoldLabels | None,
    ) -> None:
        scorer = ChunkScorer(entry)
        # The models compared score every row too (not stored as predictions); with gold labels VADER always
        # does, for its metrics side by side.
        comparers = {other.key: ChunkScorer(other) for other in others}
        if gold is not None and entry.key != VADER_KEY:
            comparers.setdefault(VADER_KEY, ChunkScorer(self._registry.vader))
        compared = [] if gold is None else [entry.key, *comparers]
        stored = job.resumed
        state = JobTally.resumed(stored) if stored else JobTally()
        confusion = confusion_from(stored.confusion if stored else {}, compared)
        point = resume_point(stored.rows_done, stored.export_bytes, stored.export_run) if stored else FRESH
        export = await asyncio.to_thread(self._open_export, job, plan, entry, point)
        written = 0  # what the export holds is counted against the quota with its first chunk
        chunk_rows = self._settings.chunk_rows
        chunks: Iterator[Chunk] = read_chunks(
            plan.table, plan.text, chunk_rows, skip=point.rows, max_length=self._max_text_length
        )
        started = time.perf_counter()

        async def store(batch: ScoredChunk) -> tuple[JobTally, dict[str, Confusion]]:
            """Append the chunk's rows to the export, count the chunk on a copy of the tallies and store it
            with the export's size; the copy is kept once the chunk is stored. A chunk refused for its
            content is taken back from the export, to be counted and exported again without the rows
            refused."""
            tally, matrices = copy.deepcopy((state, confusion))
            counts = tally.count(plan, batch.chunk, batch.scored, batch.others, gold, matrices, entry.key)
            tally.refused += batch.refused
            tally.rows_done += batch.chunk.consumed
            tally.rate = (tally.rows_done - point.rows) / max(time.perf_counter() - started, 1e-6)
            before = export.size
            size = await asyncio.to_thread(export.append, batch.chunk.rows, batch.scored)
            progress = tally.progress(matrices, self._clock()) | {"export_run": job.run, "export_bytes": size}
            try:
                await to_the_end(
                    store_chunk(
                        self._engine,
                        job.dataset_id,
                        batch.predictions,
                        counts,
                        progress,
                        self._store_text,
                        job.run,
                    )
                )
            except RowsRefused:
                await asyncio.to_thread(export.cut, before)
                raise
            return tally, matrices

        try:
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                scored: list[Scored] = []
                answers: dict[str, list[Scored]] = {}
                per_text_ms = 0.0
                if chunk.rows:
                    texts = [row.values[plan.text] for row in chunk.rows]
                    chunk_started = time.perf_counter()
                    scored = await scorer.score(texts)
                    per_text_ms = (time.perf_counter() - chunk_started) * 1000 / len(texts)
                    answers = {key: await other.score(texts) for key, other in comparers.items()}
                predictions = chunk_predictions(
                    plan, chunk.rows, scored, entry.key, job.dataset_id, self._clock(), per_text_ms
                )
                batch = ScoredChunk(chunk, scored, answers, predictions)
                try:
                    state, confusion = await store(batch)
                except RowsRefused:
                    refused = await self._refused(job.dataset_id, predictions)
                    if not refused:
                        raise  # its counts or progress were refused, not a row: there is nothing to leave out
                    log.warning("dataset_rows_left_out", dataset=str(job.dataset_id), rows=len(refused))
                    batch = batch.without(refused)
                    state, confusion = await store(batch)
                self._quota.take(export.size - written)
                written = export.size
        finally:
            export.close()
        self._partial_export(job.dataset_id, job.run).replace(self.export_file(job.dataset_id))
        self._remove_partial_exports(job.dataset_id)  # the earlier runs' files
        notes = state.notes(plan, gold, entry.key, entry.labels, confusion)
        if stored:
            notes.append(resumed_note(stored.resumes))
        await self._save(job, status="done", finished_at=self._clock(), notes=notes, rate=state.rate)
        log.info(
            "dataset_scored",
            dataset=str(job.dataset_id),
            rows=state.rows_scored,
            skipped=state.rows_skipped,
            refused=state.refused,
            resumed_after=point.rows,
            rate=round(state.rate, 1),
        )

    def _open_export(
        self, job: JobRun, plan: ReadPlan, entry: ModelEntry, point: ResumePoint
    ) -> PartialExport:
        """The run's export, going on from the earlier run's at `point`. A job that stopped between renaming
        its finished export and recording that it is done finds that under its final name."""
        kept = None
        if point.export_run is not None and point.export_bytes is not None:
            earlier = self._partial_export(job.dataset_id, point.export_run)
            if not earlier.exists():
                earlier = self.export_file(job.dataset_id)
            kept = (earlier, point.export_bytes)
        path = self._partial_export(job.dataset_id, job.run)
        return PartialExport(path, plan.table.columns, entry.labels or LABELS, kept)

    async def _refused(self, dataset_id: UUID, predictions: Sequence[Prediction]) -> dict[int, str]:
        """The positions of the predictions the database refuses on their own for their content, each with the
        reason its row is listed with; an outage on the way is waited out as for any other write."""

        async def find() -> dict[int, WriteError]:
            async with self._engine.connect() as connection:
                return await refused_predictions(connection, predictions, self._store_text)

        refused = await to_the_end(patiently(find, dataset_id))
        return {
            position: f"the database refused to store the row ({cause_name(error)}): scored, but not stored, "
            "counted or exported"
            for position, error in refused.items()
        }

    async def _save(self, job: JobRun, **values: object) -> None:
        if not await to_the_end(self._update_running(job.dataset_id, job.run, **values)):
            raise DatasetStopped(job.dataset_id)

    async def _update_running(self, dataset_id: UUID, run: UUID, **values: object) -> bool:
        async with self._engine.begin() as connection:
            return await DatasetRepository(connection).update_running(
                dataset_id, run, heartbeat_at=self._clock(), **values
            )

    async def _beat(self) -> None:
        """Keep the heartbeat of this process's jobs fresh, also through long steps (counting a huge file),
        and stop those whose data set was cancelled, deleted or taken over on another replica."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            for dataset_id, running in list(self._jobs.items()):
                with suppress(SQLAlchemyError, OSError):
                    if not await to_the_end(self._update_running(dataset_id, running.run)):
                        running.task.cancel()

    async def close(self) -> None:
        """Stop every job (each records that it was interrupted, to be resumed at the next start)."""
        await cancel_and_wait(*(running.task for running in self._jobs.values()))
        if self._heartbeat is not None:
            await cancel_and_wait(self._heartbeat)
            self._heartbeat = None


class ScoredChunk(NamedTuple):
    """A chunk with what came of its rows, in their order: the model's answers, each compared model's, and
    the predictions to store; `refused`: rows the database refused, moved to the problems."""

    chunk: Chunk
    scored: list[Scored]
    others: dict[str, list[Scored]]
    predictions: list[Prediction]
    refused: int = 0

    def without(self, refused: Mapping[int, str]) -> ScoredChunk:
        """The chunk with the rows at the positions in `refused` moved to its problems, with their reasons."""
        rows = self.chunk.rows
        kept = [position for position in range(len(rows)) if position not in refused]
        problems = [*self.chunk.problems, *(Problem(rows[i].line, reason) for i, reason in refused.items())]
        return ScoredChunk(
            Chunk([rows[i] for i in kept], sorted(problems)),
            [self.scored[i] for i in kept],
            {key: [answers[i] for i in kept] for key, answers in self.others.items()},
            [self.predictions[i] for i in kept],
            self.refused + len(refused),
        )


def group_key(value: str) -> str:
    """A row's group as it is stored and counted: trimmed, cut to the column's length, a NUL kept as U+FFFD
    (Postgres cannot hold one, and the same row would be refused on every try)."""
    return storable_text(value.strip()[:GROUP_LENGTH])


def chunk_predictions(
    plan: ReadPlan,
    rows: Sequence[Row],
    scored: Sequence[Scored],
    model: str,
    dataset_id: UUID,
    now: datetime,
    per_text_ms: float,
) -> list[Prediction]:
    """A chunk's scored rows as the predictions stored for its data set."""
    return [
        Prediction(
            id=new_id(),
            text=row.values[plan.text],
            sentiment=result.label,
            confidence=result.confidence,
            scores=result.scores,
            model_requested=model,
            model_used=model,
            fallback_used=False,
            processing_time_ms=per_text_ms,
            timestamp=now,
            dataset_id=dataset_id,
            group=(group_key(row.values[plan.group]) or None) if plan.group is not None else None,
        )
        for row, result in zip(rows, scored, strict=True)
    ]


async def store_chunk(
    engine: AsyncEngine,
    dataset_id: UUID,
    predictions: list[Prediction],
    counts: Counter[CountKey],
    progress: dict[str, object],
    store_text: bool,
    run: UUID | None = None,
) -> None:
    """One transaction per chunk: its predictions, its counts and the progress agree whatever happens (a job
    resumed after a crash starts after the last chunk stored). With `run`, only while that run holds the data
    set. RowsRefused when the database refuses the chunk for its content: nothing of it is stored."""

    async def write() -> None:
        async with engine.begin() as connection:
            if predictions:
                await PredictionRepository(connection).add_many(predictions, store_text)
            repository = DatasetRepository(connection)
            await repository.add_counts(dataset_id, counts)
            # Raising rolls the chunk back: a cancelled, deleted or taken-over data set gets no more rows.
            if not await repository.update_running(dataset_id, run, **progress):
                raise DatasetStopped(dataset_id)

    await patiently(write, dataset_id)


async def patiently(call: Callable[[], Awaitable[T]], dataset_id: UUID) -> T:
    """A job's database step, tried again while the database is unreachable, restarting or behind its schema
    (OUTAGE_BACKOFF, for DATABASE_PATIENCE_S). Rows refused for their content raise RowsRefused at once: the
    same rows would be refused on every try."""

    async def attempt() -> T:
        try:
            return await call()
        except (SQLAlchemyError, OSError) as error:
            if refused_for_content(error):
                log.warning("dataset_rows_refused", dataset=str(dataset_id), error=first_line(error))
                raise RowsRefused(error) from error
            raise

    def failed(error: BaseException, _failures: int) -> None:
        log.warning("dataset_write_failed", dataset=str(dataset_id), error=first_line(error))

    return await retry(
        attempt,
        retry_on=(SQLAlchemyError, OSError),
        backoff=OUTAGE_BACKOFF,
        give_up_after_s=DATABASE_PATIENCE_S,
        on_failure=failed,
    )


def pair_key(first: str, second: str) -> str:
    return f"{first}|{second}"


def agreements(tables: Mapping[str, list[list[int]]]) -> list[Agreement]:
    """Each stored pair's agreement and kappa (pairs that count no row left out)."""
    found = []
    for pair, table in tables.items():
        first, _, second = pair.partition("|")
        if (figures := agreement(first, second, table)) is not None:
            found.append(figures)
    return found


def confusion_from(stored: Mapping[str, list[list[int]]], models: Iterable[str]) -> dict[str, Confusion]:
    """The confusion matrices a job keeps for `models`, going on from those stored (a new one for a model
    with none stored)."""
    return {
        model: Confusion([list(row) for row in stored[model]]) if model in stored else Confusion()
        for model in models
    }


def resumed_note(resumes: int) -> str:
    times = "once" if resumes == 1 else f"{resumes:,} times"
    return (
        f"Scoring stopped with its process and was resumed {times}, each time after the last chunk stored: "
        "every row was scored, stored and exported once."
    )


class JobTally:
    """A running job's tallies: rows, problems (the first
    ones kept, all counted), rows left out of figures."""

    def __init__(self) -> None:
        self.rows_done = 0
        self.rows_scored = 0
        self.rows_skipped = 0
        # Of the rows skipped, those scored but refused by the database for their content.
        self.refused = 0
        self.rate = 0.0
        self.problems: list[list[int | str]] = []
        self.problem_count = 0
        self.untimed = 0
        self.no_gold = 0
        # Per pair of models 'a|b', the (a's label, b's label) counts; the rows read most differently.
        self.agreement: dict[str, Confusion] = {}
        self.disagreements: list[Disagreement] = []

    def progress(self, confusion: dict[str, Confusion], now: datetime) -> dict[str, object]:
        """The tallies as the data set's stored progress."""
        return {
            "rows_done": self.rows_done,
            "rows_scored": self.rows_scored,
            "rows_skipped": self.rows_skipped,
            "problems": self.problems,
            "problem_count": self.problem_count,
            "rate": self.rate,
            "confusion": {model: matrix.counts for model, matrix in confusion.items()},
            "tally": {"refused": self.refused, "untimed": self.untimed, "no_gold": self.no_gold},
            "agreement": {pair: table.counts for pair, table in self.agreement.items()} or None,
            "disagreements": msgspec.to_builtins(self.disagreements) or None,
            "heartbeat_at": now,
        }

    @classmethod
    def resumed(cls, dataset: Dataset) -> JobTally:
        """The tallies as the data set's last stored chunk left them (`progress` stored them), to go on
        counting from."""
        tally = cls()
        tally.rows_done = dataset.rows_done
        tally.rows_scored = dataset.rows_scored
        tally.rows_skipped = dataset.rows_skipped
        tally.rate = dataset.rate or 0.0
        tally.problems = [list(problem) for problem in dataset.problems]
        tally.problem_count = dataset.problem_count
        stored = dataset.tally or {}
        tally.refused = stored.get("refused", 0)
        tally.untimed = stored.get("untimed", 0)
        tally.no_gold = stored.get("no_gold", 0)
        tally.agreement = confusion_from(dataset.agreement or {}, dataset.agreement or {})
        tally.disagreements = msgspec.convert(dataset.disagreements or [], list[Disagreement])
        return tally

    def problem(self, line: int, reason: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append([line, reason])

    def count(
        self,
        plan: ReadPlan,
        chunk: Chunk,
        scored: list[Scored],
        others: Mapping[str, list[Scored]],
        gold: GoldLabels | None,
        confusion: dict[str, Confusion],
        model: str,
    ) -> Counter[CountKey]:
        """The chunk's counts by label, time and group, its gold pairs, and how the models compared agree;
        its problems recorded in line order."""
        problems: list[Problem] = list(chunk.problems)
        self.rows_skipped += len(chunk.problems)
        self.rows_scored += len(chunk.rows)
        counts: Counter[CountKey] = Counter()
        for index, (row, result) in enumerate(zip(chunk.rows, scored, strict=True)):
            label = result.label
            counts["label", "", label] += 1
            hour = None
            if plan.time is not None and plan.time_format is not None:
                value = row.values[plan.time]
                try:
                    hour = hour_key(plan.time_format.parse(value))
                    counts["time", hour, label] += 1
                except (ValueError, OverflowError):
                    self.untimed += 1
                    shown = value.strip()[:40]
                    problems.append(
                        Problem(
                            row.line,
                            f"time {shown!r} is not {plan.time_format.name}: scored, "
                            "but left out of the time trend"
                            if shown
                            else "no time: scored, but left out of the time trend",
                        )
                    )
            if plan.group is not None:
                group = group_key(row.values[plan.group])
                counts["group", group, label] += 1
                if hour is not None:
                    counts["gtime", f"{hour}{GROUP_TIME_SEPARATOR}{group}", label] += 1
            if gold is not None and plan.gold is not None:
                truth = gold.label(row.values[plan.gold])
                if truth is None:
                    self.no_gold += 1
                    continue
                confusion[model].add(truth, label)
                for other, answers in others.items():
                    confusion[other].add(truth, answers[index].label)
        for problem in sorted(problems):
            self.problem(problem.line, problem.reason)
        if others:
            self._compare(plan, chunk, {model: scored, **others})
        return counts

    def _compare(self, plan: ReadPlan, chunk: Chunk, answers: Mapping[str, Sequence[Scored]]) -> None:
        """Count each pair of models' labels given together, and keep the rows read most differently: those
        the models label differently, ranked by how far apart their polarities are."""
        pairs = list(combinations(answers, 2))
        tables = [self.agreement.setdefault(pair_key(*pair), Confusion()) for pair in pairs]
        candidates = []
        for index, row in enumerate(chunk.rows):
            for (first, second), table in zip(pairs, tables, strict=True):
                table.add(answers[first][index].label, answers[second][index].label)
            labels = {key: results[index].label for key, results in answers.items()}
            if len(set(labels.values())) > 1:
                polarities = {
                    key: round(polarity(results[index].scores), 4) for key, results in answers.items()
                }
                spread = round(max(polarities.values()) - min(polarities.values()), 4)
                text = row.values[plan.text][:DISAGREEMENT_TEXT]
                candidates.append(Disagreement(row.line, text, dict(labels), polarities, spread))
        self.disagreements = most_disagreed(self.disagreements, candidates, DISAGREEMENTS_KEPT)

    def notes(
        self,
        plan: ReadPlan,
        gold: GoldLabels | None,
        model: str,
        labels: Sequence[str],
        confusion: dict[str, Confusion],
    ) -> list[str]:
        notes = []
        if unscorable := self.rows_skipped - self.refused:
            notes.append(
                f"{unscorable:,} rows could not be scored and were skipped; each is listed with its line "
                "number."
            )
        if self.refused:
            notes.append(
                f"{self.refused:,} rows were scored but refused by the database for their content: they are "
                "not stored, counted or exported; each is listed with its line number."
            )
        if self.untimed:
            notes.append(
                f"{self.untimed:,} rows have no readable time: they are scored and counted, but not in the "
                "time trend."
            )
        if gold is not None:
            if self.no_gold:
                ignored = (
                    f" (values such as {', '.join(repr(v) for v in gold.ignored[:3])})"
                    if gold.ignored
                    else ""
                )
                notes.append(
                    f"{self.no_gold:,} rows have no usable gold label{ignored} and are left out of the "
                    "metrics."
                )
            note = missing_classes_note(model, labels, confusion[model])
            if note:
                notes.append(note)
        return notes
