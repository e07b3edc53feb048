"""GET /predictions and its exports against SQLite and Postgres: live traffic apart from data sets, every
filter, keyset pages that see each row once, and CSV / JSON Lines exports that hold what the list holds."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from uuid_utils.compat import uuid7

from sentiment.app import create_app
from sentiment.core.domain import Prediction
from sentiment.services.history import CSV_COLUMNS
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.repositories import PredictionRepository
from tests.conftest import make_settings

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
DATASET = UUID("0190f4d2-0000-7000-8000-00000000d5e7")
LABELS = ("negative", "neutral", "positive")


def prediction(
    i: int, text: str, dataset: UUID | None = None, group: str | None = None, fallback: bool = False
) -> Prediction:
    label = LABELS[i % 3]
    confidence = round(0.30 + 0.05 * ((i * 7) % 13), 2)  # distinct for i < 13, in a scrambled order
    return Prediction(
        id=UUID(str(uuid7())),
        text=text,
        sentiment=label,  # type: ignore[arg-type]
        confidence=confidence,
        scores={label: confidence, "other": 1 - confidence}
        if label != "neutral"
        else {"neutral": confidence},
        model_requested="a",
        model_used="vader" if fallback else ("a" if i % 2 else "b"),
        fallback_used=fallback,
        processing_time_ms=1.5,
        timestamp=T0 + timedelta(minutes=i),
        dataset_id=dataset,
        group=group,
    )


LIVE = [prediction(i, f"live {i}", fallback=i % 4 == 0) for i in range(12)] + [
    prediction(12, "=HYPERLINK(1)")
]
CORPUS = [prediction(i, f"tweet {i}", DATASET, ("United", "Delta")[i % 2]) for i in range(6)]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncTestClient]:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await PredictionRepository(connection).add_many([*LIVE, *CORPUS], store_text=True)
    await engine.dispose()
    async with AsyncTestClient(app=create_app(make_settings(database_url))) as client:
        yield client


async def listing(client: AsyncTestClient, **params: object) -> dict[str, object]:
    response = await client.get("/predictions", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def every_page(client: AsyncTestClient, **params: object) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    cursor = None
    while True:
        page = await listing(client, **params, **({"cursor": cursor} if cursor else {}))
        rows += page["predictions"]  # type: ignore[arg-type]
        if (cursor := page["next_cursor"]) is None:
            return rows


def texts(rows: list[dict[str, object]]) -> list[object]:
    return [row["text"] for row in rows]


async def test_the_list_is_live_traffic_newest_first_unless_a_data_set_is_named(
    client: AsyncTestClient,
) -> None:
    live = await listing(client)
    assert live["total"] == 13 and live["next_cursor"] is None
    assert texts(live["predictions"]) == ["=HYPERLINK(1)", *(f"live {i}" for i in reversed(range(12)))]  # type: ignore[arg-type]
    corpus = await listing(client, dataset=str(DATASET), group="Delta")
    assert texts(corpus["predictions"]) == ["tweet 5", "tweet 3", "tweet 1"]  # type: ignore[arg-type]
    first = corpus["predictions"][0]  # type: ignore[index]
    assert (first["group"], first["dataset_id"], first["created_at"]) == (
        "Delta",
        str(DATASET),
        "2026-03-01T12:05:00Z",
    )


async def test_keyset_pages_see_every_row_once_in_every_sort(client: AsyncTestClient) -> None:
    for sort, key, reverse in [
        ("newest", "created_at", True),
        ("oldest", "created_at", False),
        ("most_confident", "confidence", True),
        ("least_confident", "confidence", False),
    ]:
        rows = await every_page(client, sort=sort, limit=4)
        assert len(rows) == 13 and len({row["id"] for row in rows}) == 13, sort
        assert rows == sorted(rows, key=lambda row: (row[key], row["id"]), reverse=reverse), sort  # type: ignore[index, return-value]


async def test_filters_combine(client: AsyncTestClient) -> None:
    fallback = await listing(client, fallback="true")
    assert texts(fallback["predictions"]) == ["live 8", "live 4", "live 0"]  # type: ignore[arg-type]
    assert {row["model_used"] for row in fallback["predictions"]} == {"vader"}  # type: ignore[union-attr]
    window = await listing(
        client, since="2026-03-01T12:03:00Z", until="2026-03-01T12:09:00Z", label="positive", fallback="false"
    )
    assert texts(window["predictions"]) == ["live 5"]  # type: ignore[arg-type]
    by_model = await listing(client, model="a", q="LIVE 1")
    assert texts(by_model["predictions"]) == ["live 11", "live 1"]  # type: ignore[arg-type]


async def test_a_cursor_that_is_not_ours_or_of_another_sort_is_400(client: AsyncTestClient) -> None:
    page = await listing(client, limit=2)
    other_sort = await client.get(
        "/predictions", params={"limit": 2, "cursor": page["next_cursor"], "sort": "oldest"}
    )
    assert other_sort.status_code == 400 and "sort=newest" in other_sort.text
    assert (await client.get("/predictions", params={"cursor": "not-a-cursor"})).status_code == 400
    assert (await client.get("/predictions", params={"limit": 0})).status_code == 400
    assert (await client.get("/predictions", params={"label": "happy"})).status_code == 400


async def test_csv_export_holds_the_filtered_rows_with_formulas_made_inert(client: AsyncTestClient) -> None:
    response = await client.get("/predictions/export.csv", params={"fallback": "false"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="predictions-')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    listed = await every_page(client, fallback="false")
    assert [row["id"] for row in rows] == [row["id"] for row in listed] and len(rows) == 10
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["text"] == "'=HYPERLINK(1)"  # a spreadsheet shows it as text instead of running it
    neutral = next(row for row in rows if row["sentiment"] == "neutral")
    assert (neutral["score_negative"], neutral["score_positive"], neutral["fallback_used"]) == (
        "",
        "",
        "false",
    )


async def test_json_lines_export_equals_the_list_row_for_row(client: AsyncTestClient) -> None:
    response = await client.get("/predictions/export.jsonl", params={"dataset": str(DATASET)})
    assert response.headers["content-type"] == "application/x-ndjson"
    exported = [json.loads(line) for line in response.text.splitlines()]
    assert exported == await every_page(client, dataset=str(DATASET))
    assert len(exported) == 6


async def test_the_page_keeps_its_filters_in_its_links_and_its_export(client: AsyncTestClient) -> None:
    html = (await client.get("/ui/predictions", params={"dataset": str(DATASET), "group": "United"})).text
    assert 'data-total="3"' in html and "from the data set" in html
    assert f"/predictions/export.csv?dataset={DATASET}&amp;group=United" in html
    live = (await client.get("/ui/predictions")).text
    assert 'data-total="13"' in live and "tweet 0" not in live


async def test_rows_sharing_a_time_are_paged_once_each(database_url: str) -> None:
    # A data set's chunk is stored with one time for all its rows: the id alone orders them.
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    same = [msgspec.structs.replace(prediction(i, f"tied {i}", DATASET), timestamp=T0) for i in range(9)]
    async with engine.begin() as connection:
        await PredictionRepository(connection).add_many(same, store_text=True)
    await engine.dispose()
    async with AsyncTestClient(app=create_app(make_settings(database_url))) as client:
        for sort in ("newest", "oldest"):
            rows = await every_page(client, dataset=str(DATASET), sort=sort, limit=2)
            assert sorted(texts(rows)) == sorted(f"tied {i}" for i in range(9)), sort
        assert (await listing(client, dataset=str(DATASET)))["total"] == 9
