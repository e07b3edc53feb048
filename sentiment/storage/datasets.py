"""Data sets and their per-label counts: the rows of `datasets`
and `dataset_counts`, read and written in batches; and, for a chunk of a data set's predictions the database
refused, which of its rows it refuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from sqlalchemy import ColumnElement, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from sentiment.core.buckets import KEY_LENGTH, Width
from sentiment.core.clock import as_utc
from sentiment.core.domain import Prediction
from sentiment.storage.dialects import insert_for
from sentiment.storage.repositories import PredictionRepository
from sentiment.storage.tables import DatasetCountRow, DatasetRow, PredictionRollupRow, PredictionRow
from sentiment.storage.writer import WriteError, refused_for_content

DatasetStatus = Literal[
    "uploaded", "queued", "counting", "scoring", "done", "failed", "interrupted", "cancelled"
]
# A job is at work on the data set (or its process ended without saying so: the heartbeat tells).
RUNNING: tuple[DatasetStatus, ...] = ("queued", "counting", "scoring")
Dimension = Literal["label", "time", "group", "gtime"]
GROUP_TIME_SEPARATOR = "|"  # a `gtime` key: the hour's key (13 characters), this, then the group
CountKey = tuple[Dimension, str, str]  # (dimension, key, sentiment)


class Dataset(msgspec.Struct, frozen=True):
    id: UUID
    name: str
    status: DatasetStatus
    created_at: datetime
    size_bytes: int
    columns: list[str]
    model: str | None = None
    text_column: str | None = None
    time_column: str | None = None
    group_column: str | None = None
    gold_column: str | None = None
    time_format: str | None = None
    rows_total: int | None = None
    rows_done: int = 0
    rows_scored: int = 0
    rows_skipped: int = 0
    problems: list[list[int | str]] = msgspec.field(default_factory=list)  # [line, reason]
    problem_count: int = 0
    confusion: dict[str, list[list[int]]] = msgspec.field(default_factory=dict)
    notes: list[str] = msgspec.field(default_factory=list)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    rate: float | None = None
    model_details: dict[str, str] | None = None
    run_id: UUID | None = None
    export_run: UUID | None = None
    export_bytes: int | None = None
    tally: dict[str, int] | None = None
    resumes: int = 0
    compare_models: list[str] | None = None
    agreement: dict[str, list[list[int]]] | None = None
    disagreements: list[dict[str, object]] | None = None


_TIMES = ("created_at", "started_at", "finished_at", "heartbeat_at")


def _stopped(stale_before: datetime) -> ColumnElement[bool]:
    """A job of the service's own (a run holds it; an import has none) that stopped before it was done: marked
    interrupted by a clean shutdown, or still marked running with a heartbeat older than `stale_before` (its
    process ended without saying so). A cancelled or failed job is neither."""
    return and_(
        DatasetRow.run_id.is_not(None),
        or_(
            DatasetRow.status == "interrupted",
            and_(
                DatasetRow.status.in_(RUNNING),
                or_(DatasetRow.heartbeat_at.is_(None), DatasetRow.heartbeat_at < stale_before),
            ),
        ),
    )


def _dataset(row: Row[*tuple[Any, ...]]) -> Dataset:
    mapping = row._mapping
    values = {field: mapping[field] for field in Dataset.__struct_fields__}
    for field in _TIMES:
        values[field] = as_utc(values[field])
    return Dataset(**values)


class DatasetRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, dataset: Dataset) -> None:
        await self._connection.execute(insert(DatasetRow).values(msgspec.structs.asdict(dataset)))

    async def get(self, dataset_id: UUID) -> Dataset | None:
        row = (
            await self._connection.execute(select(DatasetRow.__table__).where(DatasetRow.id == dataset_id))
        ).first()
        return _dataset(row) if row else None

    async def recent(self, limit: int = 20, offset: int = 0) -> list[Dataset]:
        query = (
            select(DatasetRow.__table__)
            .order_by(DatasetRow.created_at.desc(), DatasetRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_dataset(row) for row in await self._connection.execute(query)]

    async def count(self) -> int:
        return int(await self._connection.scalar(select(func.count()).select_from(DatasetRow)) or 0)

    async def update(self, dataset_id: UUID, **values: object) -> None:
        await self._connection.execute(update(DatasetRow).where(DatasetRow.id == dataset_id).values(**values))

    async def claim(self, dataset_id: UUID, **values: object) -> bool:
        """Update an uploaded data set that nobody has started yet; False when somebody has."""
        result = await self._connection.execute(
            update(DatasetRow)
            .where(DatasetRow.id == dataset_id, DatasetRow.status == "uploaded")
            .values(**values)
        )
        return result.rowcount == 1

    async def update_running(self, dataset_id: UUID, run: UUID | None = None, **values: object) -> bool:
        """Update a data set while a job is at work on it (while `run` holds it, when given); False once it
        was cancelled or deleted, or taken over by another run, so that a job (on any replica) stops instead
        of writing over that."""
        held = [DatasetRow.run_id == run] if run is not None else []
        result = await self._connection.execute(
            update(DatasetRow)
            .where(DatasetRow.id == dataset_id, DatasetRow.status.in_(RUNNING), *held)
            .values(**values)
        )
        return result.rowcount == 1

    async def stopped_jobs(self, stale_before: datetime) -> list[Dataset]:
        """The data sets whose job stopped before it was done (see `_stopped`), oldest first."""
        query = select(DatasetRow.__table__).where(_stopped(stale_before)).order_by(DatasetRow.created_at)
        return [_dataset(row) for row in await self._connection.execute(query)]

    async def take_over(self, dataset_id: UUID, stale_before: datetime, **values: object) -> bool:
        """Update a data set whose job stopped, counting one more resume, as a compare-and-set on its status
        and heartbeat: of replicas trying at once, exactly one is answered True (the others find the status
        and heartbeat it wrote, which no longer match).

        `values` must make the job no longer stopped (a running status with a fresh heartbeat)."""
        result = await self._connection.execute(
            update(DatasetRow)
            .where(DatasetRow.id == dataset_id, _stopped(stale_before))
            .values(resumes=DatasetRow.resumes + 1, **values)
        )
        return result.rowcount == 1

    async def delete_unstarted(self, dataset_id: UUID) -> bool:
        """Delete a data set nobody has started; False when somebody has (or it is gone)."""
        result = await self._connection.execute(
            delete(DatasetRow).where(DatasetRow.id == dataset_id, DatasetRow.status == "uploaded")
        )
        return result.rowcount == 1

    async def unstarted(self) -> list[Dataset]:
        query = select(DatasetRow.__table__).where(DatasetRow.status == "uploaded")
        return [_dataset(row) for row in await self._connection.execute(query)]

    async def delete(self, dataset_id: UUID) -> bool:
        """The data set with everything stored of it: its predictions, their hourly rollups (keyed by data
        set, so none holds another's rows) and its counts. False when there was no such data set."""
        await self._connection.execute(delete(PredictionRow).where(PredictionRow.dataset_id == dataset_id))
        await self._connection.execute(
            delete(PredictionRollupRow).where(PredictionRollupRow.dataset_key == dataset_id)
        )
        await self._connection.execute(
            delete(DatasetCountRow).where(DatasetCountRow.dataset_id == dataset_id)
        )
        result = await self._connection.execute(delete(DatasetRow).where(DatasetRow.id == dataset_id))
        return result.rowcount == 1

    async def add_counts(self, dataset_id: UUID, counts: Mapping[CountKey, int]) -> None:
        """Add `counts` to the stored ones (rows are created on first use)."""
        if not counts:
            return
        statement = insert_for(self._connection, DatasetCountRow)
        statement = statement.on_conflict_do_update(
            index_elements=["dataset_id", "dimension", "key", "sentiment"],
            set_={"count": DatasetCountRow.count + statement.excluded["count"]},
        )
        # Sorted: concurrent writers would lock rows in one
        # order (one job writes a data set, but cheap to keep).
        rows = [
            {
                "dataset_id": dataset_id,
                "dimension": dimension,
                "key": key,
                "sentiment": sentiment,
                "count": count,
            }
            for (dimension, key, sentiment), count in sorted(counts.items())
        ]
        await self._connection.execute(statement, rows)

    async def label_counts(self, dataset_id: UUID) -> dict[str, int]:
        query = select(DatasetCountRow.sentiment, DatasetCountRow.count).where(
            DatasetCountRow.dataset_id == dataset_id, DatasetCountRow.dimension == "label"
        )
        return {sentiment: count for sentiment, count in await self._connection.execute(query)}

    async def time_span(self, dataset_id: UUID) -> tuple[str, str] | None:
        query = select(func.min(DatasetCountRow.key), func.max(DatasetCountRow.key)).where(
            DatasetCountRow.dataset_id == dataset_id, DatasetCountRow.dimension == "time"
        )
        first, last = (await self._connection.execute(query)).one()
        return (first, last) if first is not None else None

    async def time_counts(self, dataset_id: UUID, width: Width) -> list[tuple[str, str, int]]:
        """(bucket key, sentiment, count) with the hours summed into `width` buckets, in time order."""
        bucket = func.substr(
            DatasetCountRow.key, 1, KEY_LENGTH[width]
        )  # an hour's key cut to its bucket's key
        query = (
            select(bucket, DatasetCountRow.sentiment, func.sum(DatasetCountRow.count))
            .where(DatasetCountRow.dataset_id == dataset_id, DatasetCountRow.dimension == "time")
            .group_by(bucket, DatasetCountRow.sentiment)
            .order_by(bucket)
        )
        return [
            (key, sentiment, int(count)) for key, sentiment, count in await self._connection.execute(query)
        ]

    async def group_time_counts(
        self, dataset_id: UUID, groups: Sequence[str], width: Width
    ) -> list[tuple[str, str, str, int]]:
        """(group, bucket key, sentiment, count) of the named groups, hours summed into `width` buckets."""
        key = DatasetCountRow.key
        hour_length = KEY_LENGTH["hour"]
        bucket = func.substr(key, 1, KEY_LENGTH[width])
        group = func.substr(key, hour_length + 2)
        query = (
            select(group, bucket, DatasetCountRow.sentiment, func.sum(DatasetCountRow.count))
            .where(
                DatasetCountRow.dataset_id == dataset_id,
                DatasetCountRow.dimension == "gtime",
                group.in_(list(groups)),
            )
            .group_by(group, bucket, DatasetCountRow.sentiment)
        )
        return [
            (g, b, sentiment, int(count)) for g, b, sentiment, count in await self._connection.execute(query)
        ]

    async def examples(
        self, dataset_id: UUID, per_label: int, groups: Sequence[str], per_group: int
    ) -> list[tuple[str | None, str, str, float]]:
        """(group or None, label, text, confidence): the `per_label` most confident stored rows of each label,
        then the `per_group` most confident of each label in each of `groups`; one scan each (a window over
        the data set's rows), most confident first."""
        p = PredictionRow
        found: list[tuple[str | None, str, str, float]] = []
        for partition, limit, where in (
            ((p.sentiment,), per_label, ()),
            ((p.group_name, p.sentiment), per_group, (p.group_name.in_(list(groups)),)),
        ):
            if limit <= 0 or (len(partition) == 2 and not groups):
                continue
            rank = func.row_number().over(partition_by=partition, order_by=(p.confidence.desc(), p.id))
            ranked = (
                select(p.group_name, p.sentiment, p.text, p.confidence, rank.label("rank"))
                .where(p.dataset_id == dataset_id, p.text.is_not(None), *where)
                .subquery()
            )
            query = select(ranked.c.group_name, ranked.c.sentiment, ranked.c.text, ranked.c.confidence).where(
                ranked.c.rank <= limit
            )
            found += [
                (group if len(partition) == 2 else None, label, text, float(confidence))
                for group, label, text, confidence in await self._connection.execute(
                    query.order_by(ranked.c.confidence.desc())
                )
            ]
        return found

    async def group_counts(
        self, dataset_id: UUID, limit: int
    ) -> tuple[list[tuple[str, dict[str, int]]], int]:
        """The `limit` largest groups with their counts per
        label, largest first, and how many groups there are."""
        in_groups = (DatasetCountRow.dataset_id == dataset_id, DatasetCountRow.dimension == "group")
        total = func.sum(DatasetCountRow.count)
        top = (
            select(DatasetCountRow.key, total.label("total"))
            .where(*in_groups)
            .group_by(DatasetCountRow.key)
            .order_by(total.desc(), DatasetCountRow.key)
            .limit(limit)
        )
        order = [key for key, _ in await self._connection.execute(top)]
        groups: dict[str, dict[str, int]] = {key: {} for key in order}
        if order:
            query = select(DatasetCountRow.key, DatasetCountRow.sentiment, DatasetCountRow.count).where(
                *in_groups, DatasetCountRow.key.in_(order)
            )
            for key, sentiment, count in await self._connection.execute(query):
                groups[key][sentiment] = count
        distinct = await self._connection.scalar(
            select(func.count(func.distinct(DatasetCountRow.key))).where(*in_groups)
        )
        return list(groups.items()), int(distinct or 0)


async def refused_predictions(
    connection: AsyncConnection, predictions: Sequence[Prediction], store_text: bool
) -> dict[int, WriteError]:
    """The predictions the database refuses on their own for their content, by position, with its error.
    Halves are tried in transactions that are always rolled back, so nothing is stored here (the caller stores
    the rest once), and only a half refused is split again: a few refused rows in a chunk cost a few tries
    each, not one per row. An outage on the way raises, for the caller to wait out."""

    async def refused(positions: range) -> dict[int, WriteError]:
        transaction = await connection.begin()
        try:
            await PredictionRepository(connection).add_many([predictions[i] for i in positions], store_text)
        except (SQLAlchemyError, OSError) as error:
            if not refused_for_content(error):
                raise
            if len(positions) == 1:
                return {positions[0]: error}
        else:
            return {}
        finally:
            await transaction.rollback()
        middle = len(positions) // 2
        return await refused(positions[:middle]) | await refused(positions[middle:])

    return await refused(range(len(predictions))) if predictions else {}
