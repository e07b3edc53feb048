"""Limits and privacy: rate limit, body size, retention."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from sentiment.app import create_app
from sentiment.settings import Settings, SettingsError
from sentiment.storage.database import create_engine
from sentiment.storage.retention import delete_predictions_before
from sentiment.storage.tables import PredictionRow
from tests.conftest import in_app, make_settings


async def test_one_rate_limit_covers_every_path_that_scores_text(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, rate_limit=("minute", 4)))
    async with AsyncTestClient(app=app) as client:
        page = (await client.get("/ui/analyze")).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        answers = [
            await client.post("/predict", json={"text": "one"}),
            await client.post("/predict/batch", json={"texts": ["two"]}),
            await client.post("/ui/analyze", data={"text": "three", "csrf_token": token}),
            await client.post(
                "/datasets",
                files={"file": ("a.csv", b"text\nfour\n", "text/csv")},
                data={"text_column": "text"},
            ),
            await client.post("/ui/analyze", data={"text": "five", "csrf_token": token}),
        ]
        reads = [await client.get("/datasets") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 202, 429]
    assert all(r.status_code == 200 for r in reads)  # reading is not scoring


async def test_rate_limit_answers_429_with_retry_after_on_predictions_only(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, rate_limit=("minute", 3)))
    async with AsyncTestClient(app=app) as client:
        answers = [await client.post("/predict", json={"text": f"t{i}"}) for i in range(4)]
        health = [await client.get("/health") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[3].headers["retry-after"]) >= 1
    assert "rate limit" in answers[3].json()["detail"]
    assert all(h.status_code == 200 for h in health)


def test_rate_limit_setting_is_parsed_and_off_by_default() -> None:
    assert Settings.from_env({}).rate_limit is None
    assert Settings.from_env({"SENTIMENT_RATE_LIMIT": "120/minute"}).rate_limit == ("minute", 120)
    assert Settings.from_env({"SENTIMENT_RATE_LIMIT": "5/seconds"}).rate_limit == ("second", 5)
    with pytest.raises(SettingsError, match="SENTIMENT_RATE_LIMIT"):
        Settings.from_env({"SENTIMENT_RATE_LIMIT": "lots"})


async def test_request_body_over_the_limit_is_a_413(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, max_body_bytes=2048))
    async with AsyncTestClient(app=app) as client:
        response = await client.post("/predict/batch", json={"texts": ["word " * 100] * 10})
    assert response.status_code == 413


async def test_retention_deletes_only_rows_older_than_the_cutoff(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app) as client:
        for i in range(3):
            await client.post("/predict", json={"text": f"text {i}"})
        in_app(client, app.state.resources.writer.flush, 10)
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        newest = (await connection.scalars(select(PredictionRow.created_at))).all()
        await connection.execute(
            PredictionRow.__table__.update()
            .where(PredictionRow.text == "text 0")
            .values(created_at=datetime.now(UTC) - timedelta(days=40))
        )
    deleted = await delete_predictions_before(engine, datetime.now(UTC) - timedelta(days=30))
    async with engine.connect() as connection:
        left = (await connection.scalars(select(PredictionRow.text))).all()
    await engine.dispose()
    assert len(newest) == 3 and deleted == 1
    assert sorted(left) == ["text 1", "text 2"]


async def test_json_nested_too_deep_is_a_400_not_a_500(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    async with AsyncTestClient(app=app) as client:
        answers = []
        for depth in (1_000, 20_000):
            body = '{"text": ' + "[" * depth + "]" * depth + "}"
            answers.append(
                await client.post("/predict", content=body, headers={"content-type": "application/json"})
            )
    assert [answer.status_code for answer in answers] == [400, 400]
    assert answers[0].json() == {"status_code": 400, "detail": "the JSON body nests too deeply"}


@pytest.mark.parametrize("text", ["\u200b\u200b", "\ufeff \u200d\n", "\u2060\u00ad\t"])
async def test_a_text_of_invisible_characters_only_is_refused_like_an_empty_one(
    sqlite_url: str, text: str
) -> None:
    app = create_app(make_settings(sqlite_url))
    async with AsyncTestClient(app=app) as client:
        single = await client.post("/predict", json={"text": text})
        batch = await client.post("/predict/batch", json={"texts": ["fine", text]})
        visible = await client.post("/predict", json={"text": "\u200bgood\u200b"})
    assert single.status_code == 400
    assert "text is empty or whitespace only" in single.json()["detail"]
    assert batch.status_code == 400
    assert "texts[1] is empty or whitespace only" in batch.json()["detail"]
    assert visible.status_code == 200
