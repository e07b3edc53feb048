"""The data folder's bounds and an admin's hold on data sets, in-process on SQLite and Postgres: the quota and
the disk's spare room refuse uploads and stop jobs, uploads nobody started expire, an admin cancels a job or
deletes a data set with everything stored of it, and a data-set start is charged for its rows in the rate
limit."""

from __future__ import annotations

import asyncio
import errno
import io
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sentiment.app import create_app
from sentiment.core.clock import utc_now
from sentiment.services import datasets as datasets_module
from sentiment.services.settings import DatasetSettings
from sentiment.settings import Settings
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.datasets import Dataset, DatasetRepository
from sentiment.storage.tables import DatasetCountRow, DatasetRow, PredictionRollupRow, PredictionRow
from tests.conftest import in_app, make_settings, page_csrf

ADMIN = {"authorization": "Bearer s3cret"}
QUOTA_16_KB = 16 / 1024


def settings_for(
    url: str, folder: Path, datasets: dict[str, Any] | None = None, **overrides: Any
) -> Settings:
    return make_settings(
        url,
        admin_token="s3cret",
        datasets=DatasetSettings(data_dir=str(folder / "data"), chunk_rows=64, **(datasets or {})),
        **overrides,
    )


def lines(count: int) -> bytes:
    """A CSV of `count` short texts, about 21 bytes a row."""
    return b"text\n" + b"".join(f"a fine day number {i}\n".encode() for i in range(count))


async def upload(client: AsyncTestClient, content: bytes) -> Any:
    return await client.post(
        "/datasets", files={"file": ("data.csv", content, "text/csv")}, data={"text_column": "text"}
    )


async def page_upload(client: AsyncTestClient, content: bytes) -> Any:
    token = await page_csrf(client)
    return await client.post(
        "/ui/datasets", files={"file": ("page.csv", content, "text/csv")}, headers={"x-csrf-token": token}
    )


def uploaded_id(page: Any) -> str:
    match = re.search(r'hx-post="/ui/datasets/([0-9a-f-]+)/start"', page.text)
    assert match, page.text
    return match.group(1)


async def until(client: AsyncTestClient, dataset_id: str, done: Callable[[dict[str, Any]], bool]) -> Any:
    deadline = asyncio.get_running_loop().time() + 60
    while not done(body := (await client.get(f"/datasets/{dataset_id}")).json()):
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.02)
    return body


def finished(body: dict[str, Any]) -> bool:
    return body["status"] not in {"queued", "counting", "scoring"}


def hold_after_first_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs store their first chunk, then wait at the second until cancelled: a job caught running."""
    real = datasets_module.store_chunk
    stored = 0

    async def store(*args: Any) -> None:
        nonlocal stored
        stored += 1
        if stored > 1:
            await asyncio.Event().wait()
        await real(*args)

    monkeypatch.setattr(datasets_module, "store_chunk", store)


async def job_names() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("dataset-")}


def folder_of(tmp_path: Path, dataset_id: str) -> Path:
    return tmp_path / "data" / dataset_id


# -- quota and spare room ------------------------------------------------------------------------------------


async def test_an_upload_past_the_quota_is_refused_with_507_saying_what_is_used_and_leaves_nothing(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, {"quota_mb": QUOTA_16_KB})
    async with AsyncTestClient(app=create_app(settings)) as client:
        refused = await upload(client, lines(1000))  # 21 KB
        assert refused.status_code == 507, refused.text
        detail = refused.json()["detail"]
        assert detail.startswith("the data sets' files would pass their quota: ")
        assert "of 16 KB used (SENTIMENT_DATA_QUOTA_MB); delete data sets that are no longer needed" in detail
        assert "DELETE /datasets/{id}" in detail
        assert list((tmp_path / "data").iterdir()) == []
        page = await page_upload(client, lines(1000))
        assert "would pass their quota" in page.text
        assert list((tmp_path / "data").iterdir()) == []
        assert (await client.get("/datasets")).json() == []
        # What was refused was removed, so a small file fits.
        small = await upload(client, lines(10))
        assert small.status_code == 202
        await until(client, small.json()["id"], finished)


async def test_a_disk_that_fills_during_an_upload_is_a_507_saying_so_and_leaves_nothing(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quota cannot see a disk filled by others: the write that finds it full is a 507, not a 500."""

    class FullDisk(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    opened = datasets_module.Upload.__init__

    def opened_on_a_full_disk(upload: Any, *args: Any, **kwargs: Any) -> None:
        opened(upload, *args, **kwargs)
        upload._file.close()
        upload._file = FullDisk()

    monkeypatch.setattr(datasets_module.Upload, "__init__", opened_on_a_full_disk)
    async with AsyncTestClient(app=create_app(settings_for(sqlite_url, tmp_path))) as client:
        refused = await upload(client, lines(100))
        listed = (await client.get("/datasets")).json()
    assert refused.status_code == 507, refused.text
    assert refused.json()["detail"].startswith(
        "the disk holding the data sets is full (No space left on device)"
    )
    assert list((tmp_path / "data").iterdir()) == [] and listed == []


async def test_a_job_whose_scored_file_would_pass_the_quota_fails_in_one_line_without_a_partial_file(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, {"quota_mb": QUOTA_16_KB})
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await upload(client, lines(500))  # 10.5 KB fits; its scored copy does not
        assert response.status_code == 202, response.text
        dataset_id = response.json()["id"]
        body = await until(client, dataset_id, finished)
    assert body["status"] == "failed"
    assert body["error"].startswith("the data sets' files would pass their quota: ")
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    assert sorted(path.name for path in folder_of(tmp_path, dataset_id).iterdir()) == ["source.csv"]


async def test_an_upload_is_refused_when_the_disk_is_short_of_its_spare_room(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, {"min_free_mb": 1e9})
    async with AsyncTestClient(app=create_app(settings)) as client:
        refused = await upload(client, lines(10))
        assert refused.status_code == 507
        assert (
            "free, under the 1,000,000,000 MB it keeps spare (SENTIMENT_DATA_MIN_FREE_MB)"
            in (refused.json()["detail"])
        )
        assert (await client.get("/datasets")).json() == []
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


# -- expiry --------------------------------------------------------------------------------------------------


async def make_old(engine: AsyncEngine, ids: list[str], hours: float) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(DatasetRow)
            .where(DatasetRow.id.in_([UUID(i) for i in ids]))
            .values(created_at=utc_now() - timedelta(hours=hours))
        )


async def test_only_uploads_never_started_and_older_than_the_limit_expire(
    database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path, {"upload_expiry_hours": 1.0})
    async with AsyncTestClient(app=create_app(settings)) as client:
        stale = uploaded_id(await page_upload(client, lines(3)))
        fresh = uploaded_id(await page_upload(client, lines(3)))
        scored = (await upload(client, lines(3))).json()["id"]
        await until(client, scored, finished)
        in_app(client, make_old, client.app.state.resources.engine, [stale, scored], 2)
        expired = in_app(client, client.app.state.services.datasets.expire_uploads)
        assert expired == 1
        assert (await client.get(f"/datasets/{stale}")).status_code == 404
        assert (await client.get(f"/datasets/{fresh}")).json()["status"] == "uploaded"
        assert (await client.get(f"/datasets/{scored}/export")).status_code == 200
    assert not folder_of(tmp_path, stale).exists()
    assert folder_of(tmp_path, fresh).exists() and folder_of(tmp_path, scored).exists()


async def test_the_app_sweeps_expired_uploads_in_the_background(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    old = Dataset(
        id=uuid7(),
        name="old.csv",
        status="uploaded",
        created_at=utc_now() - timedelta(hours=25),
        size_bytes=8,
        columns=["text"],
    )
    async with engine.begin() as connection:
        await DatasetRepository(connection).add(old)
    await engine.dispose()
    folder = folder_of(tmp_path, str(old.id))
    folder.mkdir(parents=True)
    (folder / "source.csv").write_bytes(b"text\nhi\n")
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        deadline = asyncio.get_running_loop().time() + 30
        while (await client.get(f"/datasets/{old.id}")).status_code != 404:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
    assert not folder.exists()


# -- cancel and delete ---------------------------------------------------------------------------------------


async def stored_rows(engine: AsyncEngine, dataset_id: UUID) -> tuple[int, int, int, int]:
    """The data set's predictions, counts and rollups, and the live predictions."""

    async def count(table: Any, *where: Any) -> int:
        return int(await connection.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    async with engine.connect() as connection:
        return (
            await count(PredictionRow, PredictionRow.dataset_id == dataset_id),
            await count(DatasetCountRow, DatasetCountRow.dataset_id == dataset_id),
            await count(PredictionRollupRow, PredictionRollupRow.dataset_key == dataset_id),
            await count(PredictionRow, PredictionRow.dataset_id.is_(None)),
        )


async def test_delete_needs_an_admin_and_removes_files_row_counts_and_predictions(
    database_url: str, tmp_path: Path
) -> None:
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        assert (await client.post("/predict", json={"text": "a live text"})).status_code == 200
        dataset_id = (await upload(client, lines(100))).json()["id"]
        assert (await until(client, dataset_id, finished))["status"] == "done"
        engine = client.app.state.resources.engine
        in_app(client, client.app.state.resources.writer.flush, 10)
        before = in_app(client, stored_rows, engine, UUID(dataset_id))
        refused = [
            await client.delete(f"/datasets/{dataset_id}"),
            await client.delete(f"/datasets/{dataset_id}", headers={"authorization": "Bearer guess"}),
        ]
        kept = (await client.get(f"/datasets/{dataset_id}")).status_code
        deleted = await client.delete(f"/datasets/{dataset_id}", headers=ADMIN)
        after = [
            (await client.get(f"/datasets/{dataset_id}{path}")).status_code
            for path in ("", "/report", "/export")
        ]
        again = await client.delete(f"/datasets/{dataset_id}", headers=ADMIN)
        rows = in_app(client, stored_rows, engine, UUID(dataset_id))
    assert before[0] == 100 and before[1] > 0 and before[2] > 0 and before[3] == 1
    assert [r.status_code for r in refused] == [401, 401] and kept == 200
    assert deleted.status_code == 204
    assert after == [404, 404, 404] and again.status_code == 404
    assert rows == (0, 0, 0, 1)  # live predictions are not the data set's
    assert not folder_of(tmp_path, dataset_id).exists()


async def test_cancel_stops_a_running_job_keeping_its_progress_and_refuses_one_not_running(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        done = (await upload(client, lines(3))).json()["id"]
        await until(client, done, finished)
        hold_after_first_chunk(monkeypatch)
        running = (await upload(client, lines(200))).json()["id"]
        await until(client, running, lambda body: body["rows_done"] == 64)
        assert list(folder_of(tmp_path, running).glob("scored.*.part"))
        unauthorised = await client.post(f"/datasets/{running}/cancel")
        cancelled = await client.post(f"/datasets/{running}/cancel", headers=ADMIN)
        jobs = in_app(client, job_names)
        again = await client.post(f"/datasets/{running}/cancel", headers=ADMIN)
        finished_one = await client.post(f"/datasets/{done}/cancel", headers=ADMIN)
        unknown = await client.post(f"/datasets/{uuid7()}/cancel", headers=ADMIN)
        later = (await client.get(f"/datasets/{running}")).json()
    assert unauthorised.status_code == 401
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["rows_done"], body["rows_total"]) == ("cancelled", 64, 200)
    assert f"dataset-{running}" not in jobs
    assert sorted(path.name for path in folder_of(tmp_path, running).iterdir()) == ["source.csv"]
    assert again.status_code == 409 and "cancelled, not being scored" in again.json()["detail"]
    assert finished_one.status_code == 409 and "is done" in finished_one.json()["detail"]
    assert unknown.status_code == 404
    assert (later["status"], later["rows_done"]) == ("cancelled", 64)


async def test_deleting_a_running_data_set_cancels_its_job_first(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold_after_first_chunk(monkeypatch)
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        running = (await upload(client, lines(200))).json()["id"]
        await until(client, running, lambda body: body["rows_done"] == 64)
        deleted = await client.delete(f"/datasets/{running}", headers=ADMIN)
        jobs = in_app(client, job_names)
        gone = (await client.get(f"/datasets/{running}")).status_code
        rows = in_app(client, stored_rows, client.app.state.resources.engine, UUID(running))
    assert deleted.status_code == 204 and gone == 404
    assert f"dataset-{running}" not in jobs
    assert rows[:3] == (0, 0, 0)
    assert not folder_of(tmp_path, running).exists()


async def login(client: AsyncTestClient) -> str:
    """Log the client's session in as the admin; the session's new CSRF token."""
    token = await page_csrf(client, "/ui/login")
    await client.post("/ui/login", data={"token": "s3cret", "csrf_token": token}, follow_redirects=False)
    return await page_csrf(client)


async def test_admins_cancel_and_delete_from_the_pages_and_others_see_no_buttons(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold_after_first_chunk(monkeypatch)
    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        running = (await upload(client, lines(200))).json()["id"]
        await until(client, running, lambda body: body["rows_done"] == 64)
        anonymous = [
            (await client.get(f"/ui/datasets/{running}/progress")).text,
            (await client.get("/ui/datasets/recent")).text,
            (await client.get(f"/ui/datasets/{running}")).text,
        ]
        token = await page_csrf(client)
        refused = await client.post(f"/ui/datasets/{running}/delete", headers={"x-csrf-token": token})
        token = await login(client)
        progress = (await client.get(f"/ui/datasets/{running}/progress")).text
        recent = (await client.get("/ui/datasets/recent")).text
        page = (await client.get(f"/ui/datasets/{running}")).text
        cancelled = await client.post(f"/ui/datasets/{running}/cancel", headers={"x-csrf-token": token})
        no_csrf = await client.post(f"/ui/datasets/{running}/delete")
        deleted = await client.post(f"/ui/datasets/{running}/delete", headers={"x-csrf-token": token})
        gone = (await client.get(f"/datasets/{running}")).status_code
    assert not any("Delete" in html or 'id="dataset-cancel"' in html for html in anonymous)
    assert refused.status_code == 401
    assert f'hx-post="/ui/datasets/{running}/cancel"' in progress
    assert f'hx-post="/ui/datasets/{running}/delete"' in recent and 'hx-swap="delete"' in recent
    assert 'id="dataset-delete"' in page
    assert cancelled.status_code == 200 and 'data-status="cancelled"' in cancelled.text
    assert 'id="dataset-cancel"' not in cancelled.text
    assert no_csrf.status_code == 403
    assert deleted.status_code == 200 and "was deleted" in deleted.text and "data.csv" in deleted.text
    assert gone == 404


# -- the rate limit counts rows ------------------------------------------------------------------------------


async def test_a_data_set_start_costs_the_batch_requests_its_rows_would_take(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, tmp_path, rate_limit=("minute", 3), max_batch_size=2)
    async with AsyncTestClient(app=create_app(settings)) as client:
        started = await upload(client, lines(5))  # three batches of 2: the whole budget
        after = await client.post("/predict", json={"text": "one more"})
        await until(client, started.json()["id"], finished)
    assert started.status_code == 202, started.text
    assert after.status_code == 429
    assert int(after.headers["retry-after"]) == 20
    assert "a data-set start counting one per 2 of its rows" in after.json()["detail"]


async def test_a_data_set_started_from_the_page_is_charged_for_its_rows(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, tmp_path, rate_limit=("minute", 4), max_batch_size=2)
    async with AsyncTestClient(app=create_app(settings)) as client:
        dataset_id = uploaded_id(await page_upload(client, lines(5)))  # one unit
        token = await page_csrf(client)
        started = await client.post(  # three units: the request and two more batches
            f"/ui/datasets/{dataset_id}/start",
            headers={"x-csrf-token": token},
            data={"text_column": "text", "model": "vader"},
        )
        after = await client.post("/predict", json={"text": "one more"})
        await until(client, dataset_id, finished)
    assert started.status_code == 200 and 'id="dataset-progress"' in started.text
    assert after.status_code == 429


async def test_rows_past_the_first_look_are_charged_once_the_job_has_counted_them(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, tmp_path, rate_limit=("minute", 5), max_batch_size=1000)
    async with AsyncTestClient(app=create_app(settings)) as client:
        # 2,500 rows: the first look sees 2,000 (two batches), the count 2,500 (three).
        dataset_id = (await upload(client, lines(2500))).json()["id"]
        await until(client, dataset_id, lambda body: body["rows_total"] is not None)
        answers = [(await client.post("/predict", json={"text": f"t{i}"})).status_code for i in range(3)]
        await until(client, dataset_id, finished)
    assert answers == [200, 200, 429]
