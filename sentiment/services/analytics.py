"""What /analytics reports: totals, distribution, model usage, latency, breaker activations and a time series.

Whole UTC hours are read from the hourly rollups, the partial hours at either edge from the raw rows, and the
figures are made from those aggregates (sentiment.core.analytics_math);
no prediction row is loaded into Python.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.analytics_math import (
    Bucket,
    SeriesCount,
    Slice,
    Window,
    fill_series,
    parse_moment,
    resolve_window,
    split_at_hours,
    summarise,
)
from sentiment.core.buckets import bucket_starts
from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import Label
from sentiment.storage.analytics import AnalyticsRepository, Scope
from sentiment.storage.dialects import is_postgres
from sentiment.storage.repositories import storable_text


class AnalyticsFilters(msgspec.Struct, frozen=True):
    """Which predictions a summary covers: [since, until) in UTC, one model_used, one data set (without one,
    live traffic only: data-set rows never move the live figures); all optional.

    `bucket` is the width of the time series' buckets, chosen from the range when absent."""

    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    dataset: UUID | None = None
    bucket: Bucket | None = None
    label: Label | None = None
    fallback: bool | None = None

    @property
    def scope(self) -> Scope:
        return Scope(self.model, self.dataset, self.label, self.fallback)

    @classmethod
    def from_query(
        cls,
        since: str | None = None,
        until: str | None = None,
        model: str | None = None,
        dataset: UUID | None = None,
        bucket: Bucket | None = None,
        label: Label | None = None,
        fallback: bool | None = None,
    ) -> AnalyticsFilters:
        return cls(
            since=parse_moment(since, "since") if since else None,
            until=parse_moment(until, "until") if until else None,
            model=storable_text(model) if model else None,  # compared with stored names, as they are stored
            dataset=dataset,
            bucket=bucket,
            label=label,
            fallback=fallback,
        )


class LabelCounts(msgspec.Struct):
    negative: int
    neutral: int
    positive: int


class TimePoint(msgspec.Struct):
    bucket_start: Annotated[datetime, msgspec.Meta(description="UTC start of the bucket")]
    bucket: Bucket
    counts: LabelCounts


class Analytics(msgspec.Struct):
    total_predictions: int
    sentiment_distribution: Annotated[
        dict[str, float],
        msgspec.Meta(
            description="percent per label, 0-100; negative, neutral and positive always present",
            examples=[{"negative": 25.0, "neutral": 10.0, "positive": 65.0}],
        ),
    ]
    model_usage: Annotated[
        dict[str, float],
        msgspec.Meta(
            description="percent of predictions answered by each model (model_used), most used first"
        ),
    ]
    average_response_time: Annotated[float, msgspec.Meta(description="mean processing_time_ms; 0 when none")]
    latency_p50_ms: Annotated[
        float | None,
        msgspec.Meta(
            description="median processing time, estimated from a latency histogram; null when none"
        ),
    ]
    latency_p95_ms: Annotated[float | None, msgspec.Meta(description="95th percentile, estimated likewise")]
    circuit_breaker_activations: Annotated[
        int, msgspec.Meta(description="breaker openings (breaker_open alerts raised) in the range")
    ]
    fallback_rate: Annotated[
        float, msgspec.Meta(description="percent of predictions answered by the fallback")
    ]
    time_series: Annotated[
        list[TimePoint],
        msgspec.Meta(description="counts per label for every bucket in the range, zeros included"),
    ]
    since: Annotated[datetime, msgspec.Meta(description="start of the range (inclusive), UTC")]
    until: Annotated[datetime, msgspec.Meta(description="end of the range (exclusive), UTC")]
    bucket: Bucket
    model: str | None
    dataset: UUID | None
    label: Label | None
    fallback: bool | None
    last_updated: Annotated[datetime, msgspec.Meta(description="when these figures were computed")]


class AnalyticsService:
    """Summaries computed in SQL. `use_rollups=False` reads raw rows only: slower, and the reference the
    rollup-based answers are tested against."""

    def __init__(self, engine: AsyncEngine, clock: WallClock = utc_now, use_rollups: bool = True) -> None:
        self._engine = engine
        self._clock = clock
        self._use_rollups = use_rollups

    async def summary(self, filters: AnalyticsFilters) -> Analytics:
        now = self._clock()
        model, dataset, scope = filters.model, filters.dataset, filters.scope
        async with self._engine.connect() as connection:
            if is_postgres(connection):
                # One snapshot for every query, so rollups, edges and series agree while predictions arrive.
                await connection.execution_options(isolation_level="REPEATABLE READ")
            repository = AnalyticsRepository(connection)
            earliest = None
            if filters.since is None:
                earliest = await repository.earliest_hour(scope, from_rollups=self._use_rollups)
            window = resolve_window(filters.since, filters.until, filters.bucket, now, earliest)
            slices, counts = await self._aggregates(repository, window, scope)
            activations = await repository.breaker_activations((window.since, window.until), model)
        figures = summarise(slices)
        series = fill_series(counts, bucket_starts(window.since, window.until, window.bucket))
        return Analytics(
            total_predictions=figures.total,
            sentiment_distribution=figures.distribution,
            model_usage=figures.model_usage,
            average_response_time=figures.average_ms,
            latency_p50_ms=figures.p50_ms,
            latency_p95_ms=figures.p95_ms,
            circuit_breaker_activations=activations,
            fallback_rate=figures.fallback_rate,
            time_series=[TimePoint(start, window.bucket, LabelCounts(**labels)) for start, labels in series],
            since=window.since,
            until=window.until,
            bucket=window.bucket,
            model=model,
            dataset=dataset,
            label=filters.label,
            fallback=filters.fallback,
            last_updated=now,
        )

    async def _aggregates(
        self, repository: AnalyticsRepository, window: Window, scope: Scope
    ) -> tuple[list[Slice], list[SeriesCount]]:
        whole = (window.since, window.until)
        if window.since >= window.until:
            return [], []
        if not self._use_rollups:
            return (
                await repository.raw_slices(whole, scope),
                await repository.raw_series(whole, window.bucket, scope),
            )
        split = split_at_hours(window.since, window.until)
        slices: list[Slice] = []
        counts: list[SeriesCount] = []
        if split.whole_hours is not None:
            slices += await repository.rollup_slices(split.whole_hours, scope)
        for edge in split.edges:
            slices += await repository.raw_slices(edge, scope)
        if window.bucket == "minute":
            # Rollups are hourly: minute counts come from the rows (minute buckets only span short ranges).
            counts += await repository.raw_series(whole, window.bucket, scope)
        else:
            if split.whole_hours is not None:
                counts += await repository.rollup_series(split.whole_hours, window.bucket, scope)
            for edge in split.edges:
                counts += await repository.raw_series(edge, window.bucket, scope)
        return slices, counts
