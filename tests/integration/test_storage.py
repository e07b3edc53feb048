"""Storage, run against SQLite and Postgres alike: every
answered prediction becomes a row; alerts are keyed."""

import asyncio
import os
import sys
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import structlog.testing
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from uuid_utils import uuid7

from sentiment.app import create_app
from sentiment.core.domain import Prediction, StorageBehind
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import ModelSpec
from sentiment.services.alerts import AlertService
from sentiment.services.settings import AlertRules
from sentiment.storage.database import create_engine, head_revision, schema_problem, upgrade
from sentiment.storage.history import HistoryRepository, PredictionFilters
from sentiment.storage.repositories import AlertRepository, PredictionRepository, text_hash
from sentiment.storage.settings import WriterSettings
from sentiment.storage.tables import PredictionRow
from sentiment.storage.writer import PredictionWriter
from sentiment.web.settings import ServerLimits
from tests.conftest import in_app, make_settings, wait_until_settled


async def test_every_answered_prediction_is_a_stored_row(
    database_url: str, loader: Callable[[ModelSpec], Backend]
) -> None:
    app = create_app(make_settings(database_url, default_model="minilm-sst2"), loader=loader)
    answered_ids: list[str] = []
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        for i in range(15):
            response = await client.post("/predict", json={"text": f"review number {i} was great"})
            answered_ids.append(response.json()["id"])
            batch = await client.post(
                "/predict/batch",
                json={"texts": [f"text {i}-{j} was dull" for j in range(i % 5 + 1)], "model": "vader"},
            )
            answered_ids += [r["id"] for r in batch.json()["results"]]
        assert in_app(client, app.state.resources.writer.flush, 10)

    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = {str(i) for i in (await connection.scalars(select(PredictionRow.id))).all()}
        query = select(PredictionRow).where(PredictionRow.text == "review number 0 was great")
        first = (await connection.execute(query)).one()
    await engine.dispose()
    assert len(answered_ids) == 15 + sum(i % 5 + 1 for i in range(15))
    assert stored == set(answered_ids)
    assert (first.model_used, first.model_requested, first.fallback_used, first.sentiment) == (
        "minilm-sst2",
        "minilm-sst2",
        False,
        "positive",
    )
    assert first.text_hash == text_hash("review number 0 was great")
    assert set(first.scores) == {"negative", "positive"}


async def test_rows_are_written_on_shutdown_even_when_not_yet_flushed(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app) as client:
        for i in range(20):
            await client.post("/predict", json={"text": f"text {i}"})
    # The lifespan has ended: a clean shutdown writes everything pending.
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        assert await PredictionRepository(connection).count() == 20
    await engine.dispose()


async def test_store_text_false_keeps_only_hash_and_length(database_url: str) -> None:
    app = create_app(make_settings(database_url, store_text=False))
    async with AsyncTestClient(app=app) as client:
        await client.post("/predict", json={"text": "a private message"})
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        row = (await connection.execute(select(PredictionRow))).one()
    await engine.dispose()
    assert row.text is None
    assert (row.text_hash, row.text_length) == (text_hash("a private message"), len("a private message"))


async def test_history_filters_pages_newest_first_and_a_page_past_the_end_is_the_last(
    database_url: str,
) -> None:
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app) as client:
        for i in range(30):
            await client.post("/predict", json={"text": f"{'great' if i % 3 else 'awful'} 100% day {i}"})
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        history = HistoryRepository(connection)
        first = await history.page(PredictionFilters(), 1, 25)
        beyond = await history.page(PredictionFilters(), 99_999_999_999_999_999_999, 25)
        negative = await history.page(PredictionFilters(label="negative"), 1, 25)
        literal = await history.page(PredictionFilters(text="100%"), 1, 25)
        wildcard = await history.page(PredictionFilters(text="_"), 1, 25)
    await engine.dispose()
    assert (first.total, first.pages, len(first.rows), first.rows[0].text) == (30, 2, 25, "great 100% day 29")
    assert (beyond.page, len(beyond.rows), beyond.rows[-1].text) == (2, 5, "awful 100% day 0")
    assert negative.total == 10 and {row.sentiment for row in negative.rows} == {"negative"}
    assert (literal.total, wildcard.total) == (30, 0)  # % and _ are matched as text, not as LIKE wildcards


async def test_a_text_holding_nul_is_stored_and_does_not_block_the_rows_after_it(database_url: str) -> None:
    # Postgres text cannot hold NUL: stored as it was, the row failed
    # its batch on every retry and nothing after it was ever written.
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app) as client:
        assert (await client.post("/predict", json={"text": "bad \u0000 byte"})).status_code == 200
        assert (
            await client.post("/predict/batch", json={"texts": ["fine", "also\u0000odd"]})
        ).status_code == 200
        assert in_app(client, app.state.resources.writer.flush, 10)
        assert app.state.resources.writer.last_error is None
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = (await connection.execute(select(PredictionRow.text, PredictionRow.text_hash))).all()
        found = await HistoryRepository(connection).page(
            PredictionFilters(text="\u0000", model="vader\u0000"), 1, 25
        )
    await engine.dispose()
    assert sorted(text for text, _ in stored) == ["also\ufffdodd", "bad \ufffd byte", "fine"]
    assert text_hash("bad \u0000 byte") in {digest for _, digest in stored}  # the hash is of the text as sent
    assert found.total == 0


def answered(text: str, same_id_as: Prediction | None = None) -> Prediction:
    return Prediction(
        id=same_id_as.id if same_id_as else UUID(str(uuid7())),
        text=text,
        sentiment="positive",
        confidence=0.9,
        scores={"positive": 0.9},
        model_requested="vader",
        model_used="vader",
        fallback_used=False,
        processing_time_ms=1.0,
        timestamp=datetime.now(UTC),
    )


async def database_down(batch: list[Prediction]) -> OSError:
    return OSError("connection refused")


async def store(writer: PredictionWriter, predictions: list[Prediction]) -> None:
    await writer.store(predictions, writer.reserve([p.text for p in predictions]))


async def test_rows_waiting_for_the_database_cost_disk_within_its_budget_not_memory(
    database_url: str, tmp_path: Path
) -> None:
    """During an outage, 10,000-character texts took a process from 540 MB to 4.4 GB in 14 s: now they wait in
    the journal, within its byte budget (then 503), and the process's memory does not grow with them."""
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    long_text = "x" * 10_000
    budget_mb = 16.0
    journal = tmp_path / "journal"
    settings = WriterSettings(flush_interval_s=0.01, journal_dir=str(journal), journal_mb=budget_mb)
    writer = PredictionWriter(engine, settings, store_text=True)
    writer.start()
    write = writer._write
    writer._write = database_down  # type: ignore[method-assign]
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    stored = 0
    with pytest.raises(StorageBehind, match="storage is behind"):
        while True:
            await store(writer, [answered(long_text) for _ in range(10)])
            stored += 10
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    journal_bytes = sum(f.stat().st_size for f in journal.rglob("*.seg"))
    assert stored == writer.pending and stored * 10_000 > 0.9 * budget_mb * 1024 * 1024
    assert journal_bytes <= budget_mb * 1024 * 1024
    # What stays in memory is the one batch being retried (at most 2 MB read back), not what waits.
    assert grown < budget_mb / 4 * 1024 * 1024, f"memory grew {grown:,} bytes for {stored * 10_000:,} waiting"
    writer._write = write  # type: ignore[method-assign]
    assert await writer.flush(30)
    await writer.close()
    async with engine.connect() as connection:
        rows = await PredictionRepository(connection).count()
    await engine.dispose()
    assert (rows, writer.written, writer.pending) == (stored, stored, 0)
    assert list(journal.iterdir()) == []  # everything written: the process's journal folder is gone


async def test_room_is_reserved_before_the_work_and_a_reserved_row_is_never_dropped(tmp_path: Path) -> None:
    engine = create_engine("sqlite+aiosqlite://")
    writer = PredictionWriter(engine, WriterSettings(max_pending=5, journal_dir=str(tmp_path)), True)
    writer.start()
    writer._write = database_down  # type: ignore[method-assign]
    first = writer.reserve(["a", "b", "c"])
    with pytest.raises(StorageBehind):
        writer.reserve(["d", "e", "f"])  # 3 promised + 3 would pass 5
    await writer.store([answered(text) for text in "abc"], first)
    assert (writer.pending, writer.dropped) == (3, 0)
    second = writer.reserve(["d", "e"])
    with pytest.raises(StorageBehind, match="storage is behind: 3 predictions are waiting for the database"):
        writer.reserve(["f"])
    writer.release(second)
    writer.reserve(["f"])
    await writer.close(0.1)
    await engine.dispose()


async def test_when_storage_falls_behind_predictions_are_refused_not_answered_and_dropped(
    database_url: str,
) -> None:
    """The buffer full (the database down, or slower than the answers): a 503 with Retry-After before any
    work; every prediction answered 200 is stored once the database takes rows again."""
    settings = make_settings(database_url, writer=WriterSettings(max_pending=4, flush_interval_s=0.01))
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        writer = app.state.resources.writer
        write = writer._write
        writer._write = database_down
        answers = [
            await client.post("/predict/batch", json={"texts": ["one", "two", "three"]}),
            await client.post("/predict/batch", json={"texts": ["four", "five"]}),
            await client.post("/predict", json={"text": "four"}),
            await client.post("/predict", json={"text": "five"}),
        ]
        full = await client.get("/ready")
        writer._write = write
        assert in_app(client, writer.flush, 10)
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200, 503, 200, 503]
    assert full.status_code == 503 and "storage is behind" in full.json()["detail"]
    assert answers[1].headers["retry-after"] == "1"
    assert "storage is behind" in answers[1].json()["detail"]
    answered = {r["id"] for r in answers[0].json()["results"]} | {answers[2].json()["id"]}
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = {str(i) for i in (await connection.scalars(select(PredictionRow.id))).all()}
    await engine.dispose()
    assert stored == answered and writer.dropped == 0


async def test_a_row_the_database_refuses_is_dropped_alone_and_the_rows_around_it_are_written(
    database_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    settings = WriterSettings(flush_interval_s=0.01, journal_dir=str(tmp_path))
    writer = PredictionWriter(engine, settings, store_text=True)
    first = answered("first")
    writer.start()
    await store(writer, [first])
    assert await writer.flush(10)
    # A duplicate primary key makes the database refuse that
    # row (and the batch it arrives in) for its content.
    await store(writer, [answered("before"), answered("duplicate", same_id_as=first), answered("after")])
    assert await writer.flush(10)
    await writer.close()
    async with engine.connect() as connection:
        stored = sorted((await connection.scalars(select(PredictionRow.text))).all())
    await engine.dispose()
    assert stored == ["after", "before", "first"]
    assert (writer.written, writer.dropped, writer.pending, writer.last_error) == (3, 1, 0, None)


async def test_alerts_are_keyed_raised_once_resolved_and_raised_again(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as connection:
        alerts = AlertRepository(connection)
        assert await alerts.raise_alert("breaker_open:m", "breaker_open", "critical", "m is failing", t0)
        # A second replica raising the same condition adds nothing.
        assert not await alerts.raise_alert("breaker_open:m", "breaker_open", "critical", "m is failing", t0)
        assert [a.key for a in await alerts.list("active")] == ["breaker_open:m"]
        assert await alerts.resolve("breaker_open:m", t0 + timedelta(minutes=1))
        assert not await alerts.resolve("breaker_open:m", t0 + timedelta(minutes=2))
        assert await alerts.raise_alert(
            "breaker_open:m", "breaker_open", "critical", "again", t0 + timedelta(minutes=3)
        )
        history = await alerts.list()
        acknowledged = await alerts.acknowledge(history[0].id, t0 + timedelta(minutes=4))
        rows = await connection.scalar(select(func.count()).select_from(PredictionRow))
    await engine.dispose()
    assert [(a.message, a.state) for a in history] == [("again", "active"), ("m is failing", "resolved")]
    assert history[1].resolved_at == t0 + timedelta(minutes=1)
    assert acknowledged is not None and acknowledged.acknowledged_at == t0 + timedelta(minutes=4)
    assert rows == 0


async def test_alerts_of_models_no_longer_configured_are_resolved_at_start(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as connection:
        alerts = AlertRepository(connection)
        for key, kind in [
            ("breaker_open:removed-model", "breaker_open"),
            ("model_load_failed:removed-model", "model_load_failed"),
            ("breaker_open:vader", "breaker_open"),  # still configured: its own breaker will clear it
            ("database_down", "database_down"),  # about the service, not a model
        ]:
            await alerts.raise_alert(key, kind, "critical", "raised by an earlier configuration", t0)
    await engine.dispose()
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app) as client:
        for _ in range(100):
            active = {
                alert["key"] for alert in (await client.get("/alerts", params={"state": "active"})).json()
            }
            if "breaker_open:removed-model" not in active:
                break
            await asyncio.sleep(0.05)
    assert active == {"breaker_open:vader", "database_down"}


async def test_a_database_never_migrated_keeps_every_answered_row_until_it_is(database_url: str) -> None:
    """SENTIMENT_AUTO_MIGRATE=false on a new database: /ready names the fix, the rows wait (they are not
    refused for their content), and once `sentiment db upgrade` has run every answered row is stored."""
    app = create_app(make_settings(database_url, auto_migrate=False))
    async with AsyncTestClient(app=app) as client:
        ready = await client.get("/ready")
        health = (await client.get("/db/health")).json()
        alerts = await client.get("/alerts")
        answered = [
            (await client.post("/predict", json={"text": f"text {i}"})).json()["id"] for i in range(3)
        ]
        writer = app.state.resources.writer
        await asyncio.sleep(0.3)
        waiting = (writer.pending, writer.dropped)
        await asyncio.to_thread(upgrade, database_url)
        assert in_app(client, writer.flush, 30)
        ready_after = await client.get("/ready")
    assert ready.status_code == 503
    assert "schema at revision none (not migrated), expected " in ready.json()["detail"]
    assert "run `sentiment db upgrade`" in ready.json()["detail"]
    assert health["reachable"] is True and "sentiment db upgrade" in health["schema"]
    assert alerts.status_code == 503 and "run `sentiment db upgrade`" in alerts.json()["detail"]
    assert waiting == (3, 0)
    assert ready_after.status_code == 200
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = {str(i) for i in (await connection.scalars(select(PredictionRow.id))).all()}
    await engine.dispose()
    assert stored == set(answered)


@pytest.mark.postgres
async def test_replicas_that_start_together_on_a_new_database_migrate_one_after_the_other(
    postgres_url: str,
) -> None:
    """Three `sentiment db upgrade` processes at once, as replicas starting together run them."""
    env = {**os.environ, "DATABASE_URL": postgres_url}
    migrations = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sentiment", "db", "upgrade", env=env, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [(await process.wait(), (await process.stderr.read()).decode()) for process in migrations]  # type: ignore[union-attr]
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    engine = create_engine(postgres_url)
    assert await schema_problem(engine, head_revision()) is None
    await engine.dispose()


async def test_a_database_host_that_does_not_resolve_is_a_503_naming_the_setting_not_a_500() -> None:
    app = create_app(
        make_settings("postgresql+asyncpg://sentiment@no-such-host.invalid/db", auto_migrate=False)
    )
    async with AsyncTestClient(app=app) as client:
        reads = [await client.get(path) for path in ("/alerts", "/analytics")]
    assert [(r.status_code, r.headers.get("retry-after")) for r in reads] == [(503, "5"), (503, "5")]
    assert all("the database host cannot be found" in r.json()["detail"] for r in reads)
    assert "DATABASE_URL" in reads[0].json()["detail"]


async def test_through_a_database_outage_the_pod_stays_ready_and_the_next_process_stores_what_it_answered(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The database away for the whole life of a process: it stays ready and answers, each answer durable in
    its journal; shut down, it leaves the rows there, and the next process to start (the database back) writes
    them. (A database that never answers is simplest made by a host that does not resolve.)"""
    journal = WriterSettings(journal_dir=str(tmp_path / "journal"))
    down = make_settings(
        "postgresql+asyncpg://sentiment@no-such-host.invalid/db",
        auto_migrate=False,
        writer=journal,
        server=ServerLimits(shutdown_s=2),
    )
    app = create_app(down)
    async with AsyncTestClient(app=app) as client:
        answered = [
            (await client.post("/predict", json={"text": f"text {i}"})).json()["id"] for i in range(4)
        ]
        batch = await client.post("/predict/batch", json={"texts": ["one", "two"]})
        answered += [r["id"] for r in batch.json()["results"]]
        ready = await client.get("/ready")
        health = await client.get("/db/health")
    assert ready.status_code == 200 and ready.json()["storage"] == "unreachable"
    assert health.status_code == 503 and health.json()["state"] == "unreachable"
    assert health.json()["pending_writes"] == 6
    back = create_app(make_settings(sqlite_url, writer=journal))
    async with AsyncTestClient(app=back) as client:
        assert in_app(client, back.state.resources.writer.flush, 10)
    engine = create_engine(sqlite_url)
    async with engine.connect() as connection:
        stored = {str(i) for i in (await connection.scalars(select(PredictionRow.id))).all()}
    await engine.dispose()
    assert stored == set(answered)
    assert list((tmp_path / "journal").iterdir()) == []


async def test_a_journal_that_cannot_write_refuses_predictions_and_makes_the_pod_unready_until_it_can(
    sqlite_url: str, tiny_filesystem: Path
) -> None:
    """The journal's disk full (a 64 KiB tmpfs): a prediction whose rows cannot be made durable is a 503,
    never a 200; /ready and /db/health say why; once the disk takes rows again, all is as before."""
    app = create_app(make_settings(sqlite_url, writer=WriterSettings(journal_dir=str(tiny_filesystem))))
    async with AsyncTestClient(app=app) as client:
        fits = await client.post("/predict", json={"text": "a short one"})
        texts = ["x" * 9_000 + str(i) for i in range(10)]  # 90 KB: more than the disk holds
        too_big = await client.post("/predict/batch", json={"texts": texts})
        ready = await client.get("/ready")
        health = await client.get("/db/health")
        again = await client.post("/predict", json={"text": "short again"})
        ready_again = await client.get("/ready")
        assert in_app(client, app.state.resources.writer.flush, 10)
    assert fits.status_code == 200
    assert too_big.status_code == 503 and too_big.headers["retry-after"] == "1"
    assert "the prediction journal cannot write" in too_big.json()["detail"]
    assert "No space left on device" in too_big.json()["detail"]
    assert ready.status_code == 503 and "journal cannot write" in ready.json()["detail"]
    assert health.status_code == 503 and health.json()["state"] == "journal_failing"
    assert again.status_code == 200 and ready_again.status_code == 200
    engine = create_engine(sqlite_url)
    async with engine.connect() as connection:
        stored = {str(i) for i in (await connection.scalars(select(PredictionRow.id))).all()}
    await engine.dispose()
    assert stored == {fits.json()["id"], again.json()["id"]}


async def test_a_query_bug_is_a_500_logged_with_its_traceback_never_called_an_outage(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every database error answered 503 "the database does not answer" before: a wrong query too, which no
    retry mends. Now only an outage (or a missing schema) is a 503."""
    bug = ProgrammingError("SELECT nonsense FROM alerts", {}, Exception('column "nonsense" does not exist'))
    outage = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app=app) as client:
        answers = {}
        for name, error in (("bug", bug), ("outage", outage)):

            async def failing(*args: object, error: Exception = error, **kwargs: object) -> None:
                raise error

            monkeypatch.setattr(AlertService, "list", failing)
            with structlog.testing.capture_logs() as logged:
                answers[name] = (await client.get("/alerts"), logged)
    (bug_answer, bug_logs), (outage_answer, outage_logs) = answers["bug"], answers["outage"]
    assert bug_answer.status_code == 500 and "retry-after" not in bug_answer.headers
    [logged_bug] = [line for line in bug_logs if line["event"] == "unhandled_error"]
    assert logged_bug["exc_info"] is bug
    assert outage_answer.status_code == 503 and outage_answer.headers["retry-after"] == "5"
    assert "does not answer" in outage_answer.json()["detail"]
    assert not [line for line in outage_logs if line["event"] == "unhandled_error"]


async def test_writes_that_fail_while_the_database_answers_are_said_and_alerted_then_stored(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: the database answers pings but refuses every insert. /db/health said "no error", /ready
    200 and no alert; now it is writes_failing with the error, alert storage_failing, and the rows wait."""
    add_many = PredictionRepository.add_many

    async def disk_full(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO predictions", {}, Exception("database or disk is full"))

    monkeypatch.setattr(PredictionRepository, "add_many", disk_full)
    settings = make_settings(database_url, alert_rules=AlertRules(check_interval_s=0.05))
    app = create_app(settings)
    async with AsyncTestClient(app=app) as client:
        answered = [
            (await client.post("/predict", json={"text": f"text {i}"})).json()["id"] for i in range(3)
        ]

        async def alerts(state: str) -> list[str]:
            return [a["key"] for a in (await client.get("/alerts", params={"state": state})).json()]

        async def until_alerted(state: str) -> list[dict[str, str]]:
            """The monitor checks every 0.05 s, and its alert is stored a moment later: up to 10 s here."""
            for _ in range(200):
                if "storage_failing" in await alerts(state):
                    break
                await asyncio.sleep(0.05)
            return list((await client.get("/alerts", params={"state": state})).json())

        active = await until_alerted("active")
        health = await client.get("/db/health")
        ready = await client.get("/ready")
        monkeypatch.setattr(PredictionRepository, "add_many", add_many)
        assert in_app(client, app.state.resources.writer.flush, 15)
        resolved = await until_alerted("resolved")
        healed = (await client.get("/db/health")).json()
    assert health.status_code == 503
    body = health.json()
    assert (body["reachable"], body["state"], body["pending_writes"]) == (True, "writes_failing", 3)
    assert "database or disk is full" in body["last_write_error"]
    assert ready.status_code == 200  # the pod still answers: its buffer has room
    assert [a["key"] for a in active] == ["storage_failing"]
    assert "writes fail" in active[0]["message"] and "database or disk is full" in active[0]["message"]
    assert (healed["state"], healed["pending_writes"]) == ("ok", 0)
    assert "storage_failing" in [a["key"] for a in resolved]
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        stored = {str(i) for i in (await connection.scalars(select(PredictionRow.id))).all()}
    await engine.dispose()
    assert stored == set(answered)


async def test_under_steady_traffic_rows_gather_into_a_few_inserts_not_one_per_request(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    inserts: list[int] = []
    add_many = PredictionRepository.add_many

    async def counted(self: PredictionRepository, rows: list[Prediction], store_text: bool) -> None:
        inserts.append(len(rows))
        await add_many(self, rows, store_text)

    monkeypatch.setattr(PredictionRepository, "add_many", counted)
    writer = PredictionWriter(engine, WriterSettings(flush_interval_s=0.3, journal_dir=str(tmp_path)), True)
    writer.start()
    for i in range(20):  # a request every 20 ms for 0.4 s
        await store(writer, [answered(f"request {i}")])
        await asyncio.sleep(0.02)
    assert await writer.flush(10)
    await writer.close()
    async with engine.connect() as connection:
        assert await PredictionRepository(connection).count() == 20
    await engine.dispose()
    # The first row after an idle spell waits 0.3 s for company; once caught up, the writer waits again.
    assert sum(inserts) == 20 and len(inserts) <= 3, inserts
