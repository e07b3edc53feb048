"""A corpus scored apart (`sentiment score`, on one machine or a cluster) imported as a data set, on SQLite
and Postgres: its report is the one an upload of the same rows gets, an interrupted import goes on where it
stopped, and a finished one is not stored twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from sentiment.app import create_app
from sentiment.services import imports
from sentiment.services.imports import ImportOptions, import_scores
from sentiment.services.offline import ScoreRequest, score_file
from sentiment.storage.database import create_engine
from sentiment.storage.tables import PredictionRow
from tests.integration.test_datasets import AIRLINE_COLUMNS, airline_sample, finished, settings_for, upload

OPTIONS = ImportOptions(
    name="airline, scored apart",
    model="vader",
    text_column="text",
    time_column="tweet_created",
    group_column="airline",
    gold_column="airline_sentiment",
)


async def scored_sample(settings: Any, folder: Path, rows: int) -> Path:
    target = folder / "scored.csv"
    request = ScoreRequest(airline_sample(folder, rows), target, "text", "vader", 100)
    await score_file(settings, request, show_bar=False)
    return target


async def stored_predictions(url: str, dataset_id: object) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = select(func.count()).where(PredictionRow.dataset_id == dataset_id)
            return int(await connection.scalar(query) or 0)
    finally:
        await engine.dispose()


async def test_an_imported_corpus_reads_on_the_pages_as_the_same_rows_uploaded(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    summary = await import_scores(
        settings, await scored_sample(settings, tmp_path, 600), OPTIONS, show_bar=False
    )
    assert (summary.rows, summary.scored, summary.skipped, summary.resumed_after) == (600, 600, 0, 0)
    async with AsyncTestClient(app=create_app(settings)) as client:
        dataset_id = str(summary.dataset_id)
        body = (await client.get(f"/datasets/{dataset_id}")).json()
        assert (body["status"], body["name"], body["model"], body["rows_scored"]) == (
            "done",
            "airline, scored apart",
            "vader",
            600,
        )
        imported = (await client.get(f"/datasets/{dataset_id}/report")).json()
        uploaded_id = (
            await upload(
                client, airline_sample(tmp_path, 600), "airline.csv", model="vader", **AIRLINE_COLUMNS
            )
        ).json()["id"]
        assert (await finished(client, uploaded_id))["status"] == "done"
        uploaded = (await client.get(f"/datasets/{uploaded_id}/report")).json()
        for part in ("distribution", "trend_bucket", "trend", "groups", "group_count"):
            assert imported[part] == uploaded[part], part
        assert imported["metrics"]["vader"] == uploaded["metrics"]["vader"]
        page = await client.get(f"/ui/datasets/{dataset_id}")
        assert page.status_code == 200 and "airline, scored apart" in page.text
        export = await client.get(f"/datasets/{dataset_id}/export")
        assert export.status_code == 200
        assert export.text.splitlines()[0].endswith(
            "label,confidence,score_negative,score_neutral,score_positive"
        )
    assert await stored_predictions(database_url, summary.dataset_id) == 600


async def test_an_interrupted_import_goes_on_where_it_stopped_and_stores_each_row_once(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(database_url, tmp_path)  # chunks of 64 rows
    source = await scored_sample(settings, tmp_path, 600)
    real_store = imports.store_chunk
    calls = 0

    async def crash_on_the_fourth_chunk(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("the machine went away")
        await real_store(*args)

    monkeypatch.setattr(imports, "store_chunk", crash_on_the_fourth_chunk)
    with pytest.raises(RuntimeError):
        await import_scores(settings, source, OPTIONS, show_bar=False)
    monkeypatch.setattr(imports, "store_chunk", real_store)

    resumed = await import_scores(settings, source, OPTIONS, show_bar=False)
    assert resumed.resumed_after == 3 * 64
    assert (resumed.scored, resumed.skipped, resumed.already_done) == (600, 0, False)
    assert await stored_predictions(database_url, resumed.dataset_id) == 600
    again = await import_scores(settings, source, OPTIONS, show_bar=False)
    assert again.already_done and again.dataset_id == resumed.dataset_id
    assert await stored_predictions(database_url, resumed.dataset_id) == 600
    async with AsyncTestClient(app=create_app(settings)) as client:
        report = (await client.get(f"/datasets/{resumed.dataset_id}/report")).json()
    assert sum(report["distribution"].values()) == 600
    assert report["metrics"]["vader"]["total"] == 600


async def test_a_file_that_was_never_scored_is_refused_before_anything_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    with pytest.raises(imports.TableError, match="has no scored columns"):
        await import_scores(settings, airline_sample(tmp_path, 10), OPTIONS, show_bar=False)
