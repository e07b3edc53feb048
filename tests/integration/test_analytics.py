"""/analytics against SQLite and Postgres: every figure exactly, filters, defaults, errors, and rollups kept
on write that answer exactly what the raw rows answer."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import msgspec
import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sentiment.core.domain import LABELS, Prediction
from sentiment.services.analytics import AnalyticsFilters, AnalyticsService, LabelCounts, TimePoint
from sentiment.storage.analytics import RollupRepository
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.repositories import AlertRepository, PredictionRepository
from sentiment.storage.tables import PredictionRollupRow, PredictionRow
from sentiment.web import analytics_api
from sentiment.web.errors import EXCEPTION_HANDLERS

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=20)
DATASET = UUID("0190f4d2-0000-7000-8000-00000000d5e7")


def at(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return T0.replace(hour=hour, minute=minute, second=second, microsecond=microsecond)


def prediction(
    when: datetime,
    model: str,
    label: str,
    latency_ms: float,
    fallback: bool = False,
    dataset: UUID | None = None,
    requested: str | None = None,
) -> Prediction:
    return Prediction(
        id=UUID(str(uuid7())),
        text=f"{label} text",
        sentiment=label,  # type: ignore[arg-type]
        confidence=0.9,
        scores={label: 0.9},
        model_requested=requested or model,
        model_used=model,
        fallback_used=fallback,
        processing_time_ms=latency_ms,
        timestamp=when,
        dataset_id=dataset,
    )


KNOWN = [
    prediction(at(10, 15), "a", "positive", 10.0, dataset=DATASET),
    prediction(at(10, 45), "a", "negative", 20.0),
    prediction(at(11, 5), "b", "positive", 30.0),
    # Written with an offset: stored and bucketed in UTC (12:30Z).
    prediction(
        at(12, 30).astimezone(timezone(timedelta(hours=2))), "vader", "neutral", 2.0, True, requested="a"
    ),
    prediction(at(13, 59, 59, 999000), "b", "positive", 40.0),
    prediction(at(14), "a", "positive", 1000.0),
]


async def store(database_url: str, predictions: list[Prediction], batch: int = 50) -> AsyncEngine:
    """Migrate, then write through the service's own write path (rows and rollups in one transaction)."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    for start in range(0, len(predictions), batch):
        async with engine.begin() as connection:
            await PredictionRepository(connection).add_many(
                predictions[start : start + batch], store_text=True
            )
    return engine


async def raise_alerts(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        alerts = AlertRepository(connection)
        await alerts.raise_alert(
            "breaker_open:a", "breaker_open", "critical", "a opened", at(9)
        )  # before the range
        await alerts.resolve("breaker_open:a", at(9, 5))
        await alerts.raise_alert("breaker_open:a", "breaker_open", "critical", "a opened", at(11))
        await alerts.raise_alert("breaker_open:b", "breaker_open", "critical", "b opened", at(12))
        await alerts.raise_alert(
            "model_load_failed:c", "model_load_failed", "critical", "c failed", at(12, 10)
        )


@pytest.fixture
async def known(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await store(database_url, KNOWN, batch=2)
    await raise_alerts(engine)
    yield engine
    await engine.dispose()


def services(engine: AsyncEngine) -> list[AnalyticsService]:
    return [AnalyticsService(engine, lambda: NOW), AnalyticsService(engine, lambda: NOW, use_rollups=False)]


def points(bucket: str, *counts: tuple[datetime, int, int, int]) -> list[TimePoint]:
    return [TimePoint(start, bucket, LabelCounts(n, u, p)) for start, n, u, p in counts]  # type: ignore[arg-type]


async def test_every_figure_over_a_range_with_ragged_edges(known: AsyncEngine) -> None:
    for service in services(known):
        summary = await service.summary(AnalyticsFilters(since=at(10, 30), until=at(14)))
        assert summary.total_predictions == 4
        assert summary.sentiment_distribution == {"negative": 25.0, "neutral": 25.0, "positive": 50.0}
        assert list(summary.model_usage.items()) == [("b", 50.0), ("a", 25.0), ("vader", 25.0)]
        assert summary.average_response_time == 23.0  # (20 + 30 + 2 + 40) / 4
        assert (summary.latency_p50_ms, summary.latency_p95_ms) == (25.0, 47.5)
        assert summary.circuit_breaker_activations == 2
        assert summary.fallback_rate == 25.0
        assert summary.time_series == points(
            "hour", (at(10), 1, 0, 0), (at(11), 0, 0, 1), (at(12), 0, 1, 0), (at(13), 0, 0, 1)
        )
        assert (summary.since, summary.until, summary.bucket) == (at(10, 30), at(14), "hour")
        assert (summary.model, summary.dataset, summary.last_updated) == (None, None, NOW)


async def test_model_filter_counts_that_models_predictions_and_its_breaker_only(known: AsyncEngine) -> None:
    for service in services(known):
        summary = await service.summary(AnalyticsFilters(since=at(10, 30), until=at(14), model="b"))
        assert summary.total_predictions == 2
        assert summary.sentiment_distribution == {"negative": 0.0, "neutral": 0.0, "positive": 100.0}
        assert summary.model_usage == {"b": 100.0}
        assert (summary.average_response_time, summary.fallback_rate) == (35.0, 0.0)
        assert summary.circuit_breaker_activations == 1
        assert summary.time_series == points(
            "hour", (at(10), 0, 0, 0), (at(11), 0, 0, 1), (at(12), 0, 0, 0), (at(13), 0, 0, 1)
        )
        assert summary.model == "b"


async def test_defaults_cover_all_live_traffic_up_to_now(known: AsyncEngine) -> None:
    for service in services(known):
        summary = await service.summary(AnalyticsFilters())
        assert summary.total_predictions == 5  # the data set's row is not live traffic
        assert (summary.since, summary.until, summary.bucket) == (at(10), NOW, "hour")
        assert len(summary.time_series) == 10  # 10:00 ... 19:00
        assert summary.time_series[0] == TimePoint(at(10), "hour", LabelCounts(1, 0, 0))
        assert summary.time_series[4] == TimePoint(at(14), "hour", LabelCounts(0, 0, 1))
        assert summary.model_usage == {"a": 40.0, "b": 40.0, "vader": 20.0}
        assert summary.circuit_breaker_activations == 2
        assert summary.average_response_time == round(1092.0 / 5, 3)


async def test_dataset_filter_starts_at_the_data_sets_first_hour(known: AsyncEngine) -> None:
    for service in services(known):
        summary = await service.summary(AnalyticsFilters(dataset=DATASET, bucket="day"))
        assert summary.total_predictions == 1
        assert summary.sentiment_distribution["positive"] == 100.0
        assert (summary.since, summary.bucket, summary.dataset) == (at(10), "day", DATASET)
        assert summary.time_series == points("day", (T0, 0, 0, 1))


async def test_short_ranges_count_per_minute(known: AsyncEngine) -> None:
    for service in services(known):
        summary = await service.summary(AnalyticsFilters(since=at(12, 29), until=at(12, 32)))
        assert summary.bucket == "minute"
        assert summary.time_series == points(
            "minute", (at(12, 29), 0, 0, 0), (at(12, 30), 0, 1, 0), (at(12, 31), 0, 0, 0)
        )
        assert summary.total_predictions == 1 and summary.fallback_rate == 100.0


async def test_an_empty_database_answers_zeros(database_url: str) -> None:
    engine = await store(database_url, [])
    try:
        for service in services(engine):
            summary = await service.summary(AnalyticsFilters())
            assert summary.total_predictions == 0
            assert summary.sentiment_distribution == {"negative": 0.0, "neutral": 0.0, "positive": 0.0}
            assert (summary.model_usage, summary.time_series) == ({}, [])
            assert (summary.average_response_time, summary.latency_p50_ms, summary.fallback_rate) == (
                0.0,
                None,
                0.0,
            )
            assert (summary.since, summary.until) == (NOW, NOW)
    finally:
        await engine.dispose()


def random_predictions(rnd: random.Random, count: int) -> list[Prediction]:
    """Predictions over three days, some written with offsets; latencies in quarter milliseconds, so sums are
    exact in floating point and rollup sums equal row sums to the last bit."""
    models = ("a", "b", "c", "vader")
    datasets = (None, None, None, DATASET, UUID(int=7))
    offsets = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-7)))
    out = []
    for _ in range(count):
        when = T0 + timedelta(seconds=rnd.randrange(3 * 86400), microseconds=rnd.randrange(10**6))
        model = rnd.choice(models)
        latency = rnd.choice((1.0, 2.5, 10.0, 10000.0, rnd.randrange(1, 60000) / 4))
        out.append(
            prediction(
                when.astimezone(rnd.choice(offsets)),
                model,
                rnd.choice(LABELS),
                latency,
                fallback=model == "vader" and rnd.random() < 0.5,
                dataset=rnd.choice(datasets),
            )
        )
    return out


def random_filters(rnd: random.Random) -> AnalyticsFilters:
    since = T0 + timedelta(seconds=rnd.randrange(3 * 86400))
    span = rnd.choice(
        (timedelta(minutes=rnd.randrange(1, 180)), timedelta(seconds=rnd.randrange(1, 3 * 86400)))
    )
    aligned = rnd.random() < 0.3
    if aligned:
        since = since.replace(minute=0, second=0)
        span = timedelta(hours=max(1, span // timedelta(hours=1)))
    return AnalyticsFilters(
        since=since if rnd.random() < 0.9 else None,
        until=since + span,
        model=rnd.choice((None, None, "a", "vader", "nobody")),
        dataset=rnd.choice((None, None, DATASET)),
        bucket=rnd.choice((None, None, "hour", "day")),
        label=rnd.choice((None, None, "negative", "positive")),
        fallback=rnd.choice((None, None, True, False)),
    )


async def test_rollup_answers_equal_raw_row_answers_on_random_data(database_url: str) -> None:
    rnd = random.Random(20260301)
    engine = await store(database_url, random_predictions(rnd, 1500), batch=97)
    try:
        with_rollups, from_rows = services(engine)
        for _ in range(40):
            filters = random_filters(rnd)
            expected = msgspec.to_builtins(await from_rows.summary(filters))
            assert msgspec.to_builtins(await with_rollups.summary(filters)) == expected, filters
    finally:
        await engine.dispose()


async def rollups(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as connection:
        table = PredictionRollupRow.__table__
        return [tuple(row) for row in await connection.execute(select(table).order_by(*table.primary_key))]


async def test_rollups_kept_on_write_equal_rollups_rebuilt_from_rows(database_url: str) -> None:
    engine = await store(database_url, random_predictions(random.Random(7), 600), batch=40)
    try:
        kept = await rollups(engine)
        async with engine.begin() as connection:
            await RollupRepository(connection).rebuild()
        assert await rollups(engine) == kept
        assert sum(row[5] for row in kept) == 600  # type: ignore[misc]
    finally:
        await engine.dispose()


async def test_migration_rolls_up_predictions_stored_before_it(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url, "0002")
    engine = create_engine(database_url)
    stored = random_predictions(random.Random(11), 300)
    rows = [
        {
            "id": p.id,
            "created_at": p.timestamp.astimezone(UTC),
            "text": p.text,
            "text_hash": "h",
            "text_length": len(p.text),
            "sentiment": p.sentiment,
            "confidence": p.confidence,
            "scores": p.scores,
            "model_requested": p.model_requested,
            "model_used": p.model_used,
            "fallback_used": p.fallback_used,
            "processing_time_ms": p.processing_time_ms,
            "dataset_id": p.dataset_id,
            "group_name": None,
        }
        for p in stored
    ]
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(PredictionRow.__table__), rows)
        await asyncio.to_thread(upgrade, database_url)
        backfilled = await rollups(engine)
        async with engine.begin() as connection:
            await RollupRepository(connection).rebuild()
        assert await rollups(engine) == backfilled
        with_rollups, from_rows = services(engine)
        assert await with_rollups.summary(AnalyticsFilters()) == await from_rows.summary(AnalyticsFilters())
    finally:
        await engine.dispose()


@asynccontextmanager
async def analytics_client(database_url: str) -> AsyncIterator[AsyncTestClient]:
    """GET /analytics wired as the app wires it (a provider named "analytics"), its engine on the app loop."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(database_url)
        app.state.analytics = AnalyticsService(engine, lambda: NOW)
        yield
        await engine.dispose()

    def provide(state: State) -> AnalyticsService:
        return state.analytics  # type: ignore[no-any-return]

    app = Litestar(
        route_handlers=analytics_api.ROUTES,
        dependencies={"analytics": Provide(provide, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
    )
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_get_analytics_answers_json_with_utc_times(database_url: str, known: AsyncEngine) -> None:
    async with analytics_client(database_url) as client:
        response = await client.get(
            "/analytics", params={"since": "2026-03-01T12:30:00+02:00", "until": "2026-03-01T14:00:00Z"}
        )
    assert response.status_code == 200
    body = response.json()
    assert body["total_predictions"] == 4
    assert body["sentiment_distribution"] == {"negative": 25.0, "neutral": 25.0, "positive": 50.0}
    assert body["model_usage"] == {"b": 50.0, "a": 25.0, "vader": 25.0}
    assert (body["average_response_time"], body["latency_p50_ms"], body["latency_p95_ms"]) == (
        23.0,
        25.0,
        47.5,
    )
    assert (body["circuit_breaker_activations"], body["fallback_rate"]) == (2, 25.0)
    assert body["time_series"][0] == {
        "bucket_start": "2026-03-01T10:00:00Z",
        "bucket": "hour",
        "counts": {"negative": 1, "neutral": 0, "positive": 0},
    }
    assert len(body["time_series"]) == 4
    assert (body["since"], body["until"], body["bucket"]) == (
        "2026-03-01T10:30:00Z",
        "2026-03-01T14:00:00Z",
        "hour",
    )
    assert (body["model"], body["dataset"], body["last_updated"]) == (None, None, "2026-03-01T20:00:00Z")


async def test_get_analytics_filters_by_model_and_dataset(database_url: str, known: AsyncEngine) -> None:
    async with analytics_client(database_url) as client:
        by_model = (await client.get("/analytics", params={"model": "vader", "until": "2026-03-02"})).json()
        by_dataset = (
            await client.get("/analytics", params={"dataset": str(DATASET), "bucket": "day"})
        ).json()
    assert (by_model["total_predictions"], by_model["fallback_rate"], by_model["model"]) == (
        1,
        100.0,
        "vader",
    )
    assert (by_model["since"], by_model["until"]) == ("2026-03-01T12:00:00Z", "2026-03-02T00:00:00Z")
    assert (by_dataset["total_predictions"], by_dataset["dataset"]) == (1, str(DATASET))


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "2026-03-01T12:00:00Z", "until": "2026-03-01T11:00:00Z"}, "must be later than since"),
        ({"since": "yesterday"}, "since must be an ISO 8601 date or datetime"),
        ({"until": "2026-03-01T12:30:00 02:00"}, "send a + in an offset as %2B"),
        (
            {"since": "2026-01-01", "until": "2026-03-01", "bucket": "minute"},
            "more than the 5000 a series may hold",
        ),
    ],
)
async def test_bad_parameters_answer_400_saying_what_is_wrong(
    sqlite_url: str, params: dict[str, str], detail: str
) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    async with analytics_client(sqlite_url) as client:
        response = await client.get("/analytics", params=params)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert set(response.json()) <= {"status_code", "detail", "extra"}


@pytest.mark.parametrize(
    ("params", "key"), [({"bucket": "week"}, "bucket"), ({"dataset": "nope"}, "dataset")]
)
async def test_unknown_bucket_or_malformed_dataset_answer_400_naming_the_parameter(
    sqlite_url: str, params: dict[str, str], key: str
) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    async with analytics_client(sqlite_url) as client:
        response = await client.get("/analytics", params=params)
    assert response.status_code == 400
    assert [error["key"] for error in response.json()["extra"]] == [key]


async def test_openapi_documents_the_endpoint_its_parameters_and_its_400(sqlite_url: str) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    async with analytics_client(sqlite_url) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    operation = schema["paths"]["/analytics"]["get"]
    assert operation["tags"] == ["analytics"]
    assert {p["name"] for p in operation["parameters"]} == {
        "since",
        "until",
        "model",
        "dataset",
        "bucket",
        "label",
        "fallback",
    }
    assert {"200", "400"} <= set(operation["responses"])


async def test_retention_keeps_rollups_equal_to_the_rows_that_remain(database_url: str) -> None:
    engine = await store(database_url, random_predictions(random.Random(5), 400), batch=50)
    cutoff = T0 + timedelta(days=1, hours=7, minutes=41, seconds=13)
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(PredictionRow).where(PredictionRow.created_at < cutoff))
            await RollupRepository(connection).forget_before(cutoff)
        kept = await rollups(engine)
        async with engine.begin() as connection:
            await RollupRepository(connection).rebuild()
        assert await rollups(engine) == kept
        with_rollups, from_rows = services(engine)
        assert await with_rollups.summary(AnalyticsFilters()) == await from_rows.summary(AnalyticsFilters())
    finally:
        await engine.dispose()


async def test_the_series_as_csv_holds_the_counts_shares_and_net_of_each_bucket(
    database_url: str, known: AsyncEngine
) -> None:
    async with analytics_client(database_url) as client:
        response = await client.get(
            "/analytics/series.csv", params={"since": "2026-03-01T10:00:00Z", "until": "2026-03-01T15:00:00Z"}
        )
        summary = (
            await client.get(
                "/analytics", params={"since": "2026-03-01T10:00:00Z", "until": "2026-03-01T15:00:00Z"}
            )
        ).json()
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="sentiment-hours.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["bucket_start"] for row in rows] == [
        point["bucket_start"] for point in summary["time_series"]
    ]
    assert [(row["negative"], row["neutral"], row["positive"]) for row in rows] == [
        tuple(str(point["counts"][label]) for label in LABELS) for point in summary["time_series"]
    ]
    ten, eleven, twelve = rows[0], rows[1], rows[2]
    assert (ten["n"], ten["negative_share"], ten["net"]) == ("1", "100.000", "-100.000")  # 10:45, negative
    assert (ten["negative_ci_low"], ten["negative_ci_high"]) == (
        "20.655",
        "100.000",
    )  # Wilson, n = 1: 1 / (1 + z²)
    assert (eleven["positive_share"], eleven["bucket_end"]) == ("100.000", "2026-03-01T12:00:00Z")
    assert twelve["neutral_share"] == "100.000" and twelve["net"] == "0.000"
    assert rows[3]["n"] == "1" and rows[4]["n"] == "1"
    empty = [row for row in rows if row["n"] == "0"]
    assert all(row["net"] == "" and row["positive_share"] == "" for row in empty)


async def test_label_and_fallback_filters_narrow_every_figure(known: AsyncEngine) -> None:
    for service in services(known):
        positive = await service.summary(AnalyticsFilters(since=at(10, 30), until=at(14), label="positive"))
        assert positive.total_predictions == 2 and positive.model_usage == {"b": 100.0}
        assert positive.sentiment_distribution == {"negative": 0.0, "neutral": 0.0, "positive": 100.0}
        fallback = await service.summary(AnalyticsFilters(since=at(10, 30), until=at(14), fallback=True))
        assert (fallback.total_predictions, fallback.fallback_rate, fallback.model_usage) == (
            1,
            100.0,
            {"vader": 100.0},
        )
        answered = await service.summary(AnalyticsFilters(since=at(10, 30), until=at(14), fallback=False))
        assert (answered.total_predictions, answered.fallback_rate) == (3, 0.0)
        assert (answered.label, answered.fallback) == (None, False)
