"""The write path's rows, on SQLite and Postgres: `add_many` stores exactly the predictions given, as a plain
SQLAlchemy insert stores them, and counts them exactly into the hourly rollups; `existing_ids` finds exactly
the stored ones, in one query per call up to the parameter limit."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import msgspec
import pytest
from sqlalchemy import ColumnElement, case, event, func, insert, literal, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from uuid_utils.compat import uuid7

from sentiment.core.analytics_math import LATENCY_BOUNDS_MS, LATENCY_COLUMNS
from sentiment.core.clock import as_utc
from sentiment.core.domain import LABELS, Prediction
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.repositories import IDS_PER_QUERY, PredictionRepository, storable_text, text_hash
from sentiment.storage.tables import NO_DATASET, PredictionRollupRow, PredictionRow

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
DATASETS = (UUID("0190f4d2-0000-7000-8000-00000000d5e1"), UUID("0190f4d2-0000-7000-8000-00000000d5e2"))
TEXTS = ("great flight", "lost my bag \u00e9\U0001f600", "a nul \x00 inside", "x" * 500)
# Every histogram bound exactly, just above each, under the first and over the last.
LATENCIES = (*LATENCY_BOUNDS_MS, *(bound + 0.001 for bound in LATENCY_BOUNDS_MS), 0.25, 12_000.5)


def prediction(n: int, rng: random.Random) -> Prediction:
    label = rng.choice(LABELS)
    model = rng.choice(("vader", "minilm-sst2", "minilm-tweets3"))
    fallback = model == "vader" and n % 3 == 0
    in_dataset = n % 4 == 0
    moment = T0 + timedelta(minutes=rng.randrange(180), microseconds=n)  # three UTC hours
    return Prediction(
        id=uuid7(),
        text=f"{rng.choice(TEXTS)} {n}",
        sentiment=label,
        confidence=rng.random(),
        scores={other: rng.random() for other in LABELS} | {label: 0.9},
        model_requested="minilm-sst2" if fallback else model,
        model_used=model,
        fallback_used=fallback,
        processing_time_ms=LATENCIES[n % len(LATENCIES)] if n % 2 else rng.lognormvariate(2.5, 1.5),
        # Some written with an offset: stored and counted in UTC.
        timestamp=moment.astimezone(timezone(timedelta(hours=n % 3 - 1, minutes=30 * (n % 2)))),
        dataset_id=rng.choice(DATASETS) if in_dataset else None,
        group=rng.choice(("delta", "united")) if in_dataset else None,
    )


def predictions(count: int, seed: int = 11) -> list[Prediction]:
    rng = random.Random(seed)
    return [prediction(n, rng) for n in range(count)]


def plain_row(p: Prediction, store_text: bool) -> dict[str, Any]:
    """A prediction's row as SQLAlchemy reads it back, and as a plain `insert(PredictionRow)` takes it."""
    return {
        "id": p.id,
        "created_at": as_utc(p.timestamp),
        "text": storable_text(p.text) if store_text else None,
        "text_hash": text_hash(p.text),
        "text_length": len(p.text),
        "sentiment": p.sentiment,
        "confidence": p.confidence,
        "scores": p.scores,
        "model_requested": p.model_requested,
        "model_used": p.model_used,
        "fallback_used": p.fallback_used,
        "processing_time_ms": p.processing_time_ms,
        "dataset_id": p.dataset_id,
        "group_name": p.group,
    }


async def add_in_batches(
    engine: AsyncEngine, rows: list[Prediction], batch: int, store_text: bool = True
) -> None:
    """As the writer adds them: one transaction per batch."""
    for start in range(0, len(rows), batch):
        async with engine.begin() as connection:
            await PredictionRepository(connection).add_many(rows[start : start + batch], store_text)


@contextmanager
def statements_sent(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements SQLAlchemy runs on the engine's cursors meanwhile."""
    sent: list[str] = []

    def record(_connection: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(" ".join(statement.split()).upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.mark.parametrize("store_text", [True, False])
async def test_add_many_stores_exactly_the_predictions_given(engine: AsyncEngine, store_text: bool) -> None:
    given = predictions(300)
    await add_in_batches(engine, given, batch=120, store_text=store_text)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(PredictionRow.__table__))).mappings().all()
    stored = {row["id"]: {**row, "created_at": as_utc(row["created_at"])} for row in rows}
    assert stored == {p.id: plain_row(p, store_text) for p in given}


async def test_rows_are_stored_as_text_exactly_as_a_plain_sqlalchemy_insert_stores_them(
    engine: AsyncEngine,
) -> None:
    # add_many hands the driver values it converted itself (by COPY on Postgres): every column's stored form
    # (times, UUIDs, JSON text) must be the one SQLAlchemy's own insert writes, or readers would meet two.
    given = predictions(60)
    twins = [msgspec.structs.replace(p, id=uuid7()) for p in given]
    async with engine.begin() as connection:
        await PredictionRepository(connection).add_many(given, store_text=True)
        await connection.execute(insert(PredictionRow), [plain_row(p, store_text=True) for p in twins])
    columns = ", ".join(f"CAST({column.name} AS TEXT)" for column in PredictionRow.__table__.columns)
    async with engine.connect() as connection:
        stored = (await connection.exec_driver_sql(f"SELECT {columns} FROM predictions")).all()
    as_stored = {UUID(row[0]): tuple(row[1:]) for row in stored}
    assert len(as_stored) == 120
    assert [as_stored[p.id] for p in given] == [as_stored[twin.id] for twin in twins]


def utc_hour(connection: AsyncConnection, moment: ColumnElement[Any]) -> ColumnElement[Any]:
    """The UTC hour of a stored time, as each database spells it."""
    if connection.dialect.name == "postgresql":
        return func.date_trunc(literal_column("'hour'"), func.timezone(literal_column("'UTC'"), moment))
    return func.substr(moment, 1, 13)  # 'YYYY-MM-DD HH' of the UTC text SQLite keeps


async def test_rollups_count_exactly_what_a_group_by_over_the_rows_counts(engine: AsyncEngine) -> None:
    given = predictions(1_000)
    # Batches of many sizes: hours are counted within one upsert and added to by the next ones.
    for start, size in ((0, 1), (1, 7), (8, 250), (258, 742)):
        await add_in_batches(engine, given[start : start + size], batch=size)
    p, r = PredictionRow, PredictionRollupRow
    async with engine.connect() as connection:
        dataset = func.coalesce(p.dataset_id, literal(NO_DATASET, r.dataset_key.type))
        key = (utc_hour(connection, p.created_at), p.model_used, p.sentiment, p.fallback_used, dataset)
        at_or_under = (
            func.sum(case((p.processing_time_ms <= bound, 1), else_=0)) for bound in LATENCY_BOUNDS_MS
        )
        grouped = await connection.execute(
            select(*key, func.count(), func.sum(p.processing_time_ms), *at_or_under).group_by(*key)
        )
        from_rows = {tuple(row[:5]): tuple(row[5:]) for row in grouped}
        rolled = await connection.execute(
            select(
                utc_hour(connection, r.hour),
                r.model_used,
                r.sentiment,
                r.fallback_used,
                r.dataset_key,
                r.predictions,
                r.latency_sum_ms,
                *(getattr(r, column) for column in LATENCY_COLUMNS),
            )
        )
        from_rollups = {tuple(row[:5]): tuple(row[5:]) for row in rolled}
    assert sum(figures[0] for figures in from_rollups.values()) == len(given)
    assert from_rollups.keys() == from_rows.keys()
    for key, (count, latency_sum, *histogram) in from_rows.items():
        rolled_count, rolled_latency_sum, *rolled_histogram = from_rollups[key]
        assert (rolled_count, rolled_histogram) == (count, histogram), key
        # Summed in another order: equal but for the last bits.
        assert rolled_latency_sum == pytest.approx(latency_sum, rel=1e-12), key


async def test_existing_ids_are_exactly_the_stored_ones_among_those_asked(engine: AsyncEngine) -> None:
    stored = predictions(40)
    await add_in_batches(engine, stored, batch=40)
    unknown = [uuid7() for _ in range(25)]
    asked = [p.id for p in stored[::2]] + unknown
    random.Random(5).shuffle(asked)
    async with engine.connect() as connection:
        repository = PredictionRepository(connection)
        assert await repository.existing_ids(asked) == {p.id for p in stored[::2]}
        assert await repository.existing_ids(unknown) == set()
        assert await repository.existing_ids([]) == set()


async def test_existing_ids_past_the_parameter_limit_take_one_query_per_chunk(engine: AsyncEngine) -> None:
    stored = predictions(6)
    await add_in_batches(engine, stored, batch=6)
    # More ids than one statement may bind, with stored ones at both chunks' ends and in the second one.
    asked = [uuid7() for _ in range(IDS_PER_QUERY + 1_000)]
    for position, p in zip((0, IDS_PER_QUERY - 1, IDS_PER_QUERY, IDS_PER_QUERY + 1, len(asked) - 1), stored):
        asked[position] = p.id
    with statements_sent(engine) as sent:
        async with engine.connect() as connection:
            both_chunks = await PredictionRepository(connection).existing_ids(asked)
            first_chunk = await PredictionRepository(connection).existing_ids(asked[:IDS_PER_QUERY])
    assert both_chunks == {p.id for p in stored[:5]}
    assert first_chunk == {stored[0].id, stored[1].id}
    assert len([s for s in sent if s.startswith("SELECT PREDICTIONS.ID FROM PREDICTIONS")]) == 3


async def test_a_batch_the_database_refuses_raises_the_wrapped_error_and_stores_none_of_it(
    engine: AsyncEngine,
) -> None:
    # The writer tells rows refused for their content from an outage by SQLAlchemy's wrapped errors: a failed
    # COPY (a driver's error) must reach it as the plain insert's error would.
    first, *rest = predictions(5)
    await add_in_batches(engine, [first], batch=1)
    with pytest.raises(IntegrityError):
        await add_in_batches(engine, [*rest, msgspec.structs.replace(first, text="same id")], batch=5)
    async with engine.connect() as connection:
        assert await PredictionRepository(connection).count() == 1
        assert await connection.scalar(select(func.sum(PredictionRollupRow.predictions))) == 1


@pytest.mark.postgres
async def test_postgres_takes_the_rows_by_copy_not_by_an_insert_per_row(postgres_url: str) -> None:
    await asyncio.to_thread(upgrade, postgres_url)
    engine = create_engine(postgres_url)
    try:
        with statements_sent(engine) as sent:
            await add_in_batches(engine, predictions(200), batch=200)
        async with engine.connect() as connection:
            assert await PredictionRepository(connection).count() == 200
    finally:
        await engine.dispose()
    assert not [s for s in sent if s.startswith("INSERT INTO PREDICTIONS ")]
    assert [s for s in sent if s.startswith("INSERT INTO PREDICTION_ROLLUPS ")]
