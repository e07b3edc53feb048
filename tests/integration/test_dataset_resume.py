"""A data-set job stopped mid-way resumes and scores every row exactly once, on SQLite and Postgres: after a
kill (emulated: the job stopped between appending a chunk's rows to its export and storing them, its heartbeat
left to go stale) a second service takes it over; after a clean shutdown the service's next start does. The
predictions, the counts, the report and the export then equal an uninterrupted run's, a run taken for dead
that wakes up stores nothing more, and of two services that see the same stopped job exactly one resumes
it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sentiment.app import create_app
from sentiment.core.clock import utc_now
from sentiment.core.domain import VADER_KEY
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.catalogue import BUILTIN_MODELS, ModelSpec
from sentiment.inference.faults import Fault
from sentiment.inference.registry import ModelRegistry, load_backend
from sentiment.services import datasets as datasets_module
from sentiment.services.datasets import INTERRUPTED, DatasetOptions, DatasetService, Progress
from sentiment.services.settings import DatasetSettings
from sentiment.storage.database import create_engine
from sentiment.storage.datasets import RUNNING, Dataset, DatasetRepository, DatasetStatus
from sentiment.storage.tables import DatasetRow, PredictionRow
from tests.conftest import SST2_MODEL, in_app
from tests.integration.test_datasets import settings_for

CHUNK_ROWS = 64
ROWS = 300  # chunks of 64 usable rows; a few rows are problems
OPTIONS = DatasetOptions(
    text_column="text", model="vader", time_column="when", group_column="airline", gold_column="gold"
)
COMPARED_MODEL = "minilm-sst2"
LATER = timedelta(minutes=5)  # past STALE_AFTER_S: a heartbeat this old is a process gone


def corpus() -> bytes:
    """Unique texts with a time, a group and a gold label; some rows empty (skipped), one with an unreadable
    time, some without a usable gold label: every tally a job keeps has something to count."""
    words = ("great flight", "awful delay", "a flight", "lost my bag", "lovely crew")
    lines = ["text,when,airline,gold"]
    for i in range(ROWS):
        text = "" if i % 41 == 7 else f"{words[i % 5]} number {i}"
        when = "yesterday" if i == 150 else f"2015-02-{1 + i % 20:02d} {i % 24:02d}:15:00"
        gold = "n/a" if i % 29 == 3 else ("positive", "negative", "neutral", "negative", "positive")[i % 5]
        lines.append(f"{text},{when},{('United', 'Delta', 'Virgin America')[i % 3]},{gold}")
    return ("\n".join(lines) + "\n").encode()


class Replica(NamedTuple):
    datasets: DatasetService
    registry: ModelRegistry


@asynccontextmanager
async def replica(
    engine: AsyncEngine, folder: Path, clock: Callable[[], datetime] = utc_now, compare: bool = False
) -> AsyncIterator[Replica]:
    """A service process's data-set side: its own models and jobs, the shared database and data folder
    (`compare`: minilm-sst2 catalogued and loaded, to compare with)."""
    specs = BUILTIN_MODELS + ((ModelSpec(COMPARED_MODEL, str(SST2_MODEL)),) if compare else ())
    registry = ModelRegistry(specs, VADER_KEY, load_backend, BatchPolicy(), None)
    if compare:
        assert (await registry.load(COMPARED_MODEL)).loaded
    settings = DatasetSettings(data_dir=str(folder / "data"), chunk_rows=CHUNK_ROWS)
    datasets = DatasetService(engine, registry, settings, store_text=True, clock=clock)
    try:
        yield Replica(datasets, registry)
    finally:
        await datasets.close()
        await registry.close()


def later() -> datetime:
    return utc_now() + LATER


async def uploaded(datasets: DatasetService) -> UUID:
    upload = await datasets.receive("tweets.csv")
    await upload.write(corpus())
    return (await datasets.create(upload)).id


async def until(
    datasets: DatasetService, dataset_id: UUID, done: Callable[[Progress], bool], timeout_s: float = 60
) -> Progress:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        progress = await datasets.progress(dataset_id)
        assert progress is not None
        if done(progress):
            return progress
        assert asyncio.get_running_loop().time() < deadline, progress
        await asyncio.sleep(0.02)


def finished(progress: Progress) -> bool:
    return progress.status not in RUNNING


class Outcome(NamedTuple):
    """What a scored data set amounts to, run to run (ids and times aside)."""

    dataset: dict[str, Any]
    report: dict[str, Any]
    stored_texts: Counter[str | None]
    export: bytes


async def outcome(datasets: DatasetService, engine: AsyncEngine, dataset_id: UUID) -> Outcome:
    report = await datasets.report(dataset_id)
    assert report is not None
    kept = ("status", "rows_total", "rows_done", "rows_scored", "rows_skipped", "problems", "problem_count")
    dataset = {field: getattr(report.progress.dataset, field) for field in kept}
    dataset["notes"] = [note for note in report.progress.dataset.notes if "resumed" not in note]
    figures = msgspec.to_builtins(report)
    del figures["progress"]
    async with engine.connect() as connection:
        query = select(PredictionRow.text).where(PredictionRow.dataset_id == dataset_id)
        texts = Counter((await connection.scalars(query)).all())
    return Outcome(dataset, figures, texts, datasets.export_file(dataset_id).read_bytes())


async def uninterrupted(engine: AsyncEngine, folder: Path, options: DatasetOptions = OPTIONS) -> Outcome:
    async with replica(engine, folder, compare=bool(options.compare)) as first:
        dataset_id = await uploaded(first.datasets)
        await first.datasets.start(dataset_id, options)
        assert (await until(first.datasets, dataset_id, finished)).status == "done"
        return await outcome(first.datasets, engine, dataset_id)


class StopsAtChunk:
    """`store_chunk` for a job that stops at its `chunk`-th chunk, its rows appended to the export and not yet
    stored, as a process killed there; `wake` lets it go on, as a process taken for dead that was not."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
        self._real = datasets_module.store_chunk
        self._chunk = chunk
        self._calls = 0
        self.reached = asyncio.Event()
        self.wake = asyncio.Event()
        monkeypatch.setattr(datasets_module, "store_chunk", self)

    async def __call__(self, *args: Any) -> None:
        self._calls += 1
        if self._calls == self._chunk:
            self.reached.set()
            await self.wake.wait()
        await self._real(*args)


async def stored(engine: AsyncEngine, dataset_id: UUID) -> Dataset:
    async with engine.connect() as connection:
        dataset = await DatasetRepository(connection).get(dataset_id)
    assert dataset is not None
    return dataset


async def killed_mid_way(
    engine: AsyncEngine, first: Replica, monkeypatch: pytest.MonkeyPatch, options: DatasetOptions = OPTIONS
) -> tuple[UUID, StopsAtChunk]:
    """A job that stored two chunks and stopped before storing the third, whose rows are in its export: its
    heartbeat stays where the second chunk left it, as when its process is killed."""
    monkeypatch.setattr(datasets_module, "HEARTBEAT_S", 3600.0)
    stop = StopsAtChunk(monkeypatch, chunk=3)
    dataset_id = await uploaded(first.datasets)
    await first.datasets.start(dataset_id, options)
    await asyncio.wait_for(stop.reached.wait(), 60)
    before = await stored(engine, dataset_id)
    assert (before.status, before.rows_scored) == ("scoring", 2 * CHUNK_ROWS)
    part = first.datasets.export_file(dataset_id).with_name(f"scored.{before.run_id}.part")
    assert before.export_bytes is not None and part.stat().st_size > before.export_bytes
    return dataset_id, stop


async def job_ended(dataset_id: UUID) -> None:
    while any(task.get_name() == f"dataset-{dataset_id}" for task in asyncio.all_tasks()):
        await asyncio.sleep(0.02)


def assert_each_row_once(resumed: Outcome, baseline: Outcome) -> None:
    assert resumed.dataset == baseline.dataset
    assert resumed.dataset["status"] == "done"
    assert resumed.report == baseline.report
    assert max(resumed.stored_texts.values()) == 1
    assert resumed.stored_texts == baseline.stored_texts
    assert sum(resumed.stored_texts.values()) == baseline.dataset["rows_scored"]
    assert resumed.export == baseline.export


async def test_a_job_killed_mid_way_is_resumed_by_another_service_and_scores_every_row_once(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = await uninterrupted(engine, tmp_path / "baseline")
    async with replica(engine, tmp_path) as first:
        dataset_id, stop = await killed_mid_way(engine, first, monkeypatch)
        started_at = (await stored(engine, dataset_id)).started_at
        async with replica(engine, tmp_path, clock=later) as second:
            seen = await second.datasets.progress(dataset_id)
            assert seen is not None and (seen.status, seen.dataset.error) == ("interrupted", INTERRUPTED)
            assert await second.datasets.resume_stopped() == [dataset_id]
            # The first process was not dead after all: it wakes while the second one scores, and may no
            # longer store anything.
            stop.wake.set()
            await asyncio.wait_for(job_ended(dataset_id), 60)  # both runs
            done = await until(second.datasets, dataset_id, finished)
            resumed = await outcome(second.datasets, engine, dataset_id)
            details = second.registry.vader.details

    assert done.status == "done" and done.dataset.error is None
    assert done.dataset.resumes == 1 and done.dataset.started_at == started_at
    assert any("resumed once" in note for note in done.dataset.notes)
    assert done.dataset.model_details == details and details["model"] == VADER_KEY
    assert_each_row_once(resumed, baseline)
    assert sorted(path.name for path in (tmp_path / "data" / str(dataset_id)).iterdir()) == [
        "scored.csv",
        "source.csv",
    ]


async def test_a_comparison_killed_mid_way_resumes_with_its_agreement_and_disagreements_as_an_unbroken_run(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = msgspec.structs.replace(OPTIONS, compare=(COMPARED_MODEL,))
    baseline = await uninterrupted(engine, tmp_path / "baseline", options)
    async with replica(engine, tmp_path, compare=True) as first:
        dataset_id, stop = await killed_mid_way(engine, first, monkeypatch, options)
        async with replica(engine, tmp_path, clock=later, compare=True) as second:
            assert await second.datasets.resume_stopped() == [dataset_id]
            stop.wake.set()
            await asyncio.wait_for(job_ended(dataset_id), 60)
            assert (await until(second.datasets, dataset_id, finished)).status == "done"
            resumed = await outcome(second.datasets, engine, dataset_id)
    # The pair's table counts every scored row once, and the disagreements are those of the whole file.
    (pair,) = resumed.report["agreements"]
    assert (pair["first"], pair["second"], pair["rows"]) == (
        VADER_KEY,
        COMPARED_MODEL,
        baseline.dataset["rows_scored"],
    )
    assert (
        resumed.report["disagreements"]
        and resumed.report["disagreements"] == baseline.report["disagreements"]
    )
    assert_each_row_once(resumed, baseline)


async def test_of_two_services_that_see_the_same_stopped_job_exactly_one_resumes_it(
    engine: AsyncEngine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = await uninterrupted(engine, tmp_path / "baseline")
    engines = [create_engine(database_url), create_engine(database_url)]
    try:
        async with replica(engine, tmp_path) as first:
            dataset_id, stop = await killed_mid_way(engine, first, monkeypatch)
            async with (
                replica(engines[0], tmp_path, clock=later) as second,
                replica(engines[1], tmp_path, clock=later) as third,
            ):
                taken = await asyncio.gather(
                    second.datasets.resume_stopped(), third.datasets.resume_stopped()
                )
                assert sorted(taken) == [[], [dataset_id]]
                winner = second if taken[0] else third
                assert (await until(winner.datasets, dataset_id, finished)).status == "done"
                resumed = await outcome(winner.datasets, engine, dataset_id)
                assert await second.datasets.resume_stopped() == await third.datasets.resume_stopped() == []
            stop.wake.set()
            await asyncio.wait_for(job_ended(dataset_id), 30)
    finally:
        for extra in engines:
            await extra.dispose()
    assert (await stored(engine, dataset_id)).resumes == 1
    assert_each_row_once(resumed, baseline)


async def test_a_job_stopped_by_a_clean_shutdown_says_it_will_resume_and_the_next_start_finishes_it(
    engine: AsyncEngine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = await uninterrupted(engine, tmp_path / "baseline")
    async with replica(engine, tmp_path) as first:
        real = datasets_module.store_chunk
        calls = 0

        async def hang_after_two_chunks(*args: Any) -> None:
            nonlocal calls
            await real(*args)
            calls += 1
            if calls == 2:  # the model hangs on the third chunk, as a slow language model may
                first.registry.set_fault(VADER_KEY, Fault("hang", 60.0))

        monkeypatch.setattr(datasets_module, "store_chunk", hang_after_two_chunks)
        dataset_id = await uploaded(first.datasets)
        await first.datasets.start(dataset_id, OPTIONS)
        await until(first.datasets, dataset_id, lambda progress: progress.dataset.rows_done > 2 * CHUNK_ROWS)
        await first.datasets.close()
        first.registry.set_fault(VADER_KEY, None)
        stopped = await first.datasets.progress(dataset_id)
    monkeypatch.setattr(datasets_module, "store_chunk", real)
    assert stopped is not None
    assert (stopped.status, stopped.dataset.error) == ("interrupted", INTERRUPTED)
    assert "resumes when the service starts again" in INTERRUPTED

    async with AsyncTestClient(app=create_app(settings_for(database_url, tmp_path))) as client:
        deadline = asyncio.get_running_loop().time() + 60
        while (body := (await client.get(f"/datasets/{dataset_id}")).json())["status"] != "done":
            assert body["status"] in {"interrupted", *RUNNING}, body
            assert asyncio.get_running_loop().time() < deadline, body
            await asyncio.sleep(0.05)
        report = (await client.get(f"/datasets/{dataset_id}/report")).json()
        page = (await client.get(f"/ui/datasets/{dataset_id}")).text
        app = client.app
        resumed = in_app(client, outcome, app.state.services.datasets, app.state.resources.engine, dataset_id)

    assert body["resumes"] == 1 and body["error"] is None
    assert report["dataset"]["resumes"] == 1
    assert report["model_details"]["model"] == VADER_KEY
    assert 'id="dataset-model"' in page and "<dt>source</dt>" in page
    assert 'id="dataset-resumes"' in page and "resumed once" in page
    assert_each_row_once(resumed, baseline)


async def test_a_job_whose_model_this_service_does_not_know_fails_naming_the_model(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    dataset = Dataset(
        id=uuid7(),
        name="tweets.csv",
        status="interrupted",
        created_at=utc_now(),
        size_bytes=10,
        columns=["text"],
        model="retired-model",
        text_column="text",
        run_id=uuid7(),
    )
    async with engine.begin() as connection:
        await DatasetRepository(connection).add(dataset)
    async with replica(engine, tmp_path) as service:
        assert await service.datasets.resume_stopped() == [dataset.id]
        progress = await service.datasets.progress(dataset.id)
    assert progress is not None and progress.status == "failed"
    assert progress.dataset.error is not None
    assert progress.dataset.error.startswith("the job cannot resume: unknown model 'retired-model'")


async def test_only_the_service_s_own_jobs_that_stopped_are_taken_over_and_only_once(
    engine: AsyncEngine,
) -> None:
    now = utc_now()
    stale, fresh = now - LATER, now - timedelta(seconds=5)
    created = iter(range(100))

    def a_job(status: DatasetStatus, beat: datetime | None) -> Dataset:
        # Created one after the other: the stopped jobs are taken oldest first.
        at = now + timedelta(seconds=next(created))
        return Dataset(uuid7(), "a.csv", status, at, 10, ["text"], heartbeat_at=beat, run_id=uuid7())

    resumable = [
        a_job("scoring", stale),
        a_job("counting", stale),
        a_job("queued", None),
        a_job("interrupted", fresh),
    ]
    left_alone = [
        a_job("scoring", fresh),
        a_job("uploaded", stale),
        a_job("done", stale),
        a_job("failed", stale),
        a_job("cancelled", stale),
    ]
    an_import = msgspec.structs.replace(a_job("scoring", stale), run_id=None)
    async with engine.begin() as connection:
        for dataset in [*resumable, *left_alone, an_import]:
            await DatasetRepository(connection).add(dataset)

    stale_before = now - timedelta(minutes=1)
    async with engine.connect() as first, engine.connect() as second:
        seen = [await DatasetRepository(c).stopped_jobs(stale_before) for c in (first, second)]
    assert [d.id for d in seen[0]] == [d.id for d in seen[1]] == [d.id for d in resumable]

    target = resumable[0].id
    values = {"status": "queued", "heartbeat_at": utc_now(), "run_id": uuid7()}
    async with engine.begin() as connection:
        assert await DatasetRepository(connection).take_over(target, stale_before, **values)
    async with engine.begin() as connection:
        assert not await DatasetRepository(connection).take_over(target, stale_before, **values)
    async with engine.connect() as connection:
        resumes = await connection.scalar(select(DatasetRow.resumes).where(DatasetRow.id == target))
        remaining = await DatasetRepository(connection).stopped_jobs(stale_before)
    assert resumes == 1
    assert [d.id for d in remaining] == [d.id for d in resumable[1:]]


async def test_a_run_that_lost_its_data_set_can_no_longer_write_to_it(engine: AsyncEngine) -> None:
    run, other = uuid7(), uuid7()
    dataset = Dataset(uuid7(), "a.csv", "scoring", utc_now(), 10, ["text"], run_id=run)
    async with engine.begin() as connection:
        await DatasetRepository(connection).add(dataset)
        await connection.execute(update(DatasetRow).where(DatasetRow.id == dataset.id).values(run_id=other))
    async with engine.begin() as connection:
        repository = DatasetRepository(connection)
        assert not await repository.update_running(dataset.id, run, rows_done=64)
        assert await repository.update_running(dataset.id, other, rows_done=64)
