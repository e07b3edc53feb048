"""Data sets end to end in-process, on SQLite and Postgres: upload, background scoring through the batching
engine, progress, the report (distribution, trend, groups, metrics), the export, and every refusal."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from alembic import command
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from uuid_utils.compat import uuid7

from sentiment.app import create_app
from sentiment.core.clock import utc_now
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import ModelSpec
from sentiment.services.analytics import AnalyticsFilters
from sentiment.services.settings import DatasetSettings
from sentiment.services.tabular import neutralised
from sentiment.storage.database import alembic_config, create_engine, upgrade
from sentiment.storage.datasets import Dataset, DatasetRepository
from sentiment.storage.tables import PredictionRow
from tests.conftest import DATA, in_app, make_settings, page_csrf, wait_until_settled

AIRLINE = DATA / "airline_tweets.csv"
AIRLINE_COLUMNS = {
    "text_column": "text",
    "time_column": "tweet_created",
    "group_column": "airline",
    "gold_column": "airline_sentiment",
}


def airline_sample(folder: Path, rows: int) -> Path:
    """The first `rows` rows of the airline CSV, byte for byte as the csv module writes them."""
    path = folder / f"airline-{rows}.csv"
    with (
        AIRLINE.open(encoding="utf-8", newline="") as source,
        path.open("w", encoding="utf-8", newline="") as out,
    ):
        reader, writer = csv.reader(source), csv.writer(out)
        for index, row in enumerate(reader):
            if index > rows:
                break
            writer.writerow(row)
    return path


def settings_for(url: str, folder: Path, **overrides: Any) -> Any:
    return make_settings(
        url, datasets=DatasetSettings(data_dir=str(folder / "data"), chunk_rows=64), **overrides
    )


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    app = create_app(settings_for(database_url, tmp_path))
    async with AsyncTestClient(app=app) as client:
        yield client


async def upload(client: AsyncTestClient, path: Path | bytes, name: str = "data.csv", **fields: str) -> Any:
    content = path.read_bytes() if isinstance(path, Path) else path
    return await client.post("/datasets", files={"file": (name, content, "text/csv")}, data=fields)


async def finished(client: AsyncTestClient, dataset_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        body = (await client.get(f"/datasets/{dataset_id}")).json()
        if body["status"] not in {"queued", "counting", "scoring"}:
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)


async def test_an_airline_sample_is_scored_with_its_time_group_and_gold_columns(
    client: AsyncTestClient, tmp_path: Path, database_url: str
) -> None:
    response = await upload(
        client, airline_sample(tmp_path, 500), "airline.csv", model="vader", **AIRLINE_COLUMNS
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/datasets/{response.json()['id']}"
    dataset_id = response.json()["id"]
    body = await finished(client, dataset_id)
    assert body["status"] == "done", body
    assert (body["rows_total"], body["rows_done"], body["rows_scored"], body["rows_skipped"]) == (
        500,
        500,
        500,
        0,
    )
    assert body["percent"] == 100.0 and body["rate_rows_per_s"] > 0 and body["eta_s"] is None
    assert body["time_format"] == "DD-MM-YYYY HH:MM"
    assert body["links"]["export"] == f"/datasets/{dataset_id}/export"

    report = (await client.get(f"/datasets/{dataset_id}/report")).json()
    assert sum(report["distribution"].values()) == 500
    assert report["trend_bucket"] == "hour"
    assert sum(sum(point["counts"].values()) for point in report["trend"]) == 500
    assert report["trend"][0]["start"] < report["trend"][-1]["start"]
    assert {group["name"] for group in report["groups"]} <= {
        "Virgin America",
        "United",
        "Southwest",
        "Delta",
        "US Airways",
        "American",
    }
    assert sum(group["total"] for group in report["groups"]) == 500
    # Each group over time, counted apart from the group totals and the trend, adds up to both.
    assert report["group_trend_bucket"] in ("hour", "day")
    assert set(report["group_trends"]) == {group["name"] for group in report["groups"]}
    for group in report["groups"]:
        points = report["group_trends"][group["name"]]
        for label in ("negative", "neutral", "positive"):
            assert sum(point["counts"][label] for point in points) == group["counts"][label]
    by_start: dict[str, int] = {}
    for points in report["group_trends"].values():
        for point in points:
            by_start[point["start"]] = by_start.get(point["start"], 0) + sum(point["counts"].values())
    if report["group_trend_bucket"] == "hour":
        assert by_start == {point["start"]: sum(point["counts"].values()) for point in report["trend"]}
    # The charts' numbers as CSV: the trend's rows first, then each group's, each bucket's counts as reported.
    trend_csv = await client.get(f"/datasets/{dataset_id}/trend.csv")
    assert trend_csv.headers["content-disposition"] == 'attachment; filename="airline-trend.csv"'
    lines = list(csv.DictReader(io.StringIO(trend_csv.text)))
    whole = [line for line in lines if line["group"] == ""]
    assert [int(line["n"]) for line in whole] == [sum(point["counts"].values()) for point in report["trend"]]
    assert {line["group"] for line in lines} - {""} == set(report["group_trends"])
    assert sum(int(line["negative"]) for line in lines if line["group"]) == report["distribution"]["negative"]
    # Example texts: the most confident stored rows of each label, overall and per group, from the file.
    source = {
        row["text"]: row for row in csv.DictReader(io.StringIO(airline_sample(tmp_path, 500).read_text()))
    }
    overall = [e for e in report["examples"] if e["group"] is None]
    assert {e["label"] for e in overall} <= {"negative", "neutral", "positive"} and 0 < len(overall) <= 9
    for label in ("negative", "neutral", "positive"):
        confidences = [e["confidence"] for e in overall if e["label"] == label]
        top = (
            await client.get(
                "/predictions",
                params={"dataset": dataset_id, "label": label, "sort": "most_confident", "limit": 3},
            )
        ).json()["predictions"]
        assert confidences == [row["confidence"] for row in top]  # the list API, sorted its own way, agrees
    per_group = [e for e in report["examples"] if e["group"] is not None]
    assert per_group and all(source[e["text"]]["airline"] == e["group"] for e in per_group)
    assert all(e["text"] in source for e in overall)
    vader = report["metrics"]["vader"]
    assert vader["total"] == 500 and sum(map(sum, vader["confusion"])) == 500
    assert 0 < vader["accuracy"] < 1

    export = await client.get(f"/datasets/{dataset_id}/export")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert export.headers["content-type"].count("charset") == 1
    assert 'filename="airline-scored.csv"' in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.text)))
    source_rows = list(csv.reader(io.StringIO(airline_sample(tmp_path, 500).read_text(encoding="utf-8"))))
    assert rows[0] == [
        *source_rows[0],
        "label",
        "confidence",
        "score_negative",
        "score_neutral",
        "score_positive",
    ]
    # Every input column, in input order; a cell a spreadsheet would run as a formula (a tweet starting with
    # @) made inert with a leading apostrophe.
    assert [row[:15] for row in rows[1:]] == [[neutralised(cell) for cell in row] for row in source_rows[1:]]
    assert any(row[10].startswith("'@") for row in rows[1:])
    assert {row[15] for row in rows[1:]} <= {"negative", "neutral", "positive"}

    # Stored as predictions carrying the data set and the group, counted in the analytics of the data set.
    services = client.app.state.services

    async def stored() -> tuple[dict[str, int], int]:
        async with client.app.state.resources.engine.connect() as connection:
            groups = dict(
                (
                    await connection.execute(
                        select(PredictionRow.group_name, func.count())
                        .where(PredictionRow.dataset_id == UUID(dataset_id))
                        .group_by(PredictionRow.group_name)
                    )
                ).all()
            )
        summary = await services.analytics.summary(AnalyticsFilters(dataset=UUID(dataset_id)))
        return groups, summary.total_predictions

    groups, total = in_app(client, stored)
    assert groups == {group["name"]: group["total"] for group in report["groups"]}
    assert total == 500


async def test_rows_that_cannot_be_scored_are_listed_by_line_and_skipped(client: AsyncTestClient) -> None:
    content = (
        b"id,text,when\n"
        b"1,great flight,24-02-2015 11:35\n"
        b"2,,24-02-2015 11:36\n"
        b"3,caf\xe9 awful,24-02-2015 11:37\n"
        b"4,too,many,fields\n"
        b'5,"two\nlines, fine",soon\n'
        b"6,terrible delay,24-02-2015 12:01\n"
    )
    response = await upload(client, content, text_column="text", time_column="when", model="vader")
    assert response.status_code == 202, response.text
    body = await finished(client, response.json()["id"])
    assert body["status"] == "done"
    assert (body["rows_total"], body["rows_scored"], body["rows_skipped"], body["problem_count"]) == (
        6,
        3,
        3,
        4,
    )
    assert body["problems"] == [
        {"line": 3, "reason": "the text ('text') is empty"},
        {"line": 4, "reason": "not valid UTF-8 (in field 2)"},
        {"line": 5, "reason": "4 fields where the header has 3"},
        {"line": 6, "reason": "time 'soon' is not DD-MM-YYYY HH:MM: scored, but left out of the time trend"},
    ]
    assert any("3 rows could not be scored" in note for note in body["notes"])
    assert any("1 rows have no readable time" in note for note in body["notes"])
    export = (await client.get(f"/datasets/{body['id']}/export")).text
    assert [row[0] for row in csv.reader(io.StringIO(export))] == ["id", "1", "5", "6"]
    report = (await client.get(f"/datasets/{body['id']}/report")).json()
    assert report["metrics"] == {}  # no gold column: no figures, rather than an accuracy of 0
    page = (await client.get(f"/ui/datasets/{body['id']}")).text
    assert 'id="dataset-metrics"' not in page and "accuracy" not in page


async def test_a_row_longer_than_the_limit_on_a_text_is_reported_not_scored(client: AsyncTestClient) -> None:
    """The API's 10,000 characters hold for rows too: an 80 KB row would hold up VADER for everyone."""
    at_limit, past_it = "good " * 2000, "bad " * 2500 + "!"
    content = f"text\nfine day\n{at_limit}\n{past_it}\nlast one\n".encode()
    response = await upload(client, content, text_column="text", model="vader")
    body = await finished(client, response.json()["id"])
    assert (body["status"], body["rows_scored"], body["rows_skipped"]) == ("done", 3, 1)
    assert body["problems"] == [
        {"line": 4, "reason": "the text ('text') is 10,001 characters; the limit is 10,000"}
    ]


async def test_the_export_neutralises_every_cell_a_spreadsheet_would_run_as_a_formula(
    client: AsyncTestClient,
) -> None:
    cells = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", "=cmd|' /C calc'!A0"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([["note", "text"], *([cell, f"fine day {i}"] for i, cell in enumerate(cells))])
    writer.writerow(["ok", "a = in the text"])
    content = out.getvalue()
    response = await upload(client, content.encode(), text_column="text", model="vader")
    assert response.status_code == 202, response.text
    body = await finished(client, response.json()["id"])
    assert body["status"] == "done", body
    raw = (await client.get(f"/datasets/{body['id']}/export")).text
    export = list(csv.reader(io.StringIO(raw, newline="")))
    assert [row[0] for row in export[1:]] == [*(f"'{cell}" for cell in cells), "ok"]
    assert export[-1][1] == "a = in the text"  # only a cell's first character counts


@pytest.mark.parametrize(
    ("content", "fields", "status", "message"),
    [
        (b"", {"text_column": "text"}, 400, "the file is empty"),
        (
            b"id,body\n1,hello\n",
            {"text_column": "text"},
            400,
            "no column 'text' to use as the text column; the columns are: 'id', 'body'",
        ),
        (b"text\n", {"text_column": "text"}, 400, "header but no rows"),
        (
            b'id,text\n1,fine\n2,"never closed\n3,more\n',
            {"text_column": "text"},
            400,
            "line 3: a quote opened here is never closed",
        ),
        (
            b"text,when\nhi,someday\n",
            {"text_column": "text", "time_column": "when"},
            400,
            "time column 'when': values such as 'someday'",
        ),
        (
            b"text,stars\nhi,good\nho,bad\n",
            {"text_column": "text", "gold_column": "stars"},
            400,
            "gold column 'stars'",
        ),
        (b"text\nhi\n", {"text_column": "text", "model": "nope"}, 404, "unknown model 'nope'"),
        (b"text\nhi\n", {"text_column": "text", "model": "minilm-sst2"}, 409, "not loaded"),
        (b"text\nhi\n", {}, 400, "text_column is required"),
    ],
)
async def test_a_refused_upload_says_why_and_leaves_nothing_behind(
    client: AsyncTestClient, tmp_path: Path, content: bytes, fields: dict[str, str], status: int, message: str
) -> None:
    response = await upload(client, content, **fields)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert (await client.get("/datasets")).json() == []
    assert not any((tmp_path / "data").glob("*/source.csv"))


async def test_numeric_gold_labels_that_fit_no_coding_fail_the_job_with_the_reason(
    client: AsyncTestClient,
) -> None:
    response = await upload(
        client, b"text,stars\nhi,1\nho,5\nhu,3\n", text_column="text", gold_column="stars"
    )
    assert response.status_code == 202, response.text
    body = await finished(client, response.json()["id"])
    assert body["status"] == "failed"
    assert body["error"].startswith(
        "gold column 'stars': its values ('1', '3', '5') are not sentiment labels"
    )


async def test_an_upload_that_is_not_multipart_or_holds_no_file_is_refused(client: AsyncTestClient) -> None:
    response = await client.post("/datasets", json={"text_column": "text"})
    assert response.status_code == 400 and "multipart/form-data" in response.json()["detail"]
    response = await client.post("/datasets", files={"text_column": (None, "text")})
    assert response.status_code == 400 and "holds no file" in response.json()["detail"]


async def test_an_upload_over_the_limit_is_refused_as_it_streams(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        database_url, datasets=DatasetSettings(data_dir=str(tmp_path / "data"), max_upload_bytes=2048)
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await upload(client, b"text\n" + b"a fine line of text\n" * 500, text_column="text")
        assert response.status_code == 413
        assert "2,048 bytes" in response.json()["detail"]
    assert list((tmp_path / "data").iterdir()) == []


async def test_unknown_data_sets_are_404_and_an_unfinished_export_is_409(client: AsyncTestClient) -> None:
    missing = "0190f4d2-0000-7000-8000-000000000000"
    for path in (
        f"/datasets/{missing}",
        f"/datasets/{missing}/report",
        f"/datasets/{missing}/export",
        f"/ui/datasets/{missing}",
    ):
        assert (await client.get(path)).status_code == 404, path
    html = (await client.get("/ui/analyze")).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    page = await client.post(
        "/ui/datasets", files={"file": ("a.csv", b"text\nhi\n", "text/csv")}, headers={"x-csrf-token": token}
    )
    dataset_id = re.search(r'hx-post="/ui/datasets/([0-9a-f-]+)/start"', page.text).group(1)  # type: ignore[union-attr]
    response = await client.get(f"/datasets/{dataset_id}/export")
    assert response.status_code == 409 and "uploaded" in response.json()["detail"]


async def test_the_page_flow_picks_columns_then_polls_progress_until_the_report(
    client: AsyncTestClient, tmp_path: Path
) -> None:
    html = (await client.get("/ui/analyze")).text
    assert 'id="dataset-upload"' in html and 'hx-encoding="multipart/form-data"' in html
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    sample = airline_sample(tmp_path, 200).read_bytes()

    refused = await client.post("/ui/datasets", files={"file": ("airline.csv", sample, "text/csv")})
    assert refused.status_code == 403

    form = await client.post(
        "/ui/datasets", files={"file": ("airline.csv", sample, "text/csv")}, headers={"x-csrf-token": token}
    )
    assert form.status_code == 200 and "<html" not in form.text
    assert '<option value="text" selected>' in form.text  # guessed
    assert '<option value="tweet_created" selected>' in form.text
    dataset_id = re.search(r'hx-post="/ui/datasets/([0-9a-f-]+)/start"', form.text).group(1)  # type: ignore[union-attr]

    wrong = await client.post(
        f"/ui/datasets/{dataset_id}/start",
        headers={"x-csrf-token": token},
        data={"text_column": "text", "gold_column": "name", "model": "vader"},
    )
    assert (
        "gold column &#39;name&#39;" in wrong.text and 'id="dataset-columns"' in wrong.text
    )  # the form again

    started = await client.post(
        f"/ui/datasets/{dataset_id}/start",
        headers={"x-csrf-token": token},
        data={
            "text_column": "text",
            "time_column": "tweet_created",
            "group_column": "airline",
            "gold_column": "airline_sentiment",
            "model": "vader",
        },
    )
    assert started.status_code == 200
    assert f'hx-get="/ui/datasets/{dataset_id}/progress"' in started.text
    assert 'id="dataset-progress"' in started.text
    await finished(client, dataset_id)
    done_response = await client.get(f"/ui/datasets/{dataset_id}/progress")
    done = done_response.text
    assert "hx-trigger" not in done  # polling stops
    # Every progress answer has the page's list of data sets refresh too: the two never disagree for long.
    assert done_response.headers["hx-trigger"] == "dataset-progress"
    analyze = (await client.get("/ui/analyze")).text
    assert 'hx-trigger="load, every 5s, dataset-progress from:body"' in analyze
    assert f'href="/datasets/{dataset_id}/export"' in done and 'value="200"' in done

    page = (await client.get(f"/ui/datasets/{dataset_id}")).text
    for section in ("dataset-distribution", "dataset-trend", "dataset-groups", "dataset-metrics"):
        assert f'id="{section}"' in page, section
    assert page.count("<svg") >= 3
    assert "accuracy" in page and "macro-F1" in page
    recent = (await client.get("/ui/datasets/recent")).text
    assert "airline.csv" in recent
    listed = (await client.get("/ui/datasets")).text  # the data sets page, in the menu
    assert f'href="/ui/datasets/{dataset_id}">airline.csv</a>' in listed
    assert 'aria-current="page">Data sets</a>' in listed and "<th>created</th>" in listed


async def test_a_model_and_vader_are_scored_side_by_side_and_a_binary_model_is_flagged(
    sqlite_url: str, tmp_path: Path, loader: Callable[[ModelSpec], Backend]
) -> None:
    app = create_app(settings_for(sqlite_url, tmp_path, default_model="minilm-sst2"), loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        response = await upload(client, airline_sample(tmp_path, 150), "airline.csv", **AIRLINE_COLUMNS)
        assert response.status_code == 202, response.text
        body = await finished(client, response.json()["id"])
        assert body["status"] == "done" and body["model"] == "minilm-sst2"
        report = (await client.get(f"/datasets/{body['id']}/report")).json()
        export = (await client.get(f"/datasets/{body['id']}/export")).text
    assert list(report["metrics"]) == ["minilm-sst2", "vader"]
    sst2, vader = report["metrics"]["minilm-sst2"], report["metrics"]["vader"]
    assert sst2["total"] == vader["total"] == 150
    neutral = next(c for c in sst2["classes"] if c["label"] == "neutral")
    assert neutral["predicted"] == 0 and neutral["precision"] is None and neutral["recall"] == 0.0
    assert any("minilm-sst2 answers only negative/positive" in note for note in body["notes"])
    assert csv.reader(io.StringIO(export)).__next__()[-3:] == [
        "confidence",
        "score_negative",
        "score_positive",
    ]


async def test_a_job_whose_process_stopped_shows_as_interrupted(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    stale = Dataset(
        id=uuid7(),
        name="old.csv",
        status="scoring",
        created_at=utc_now() - timedelta(hours=1),
        size_bytes=10,
        columns=["text"],
        heartbeat_at=utc_now() - timedelta(minutes=5),
    )
    async with engine.begin() as connection:
        await DatasetRepository(connection).add(stale)
    await engine.dispose()
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        assert (await client.get(f"/datasets/{stale.id}")).json()["status"] == "interrupted"


async def test_the_migration_goes_down_and_up_again(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0003")
    await asyncio.to_thread(upgrade, database_url)


async def test_a_utf16_upload_is_scored_and_exported_as_utf8(client: AsyncTestClient) -> None:
    content = "text,airline\ncaf\u00e9 was great,United\nawful delay,Delta\n".encode("utf-16")
    response = await upload(client, content, "unicode.csv", text_column="text", group_column="airline")
    assert response.status_code == 202, response.text
    body = await finished(client, response.json()["id"])
    assert (body["status"], body["rows_scored"]) == ("done", 2), body
    export = (await client.get(f"/datasets/{body['id']}/export")).content.decode("utf-8")
    assert [row[:2] for row in csv.reader(io.StringIO(export))][1:] == [
        ["caf\u00e9 was great", "United"],
        ["awful delay", "Delta"],
    ]


async def test_a_file_name_with_control_characters_is_kept_without_them(client: AsyncTestClient) -> None:
    # Written by hand: HTTP clients percent-encode such a name; an attacker's raw request does not.
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="tweets\x00 of\x1bmay.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\ntext\nhello\n\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; name="text_column"\r\n\r\ntext\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nvader\r\n'
        b"--XyZ--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=XyZ"}
    response = await client.post("/datasets", content=body, headers=headers)
    assert response.status_code == 202, response.text
    done = await finished(client, response.json()["id"])
    assert (done["status"], done["name"]) == ("done", "tweets ofmay.csv")
    export = await client.get(f"/datasets/{done['id']}/export")
    assert export.headers["content-disposition"] == "attachment; filename*=utf-8''tweets%20ofmay-scored.csv"


async def test_a_failed_job_says_why_in_one_line_without_sql_or_row_texts_and_leaves_no_partial_export(
    client: AsyncTestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from sentiment.services import datasets

    async def refused(*_args: object) -> None:
        statement = "INSERT INTO predictions (id, text) VALUES (?, ?)"
        raise IntegrityError(statement, ("0191", "my secret row"), Exception("NOT NULL constraint failed"))

    monkeypatch.setattr(datasets, "store_chunk", refused)
    response = await upload(client, b"text\nmy secret row\n", text_column="text", model="vader")
    body = await finished(client, response.json()["id"])
    assert body["status"] == "failed"
    assert body["error"] == (
        "the database failed while storing the rows (Exception); the service's log has the details"
    )
    assert not list((tmp_path / "data" / body["id"]).glob("*.part"))


async def test_rows_dated_centuries_apart_give_a_short_trend_not_every_month_between(
    client: AsyncTestClient,
) -> None:
    content = (
        b"text,when\ngreat,0001-01-01T10:00:00Z\nawful,5000-06-15T10:00:00Z\nfine,9999-12-31T10:00:00Z\n"
    )
    response = await upload(client, content, text_column="text", time_column="when", model="vader")
    body = await finished(client, response.json()["id"])
    assert body["status"] == "done", body
    report = await client.get(f"/datasets/{body['id']}/report")
    trend = report.json()["trend"]
    assert [point["start"][:7] for point in trend] == ["0001-01", "5000-06", "9999-12"]
    assert report.json()["trend_complete"] is False and len(report.content) < 10_000
    page = await client.get(f"/ui/datasets/{body['id']}")
    assert 'id="dataset-trend-gaps"' in page.text and len(page.content) < 200_000


def kappa(first: list[str], second: list[str]) -> float:
    """Cohen's kappa written out from its definition, apart from the service's own code."""
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    chance = sum((first.count(label) / n) * (second.count(label) / n) for label in set(first) | set(second))
    return (observed - chance) / (1 - chance)


async def test_a_data_set_scored_by_two_models_reports_their_agreement_kappa_and_disagreements(
    database_url: str, tmp_path: Path
) -> None:
    app = create_app(settings_for(database_url, tmp_path, default_model="minilm-tweets3"))
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        sample = airline_sample(tmp_path, 300)
        response = await upload(
            client,
            sample,
            "airline.csv",
            **AIRLINE_COLUMNS,
            model="vader",
            compare_models="minilm-tweets3, vader",
        )
        assert response.status_code == 202, response.text
        body = await finished(client, response.json()["id"])
        assert body["status"] == "done" and body["compare_models"] == ["minilm-tweets3"]
        report = (await client.get(f"/datasets/{body['id']}/report")).json()
        rows = list(csv.DictReader(io.StringIO(sample.read_text(encoding="utf-8"))))
        texts = [row["text"] for row in rows]
        answers: dict[str, list[dict[str, Any]]] = {}
        for model in ("vader", "minilm-tweets3"):
            for start in range(0, 300, 100):
                batch = {"texts": texts[start : start + 100], "model": model}
                answers.setdefault(model, []).extend(
                    (await client.post("/predict/batch", json=batch)).json()["results"]
                )
    labels = {model: [answer["sentiment"] for answer in results] for model, results in answers.items()}
    # The data set's stored predictions are the scoring model's only: the compared answers are not rows.
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = select(PredictionRow.model_used, func.count()).where(
            PredictionRow.dataset_id == UUID(body["id"])
        )
        assert (await connection.execute(stored.group_by(PredictionRow.model_used))).all() == [("vader", 300)]
    await engine.dispose()

    (pair,) = report["agreements"]
    assert (pair["first"], pair["second"], pair["rows"]) == ("vader", "minilm-tweets3", 300)
    same = sum(a == b for a, b in zip(labels["vader"], labels["minilm-tweets3"], strict=True))
    assert pair["observed"] == pytest.approx(same / 300)
    assert pair["kappa"] == pytest.approx(kappa(labels["vader"], labels["minilm-tweets3"]), abs=1e-9)
    assert set(report["metrics"]) == {"vader", "minilm-tweets3"}  # both against the gold labels

    disagreements = report["disagreements"]
    assert 0 < len(disagreements) <= 25
    assert len(disagreements) == min(25, 300 - same)
    spreads = [row["spread"] for row in disagreements]
    assert spreads == sorted(spreads, reverse=True)
    for row in disagreements:
        index = next(i for i, text in enumerate(texts) if text[:280] == row["text"])  # texts may span lines
        assert row["labels"] == {model: labels[model][index] for model in labels}
        assert row["labels"]["vader"] != row["labels"]["minilm-tweets3"]


async def test_comparing_with_an_unknown_model_is_refused_before_scoring(client: AsyncTestClient) -> None:
    response = await upload(client, b"text\nhi\n", text_column="text", model="vader", compare_models="nope")
    assert response.status_code == 404 and "nope" in response.text


async def test_the_column_picker_shows_the_first_rows_guesses_the_columns_and_warns_of_missing_labels(
    sqlite_url: str, tmp_path: Path
) -> None:
    lines = ["id,when,brand,sentiment_gold,body"]
    brands, labels = ("Acme", "Globex", "Initech"), ("negative", "neutral", "positive")
    for i in range(60):
        lines.append(
            f"{i},2026-03-0{1 + i % 9}T10:00:00Z,{brands[i % 3]},{labels[i % 3]},post number {i} about it"
        )
    content = ("\n".join(lines) + "\n").encode()
    app = create_app(settings_for(sqlite_url, tmp_path, default_model="minilm-sst2"))
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        token = await page_csrf(client)
        form = (
            await client.post(
                "/ui/datasets",
                files={"file": ("posts.csv", content, "text/csv")},
                headers={"x-csrf-token": token},
            )
        ).text
        dataset_id = re.search(r"/ui/datasets/([0-9a-f-]+)/start", form).group(1)  # type: ignore[union-attr]
        preview = form[
            form.index('id="dataset-preview"') : form.index("</table>", form.index('id="dataset-preview"'))
        ]
        assert preview.count("<tr>") == 1 + 5 and "post number 4 about it" in preview
        for select, column in [
            ("text", "body"),
            ("time", "when"),
            ("group", "brand"),
            ("gold", "sentiment_gold"),
        ]:
            chosen = re.search(rf'id="dataset-{select}".*?<option value="([^"]*)" selected>', form, re.DOTALL)
            assert chosen is not None and chosen.group(1) == column, select
        # The default model is binary, the gold labels are three: the form starts on one that has all three.
        model = re.search(r'id="dataset-model".*?<option value="([^"]*)" selected>', form, re.DOTALL)
        assert model is not None and model.group(1) == "vader"
        assert 'id="dataset-label-mismatch"' not in form
        binary = await client.get(
            f"/ui/datasets/{dataset_id}/label-check",
            params={"model": "minilm-sst2", "gold_column": "sentiment_gold"},
        )
        assert (
            "minilm-sst2 answers negative or positive only" in binary.text and "neutral rows" in binary.text
        )
        fine = await client.get(
            f"/ui/datasets/{dataset_id}/label-check",
            params={"model": "vader", "gold_column": "sentiment_gold"},
        )
        assert fine.status_code == 200 and "dataset-label-mismatch" not in fine.text
