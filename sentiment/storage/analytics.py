"""Analytics SQL: hourly rollups kept on write, aggregates over rollups or raw rows; no row goes to Python.

Buckets are UTC and computed in SQL by dialect: `date_trunc` on Postgres; on SQLite, which keeps times as text
'YYYY-MM-DD HH:MM:SS.ffffff' (always UTC here), a prefix of that text (a bucket key of
sentiment.core.buckets).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime
from itertools import accumulate
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import (
    ColumnElement,
    Result,
    Select,
    SQLColumnExpression,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sentiment.core.analytics_math import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    Bucket,
    SeriesCount,
    Slice,
)
from sentiment.core.buckets import KEY_LENGTH, floor_to, key_start, shifted
from sentiment.core.clock import as_utc
from sentiment.core.domain import Prediction
from sentiment.storage.dialects import insert_for, is_postgres
from sentiment.storage.tables import NO_DATASET, AlertRow, PredictionRollupRow, PredictionRow

Range = tuple[datetime, datetime]
Rows = Result[*tuple[Any, ...]]
Upsert = postgresql.Insert | sqlite.Insert
AnySelect = TypeVar("AnySelect", bound="Select[*tuple[Any, ...]]")

_ROLLUP_KEY = ("hour", "model_used", "sentiment", "fallback_used", "dataset_key")
_ROLLUP_SUMS = ("predictions", "latency_sum_ms", *LATENCY_COLUMNS)
_UPSERTS: dict[str, Upsert] = {}
# sentiment.services.failsafe raises one alert of this kind, keyed "breaker_open:<model>",
# each time a breaker opens.
BREAKER_ALERT_KIND = "breaker_open"


class _RollupSums:
    """One rollup row's sums, counted a prediction at a time: the latency histogram is kept per bucket (one
    bisection a prediction rather than a comparison per bound) and made cumulative once, in `figures`."""

    __slots__ = ("in_bucket", "latency_sum_ms", "predictions")

    def __init__(self) -> None:
        self.predictions = 0
        self.latency_sum_ms = 0.0
        # in_bucket[i]: latencies above bound i-1 and at or under bound i; the last one, above every bound.
        self.in_bucket = [0] * (len(LATENCY_BOUNDS_MS) + 1)

    def add(self, latency_ms: float) -> None:
        self.predictions += 1
        self.latency_sum_ms += latency_ms
        self.in_bucket[bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1

    def figures(self) -> tuple[float, ...]:
        """The values of `_ROLLUP_SUMS`, in order."""
        return (self.predictions, self.latency_sum_ms, *accumulate(self.in_bucket[:-1]))


class RollupRepository:
    """Keeps `prediction_rollups` equal to what the stored predictions add up to."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, predictions: Sequence[Prediction]) -> None:
        """Count `predictions` into their hours, one upsert for the batch. Call it in the transaction that
        inserts them."""
        totals: dict[tuple[datetime, str, str, bool, UUID], _RollupSums] = {}
        hours: dict[datetime, datetime] = {}  # a request's rows share one time
        for p in predictions:
            hour = hours.get(p.timestamp)
            if hour is None:
                hour = hours[p.timestamp] = floor_to(p.timestamp, "hour")
            key = (
                hour,
                p.model_used,
                p.sentiment,
                p.fallback_used,
                p.dataset_id or NO_DATASET,
            )
            sums = totals.get(key)
            if sums is None:
                sums = totals[key] = _RollupSums()
            sums.add(p.processing_time_ms)
        if not totals:
            return
        # Sorted keys: replicas upserting the same hours lock their rows in one order, so they never deadlock.
        rows = [
            dict(zip(_ROLLUP_KEY, key, strict=True)) | dict(zip(_ROLLUP_SUMS, sums.figures(), strict=True))
            for key, sums in sorted(totals.items(), key=lambda item: tuple(map(str, item[0])))
        ]
        await self._connection.execute(self._upsert(), rows)

    def _upsert(self) -> Upsert:
        """The rollup upsert in the connection's dialect, built once per dialect (building it cost more than a
        small batch's own counting)."""
        dialect = self._connection.dialect.name
        if dialect not in _UPSERTS:
            statement = insert_for(self._connection, PredictionRollupRow)
            _UPSERTS[dialect] = statement.on_conflict_do_update(
                index_elements=list(_ROLLUP_KEY),
                set_={
                    column: getattr(PredictionRollupRow, column) + statement.excluded[column]
                    for column in _ROLLUP_SUMS
                },
            )
        return _UPSERTS[dialect]

    async def rebuild(self, hours: Range | None = None) -> None:
        """Recount rollups from the raw rows: all of them (after a bulk load that bypassed `add`), or only the
        whole UTC hours in `hours`."""
        forget = delete(PredictionRollupRow)
        hour = _hour_start(self._connection, PredictionRow.created_at)
        dataset = func.coalesce(
            PredictionRow.dataset_id, literal(NO_DATASET, PredictionRollupRow.dataset_key.type)
        )
        key = (hour, PredictionRow.model_used, PredictionRow.sentiment, PredictionRow.fallback_used, dataset)
        query = select(*key, *_raw_sums()).group_by(*key)
        if hours is not None:
            forget = forget.where(PredictionRollupRow.hour >= hours[0], PredictionRollupRow.hour < hours[1])
            query = query.where(*_during(hours))
        await self._connection.execute(forget)
        await self._connection.execute(
            insert(PredictionRollupRow).from_select(list(_ROLLUP_KEY + _ROLLUP_SUMS), query)
        )

    async def forget_before(self, cutoff: datetime) -> None:
        """After the predictions older than `cutoff` were deleted (retention), in the same transaction: drop
        the hours they filled and recount the hour the cutoff falls in."""
        first_kept = floor_to(cutoff, "hour")
        await self._connection.execute(
            delete(PredictionRollupRow).where(PredictionRollupRow.hour < first_kept)
        )
        if first_kept != as_utc(cutoff):
            await self.rebuild((first_kept, shifted(first_kept, 1, "hour")))


class Scope(msgspec.Struct, frozen=True):
    """Which predictions an aggregate counts (every field optional; no data set means live traffic)."""

    model: str | None = None
    dataset: UUID | None = None
    label: str | None = None
    fallback: bool | None = None


class AnalyticsRepository:
    """Aggregates for /analytics: slices (per model, label, fallback flag) and counts per bucket and label."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def earliest_hour(self, scope: Scope, from_rollups: bool) -> datetime | None:
        """The UTC hour of the earliest matching prediction, from the rollups or from the raw rows."""
        if from_rollups:
            query = self._filter_rollups(select(func.min(PredictionRollupRow.hour)), scope)
        else:
            query = self._filter_rows(select(func.min(PredictionRow.created_at)), scope)
        value = await self._connection.scalar(query)
        return floor_to(_as_datetime(value), "hour") if value is not None else None

    async def rollup_slices(self, hours: Range, scope: Scope) -> list[Slice]:
        r = PredictionRollupRow
        key = (r.model_used, r.sentiment, r.fallback_used)
        sums = [func.sum(getattr(r, name)) for name in _ROLLUP_SUMS]
        query = select(*key, *sums).where(r.hour >= hours[0], r.hour < hours[1]).group_by(*key)
        return _slices(await self._connection.execute(self._filter_rollups(query, scope)))

    async def raw_slices(self, span: Range, scope: Scope) -> list[Slice]:
        p = PredictionRow
        key = (p.model_used, p.sentiment, p.fallback_used)
        query = select(*key, *_raw_sums()).where(*_during(span)).group_by(*key)
        return _slices(await self._connection.execute(self._filter_rows(query, scope)))

    async def rollup_series(self, hours: Range, bucket: Bucket, scope: Scope) -> list[SeriesCount]:
        r = PredictionRollupRow
        start = self._bucket_start(r.hour, bucket)
        query = (
            select(start, r.sentiment, func.sum(r.predictions))
            .where(r.hour >= hours[0], r.hour < hours[1])
            .group_by(start, r.sentiment)
        )
        return _series(await self._connection.execute(self._filter_rollups(query, scope)))

    async def raw_series(self, span: Range, bucket: Bucket, scope: Scope) -> list[SeriesCount]:
        p = PredictionRow
        start = self._bucket_start(p.created_at, bucket)
        query = select(start, p.sentiment, func.count()).where(*_during(span)).group_by(start, p.sentiment)
        return _series(await self._connection.execute(self._filter_rows(query, scope)))

    async def breaker_activations(self, span: Range, model: str | None) -> int:
        """Breakers opened in the span (each opening raises one alert), for one model's breaker or all."""
        query = select(func.count()).where(
            AlertRow.kind == BREAKER_ALERT_KIND, AlertRow.raised_at >= span[0], AlertRow.raised_at < span[1]
        )
        if model is not None:
            query = query.where(AlertRow.key == f"{BREAKER_ALERT_KIND}:{model}")
        return int(await self._connection.scalar(query) or 0)

    def _bucket_start(self, column: SQLColumnExpression[datetime], bucket: Bucket) -> ColumnElement[Any]:
        # Literal SQL, not bound parameters: Postgres only matches a GROUP BY expression to the selected one
        # when both are the same text, and two parameters ($1, $3) are not.
        if is_postgres(self._connection):
            return func.date_trunc(
                literal_column(f"'{bucket}'"), func.timezone(literal_column("'UTC'"), column)
            )
        return func.substr(column, 1, KEY_LENGTH[bucket])

    @staticmethod
    def _filter_rows(query: AnySelect, scope: Scope) -> AnySelect:
        """The scope's rows: of one data set, or without one live traffic only (a corpus scored in minutes
        would otherwise swamp the live figures); optionally one model, one label, fallback answers or not."""
        p = PredictionRow
        in_dataset = p.dataset_id == scope.dataset if scope.dataset is not None else p.dataset_id.is_(None)
        return query.where(in_dataset, *_narrowed(scope, p.model_used, p.sentiment, p.fallback_used))

    @staticmethod
    def _filter_rollups(query: AnySelect, scope: Scope) -> AnySelect:
        r = PredictionRollupRow
        in_dataset = r.dataset_key == (scope.dataset or NO_DATASET)
        return query.where(in_dataset, *_narrowed(scope, r.model_used, r.sentiment, r.fallback_used))


def _narrowed(
    scope: Scope,
    model: SQLColumnExpression[str],
    label: SQLColumnExpression[str],
    fallback: SQLColumnExpression[bool],
) -> list[ColumnElement[bool]]:
    """The scope's model, label and fallback conditions on either table's columns of the same names."""
    wanted = ((model, scope.model), (label, scope.label), (fallback, scope.fallback))
    return [column == value for column, value in wanted if value is not None]


def _during(span: Range) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    # Bound in UTC: SQLite compares the stored text, which drops any offset.
    return PredictionRow.created_at >= as_utc(span[0]), PredictionRow.created_at < as_utc(span[1])


def _raw_sums() -> list[ColumnElement[Any]]:
    """count, latency sum and cumulative histogram of raw rows: the columns a rollup row holds."""
    latency = PredictionRow.processing_time_ms
    return [
        func.count(),
        func.sum(latency),
        *(func.sum(case((latency <= bound, 1), else_=0)) for bound in LATENCY_BOUNDS_MS),
    ]


def _hour_start(connection: AsyncConnection, column: SQLColumnExpression[datetime]) -> ColumnElement[Any]:
    """A time's UTC hour, stored exactly as a rollup's `hour` is."""
    if is_postgres(connection):
        utc: ColumnElement[str] = literal_column("'UTC'")
        return func.timezone(utc, func.date_trunc(literal_column("'hour'"), func.timezone(utc, column)))
    return func.substr(column, 1, KEY_LENGTH["hour"]).concat(literal_column("':00:00.000000'"))


def _as_datetime(value: object) -> datetime:
    """A time or bucket start from either dialect: a datetime (Postgres), or UTC text or a bucket key
    (SQLite)."""
    if isinstance(value, datetime):
        return as_utc(value)
    return key_start(str(value))


def _slices(rows: Rows) -> list[Slice]:
    return [
        Slice(
            model, label, bool(fallback), int(count), float(latency or 0.0), tuple(int(n) for n in histogram)
        )
        for model, label, fallback, count, latency, *histogram in rows
    ]


def _series(rows: Rows) -> list[SeriesCount]:
    return [SeriesCount(_as_datetime(start), label, int(count)) for start, label, count in rows]
