"""/analytics benchmark: seed predictions spread over 30 days, then time ten ranges and filters per database.

    .venv/bin/python bench/analytics.py [--rows 1000000] [--databases sqlite postgres] [--repeat 5] [--app]

Seeding bypasses the service (one executemany on SQLite, COPY on Postgres), then rebuilds the hourly rollups
from the rows with the repository's own SQL for bulk loads. Each of the ten requests goes through an
in-process app (Litestar's AsyncTestClient: routing, validation, the service and JSON, no sockets) with
nothing cached: `--app minimal` (default) serves GET /analytics alone; `--app full` is create_app() and also
times the overview page (/ui, sent the same query parameters). Each request runs once to warm the database's
pages, then `--repeat` times, and its median is kept; the headline is the median of the ten. The same ten are
then answered from raw rows only (one run each) to show what the rollups buy, and both answers are checked
to be equal. Postgres: a database `sentiment_bench` on 127.0.0.1:5432 (user postgres), dropped afterwards.
SQLite: a file in a temporary folder. Writes bench/results/analytics-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
import msgspec
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.testing import AsyncTestClient

from sentiment.services.analytics import AnalyticsFilters, AnalyticsService
from sentiment.storage.analytics import RollupRepository
from sentiment.storage.database import create_engine, upgrade
from sentiment.web import analytics_api
from sentiment.web.errors import EXCEPTION_HANDLERS

PAGES = ["/analytics", "/ui"]
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_DATABASE = "sentiment_bench"
DAYS = 30
CHUNK = 50_000

# (model_used, share, median latency ms, labels it answers with)
MODELS = (
    ("minilm-sst2", 0.35, 9.0, ("negative", "positive")),
    ("minilm-tweets3", 0.25, 14.0, ("negative", "neutral", "positive")),
    ("twitter-roberta", 0.15, 45.0, ("negative", "neutral", "positive")),
    ("vader", 0.25, 0.4, ("negative", "neutral", "positive")),
)
DATASETS = tuple(uuid.UUID(int=n) for n in (0xDA7A1, 0xDA7A2, 0xDA7A3))
COLUMNS = (
    "id",
    "created_at",
    "text",
    "text_hash",
    "text_length",
    "sentiment",
    "confidence",
    "scores",
    "model_requested",
    "model_used",
    "fallback_used",
    "processing_time_ms",
    "dataset_id",
    "group_name",
)


def generate(rows: int, now: datetime, seed: int = 7) -> Iterator[list[tuple[object, ...]]]:
    """Rows in time order (UUIDv7 keys follow time), in chunks, as Postgres-typed tuples."""
    rnd = random.Random(seed)
    span_ms = DAYS * 86_400_000
    start_ms = int(now.timestamp() * 1000) - span_ms
    offsets = sorted(rnd.randrange(span_ms) for _ in range(rows))
    texts = [f"sample tweet {k} about the flight, the crew and the food" for k in range(1000)]
    hashes = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
    weights = [share for _, share, _, _ in MODELS]
    chunk: list[tuple[object, ...]] = []
    for offset in offsets:
        moment_ms = start_ms + offset
        model, _, median_ms, labels = rnd.choices(MODELS, weights)[0]
        fallback = model == "vader" and rnd.random() < 0.2
        requested = rnd.choice(("minilm-sst2", "twitter-roberta")) if fallback else model
        label = rnd.choice(labels)
        confidence = round(rnd.uniform(0.5, 1.0), 4)
        k = rnd.randrange(len(texts))
        in_dataset = rnd.random() < 0.1
        chunk.append(
            (
                uuid.UUID(
                    int=(moment_ms << 80)
                    | (0x7 << 76)
                    | (rnd.getrandbits(12) << 64)
                    | (0b10 << 62)
                    | rnd.getrandbits(62)
                ),
                datetime.fromtimestamp(moment_ms / 1000, UTC),
                texts[k],
                hashes[k],
                len(texts[k]),
                label,
                confidence,
                json.dumps({label: confidence}),
                requested,
                model,
                fallback,
                round(median_ms * rnd.lognormvariate(0, 0.5), 3),
                rnd.choice(DATASETS) if in_dataset else None,
                rnd.choice(("delta", "united", "virgin")) if in_dataset else None,
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def seed_sqlite(path: Path, rows: int, now: datetime) -> None:
    """Stored as SQLAlchemy stores them on SQLite: UTC text times, UUIDs as 32 hex digits, booleans as 0/1."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    placeholders = ", ".join("?" for _ in COLUMNS)
    statement = f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    for chunk in generate(rows, now):
        connection.executemany(
            statement,
            (
                (i.hex, t.strftime("%Y-%m-%d %H:%M:%S.%f"), *rest[:10], d.hex if d else None, g)
                for i, t, *rest, d, g in chunk
            ),
        )
        connection.commit()
    connection.close()


async def seed_postgres(url: str, rows: int, now: datetime) -> None:
    connection = await asyncpg.connect(url)
    try:
        for chunk in generate(rows, now):
            await connection.copy_records_to_table("predictions", records=chunk, columns=list(COLUMNS))
    finally:
        await connection.close()


def scenarios(now: datetime) -> list[tuple[str, dict[str, str]]]:
    def iso(moment: datetime) -> str:
        return moment.isoformat()

    day = timedelta(days=1)
    return [
        ("all time, no filters", {}),
        ("last 24 h", {"since": iso(now - day)}),
        ("last 7 days", {"since": iso(now - 7 * day)}),
        ("last 30 days, model", {"since": iso(now - 30 * day), "model": "minilm-sst2"}),
        ("last 2 h (minute buckets)", {"since": iso(now - timedelta(hours=2))}),
        (
            "3 days, 10 days ago, ragged edges",
            {
                "since": iso(now - 10 * day + timedelta(minutes=17)),
                "until": iso(now - 7 * day - timedelta(minutes=23)),
            },
        ),
        ("all time, dataset", {"dataset": str(DATASETS[0])}),
        (
            "last 14 days, vader, day buckets",
            {"since": iso(now - 14 * day), "model": "vader", "bucket": "day"},
        ),
        (
            "5 days, dataset and model",
            {
                "since": iso(now - 20 * day),
                "until": iso(now - 15 * day),
                "dataset": str(DATASETS[1]),
                "model": "minilm-tweets3",
            },
        ),
        ("last 30 days, hour buckets", {"since": iso(now - 30 * day), "bucket": "hour"}),
    ]


def analytics_app(url: str, now: datetime) -> Litestar:
    """GET /analytics alone, wired as the service wires it; the engine lives on the app's own event loop."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(url)
        app.state.analytics = AnalyticsService(engine, clock=lambda: now)
        try:
            yield
        finally:
            await engine.dispose()

    def provide(state: State) -> AnalyticsService:
        return state.analytics  # type: ignore[no-any-return]

    return Litestar(
        route_handlers=analytics_api.ROUTES,
        dependencies={"analytics": Provide(provide, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
    )


def full_app(url: str) -> Litestar:
    """The whole service (create_app), for when /analytics and the overview page are wired into it."""
    from sentiment.app import create_app
    from sentiment.settings import Settings

    return create_app(Settings(database_url=url, auto_migrate=False))


async def timed_get(client: AsyncTestClient, path: str, params: dict[str, str], repeat: int):  # type: ignore[no-untyped-def]
    """One warm-up request, then `repeat` timed ones; (status, timings in ms, last response)."""
    response = await client.get(path, params=params)
    if response.status_code != 200:
        return response.status_code, [], response
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return 200, timings, response


async def time_requests(url: str, now: datetime, repeat: int, which: str) -> dict[str, object]:
    engine = create_engine(url)
    service = AnalyticsService(engine, clock=lambda: now)
    raw = AnalyticsService(engine, clock=lambda: now, use_rollups=False)
    app, paths = (analytics_app(url, now), ["/analytics"]) if which == "minimal" else (full_app(url), PAGES)
    by_path: dict[str, list[dict[str, object]]] = {path: [] for path in paths}
    checks: list[dict[str, object]] = []
    try:
        async with AsyncTestClient(app=app) as client:
            for name, params in scenarios(now):
                line = f"  {name:<36}"
                for path in paths:
                    status, timings, _ = await timed_get(client, path, params, repeat)
                    if status != 200:
                        line += f" {path} answered {status}"
                        by_path[path].append({"name": name, "params": params, "status": status})
                        continue
                    median = statistics.median(timings)
                    line += f" {path} {median:7.1f} ms"
                    by_path[path].append(
                        {"name": name, "params": params, "median_ms": median, "timings_ms": timings}
                    )
                dataset = uuid.UUID(params["dataset"]) if "dataset" in params else None
                filters = AnalyticsFilters.from_query(**{**params, "dataset": dataset})  # type: ignore[arg-type]
                started = time.perf_counter()
                from_rows = await raw.summary(filters)
                raw_ms = (time.perf_counter() - started) * 1000
                summary = await service.summary(filters)
                agree = msgspec.to_builtins(from_rows) == msgspec.to_builtins(summary)
                checks.append({"name": name, "raw_rows_ms": raw_ms, "agrees_with_raw_rows": agree})
                print(
                    f"{line}   (raw rows only {raw_ms:7.1f} ms, {'agree' if agree else 'DIFFER'})  "
                    f"n={summary.total_predictions:>8} {len(summary.time_series)} x {summary.bucket}",
                    flush=True,
                )
    finally:
        await engine.dispose()
    figures: dict[str, object] = {}
    for path, requests in by_path.items():
        medians = [r["median_ms"] for r in requests if "median_ms" in r]
        figures[path] = {
            "median_ms": statistics.median(medians) if medians else None,  # type: ignore[type-var]
            "max_ms": max(medians) if medians else None,  # type: ignore[type-var]
            "answered": len(medians),
            "requests": requests,
        }
    return {
        "paths": figures,
        "raw_rows_median_ms": statistics.median(c["raw_rows_ms"] for c in checks),  # type: ignore[type-var]
        "all_agree": all(c["agrees_with_raw_rows"] for c in checks),
        "checks": checks,
    }


async def rebuild_rollups(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await RollupRepository(connection).rebuild()
    finally:
        await engine.dispose()


async def bench_sqlite(args: argparse.Namespace, now: datetime) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    path = folder / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    try:
        return await bench_database(
            "sqlite", url, args, now, lambda: asyncio.to_thread(seed_sqlite, path, args.rows, now)
        )
    finally:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()


async def bench_postgres(args: argparse.Namespace, now: datetime) -> dict[str, object]:
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    plain = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DATABASE}"
    url = plain.replace("postgresql://", "postgresql+asyncpg://")

    async def seed() -> None:
        await seed_postgres(plain, args.rows, now)
        # What autovacuum does soon after a million rows arrive: planner statistics.
        connection = await asyncpg.connect(plain)
        await connection.execute("VACUUM ANALYZE")
        await connection.close()

    try:
        return await bench_database("postgres", url, args, now, seed)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        await admin.close()


async def bench_database(
    name: str, url: str, args: argparse.Namespace, now: datetime, seed: Callable[[], Awaitable[None]]
) -> dict[str, object]:
    print(f"{name}: migrating, seeding {args.rows:,} rows", flush=True)
    await asyncio.to_thread(upgrade, url)
    started = time.perf_counter()
    await seed()
    seed_s = time.perf_counter() - started
    started = time.perf_counter()
    await rebuild_rollups(url)
    rollup_s = time.perf_counter() - started
    print(f"{name}: seeded in {seed_s:.1f} s, rollups rebuilt in {rollup_s:.1f} s; timing", flush=True)
    figures = await time_requests(url, now, args.repeat, args.app)
    for path, timing in figures["paths"].items():  # type: ignore[attr-defined]
        if timing["median_ms"] is None:
            print(f"{name}: {path} did not answer", flush=True)
            continue
        print(
            f"{name}: {path} median {timing['median_ms']:.1f} ms over {timing['answered']} requests "
            f"(max {timing['max_ms']:.1f} ms)",
            flush=True,
        )
    return {"seed_s": seed_s, "rollup_rebuild_s": rollup_s, **figures}


async def run(args: argparse.Namespace) -> dict[str, object]:
    now = datetime.now(UTC)
    results: dict[str, object] = {
        "rows": args.rows,
        "days": DAYS,
        "repeat": args.repeat,
        "app": args.app,
        "cores": os.cpu_count(),
        "now": now.isoformat(),
    }
    if "sqlite" in args.databases:
        results["sqlite"] = await bench_sqlite(args, now)
    if "postgres" in args.databases:
        results["postgres"] = await bench_postgres(args, now)
    return results


def main() -> int:
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per request (after one warm-up)")
    parser.add_argument(
        "--databases", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--app",
        choices=("minimal", "full"),
        default="minimal",
        help="minimal: /analytics alone; full: create_app(), timing /analytics and the overview page",
    )
    args = parser.parse_args()
    results = asyncio.run(run(args))
    out = ROOT / "bench" / "results" / f"analytics-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if all(results[db]["all_agree"] for db in args.databases) else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
