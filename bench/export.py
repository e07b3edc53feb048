"""Stored predictions read out of a running service: the CSV and JSON Lines exports and GET /predictions paged
to the end, with the service process's peak memory (RSS) while each runs.

    .venv/bin/python bench/export.py [--rows 1112000] [--databases sqlite postgres] [--page 1000]

Seeds the rows as bench/analytics.py does (bypassing the service; about 90% live traffic, 10% in three data
sets), starts `python -m sentiment serve` (VADER only) on that database, then reads the live rows (a million
of the default 1,112,000) three ways: GET /predictions/export.csv, /predictions/export.jsonl, and
GET /predictions with `--page` rows a page, cursor after cursor. Each reader checks the row count against
the list's total; the service's RSS is sampled every 20 ms. The target is a peak under 300 MB.
Writes bench/results/export-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg
import httpx

from bench.analytics import BENCH_DATABASE, POSTGRES_ADMIN, seed_postgres, seed_sqlite
from bench.engine import Process, free_port
from sentiment.storage.database import upgrade

RSS_TARGET_MB = 300


class PeakRss:
    """The most resident memory a process held while sampled (its own VmHWM counts start-up too)."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._every_s = every_s
        self._stop = threading.Event()
        self.peak_mb = 0.0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now_mb(self) -> float:
        for line in self._status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.now_mb())
            self._stop.wait(self._every_s)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def read_export(base: str, export_format: str) -> tuple[int, int]:
    """Rows and bytes of one export, read as it streams (nothing kept)."""
    newlines = size = 0
    with (
        httpx.Client(base_url=base, timeout=600) as client,
        client.stream("GET", f"/predictions/export.{export_format}") as response,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes():
            newlines += chunk.count(b"\n")
            size += len(chunk)
    return newlines - (1 if export_format == "csv" else 0), size  # the CSV header is not a row


def read_pages(base: str, page: int) -> tuple[int, int]:
    """Rows and requests of GET /predictions read to the last page."""
    rows = requests = 0
    cursor = None
    with httpx.Client(base_url=base, timeout=600) as client:
        while True:
            params: dict[str, str | int] = {"limit": page, **({"cursor": cursor} if cursor else {})}
            body = client.get("/predictions", params=params).raise_for_status().json()
            rows += len(body["predictions"])
            requests += 1
            if (cursor := body["next_cursor"]) is None:
                return rows, requests


def live_total(base: str) -> int:
    return int(httpx.get(f"{base}/predictions", params={"limit": 1}, timeout=600).json()["total"])


def bench_service(url: str, page: int) -> dict[str, object]:
    port = free_port()
    env = {"HF_HUB_OFFLINE": "1", "LOG_LEVEL": "WARNING", "PRELOAD_MODEL": "vader", "DATABASE_URL": url}
    service = Process([sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready")
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, object] = {}
    try:
        watch = PeakRss(service.process.pid)
        figures["rss_at_start_mb"] = round(watch.now_mb(), 1)
        total = figures["live_rows"] = live_total(base)
        readers: list[tuple[str, Callable[[], tuple[int, int]]]] = [
            ("csv", lambda: read_export(base, "csv")),
            ("jsonl", lambda: read_export(base, "jsonl")),
            (f"pages_of_{page}", lambda: read_pages(base, page)),
        ]
        for name, read in readers:
            started = time.perf_counter()
            with PeakRss(service.process.pid) as peak:
                rows, extent = read()
            seconds = time.perf_counter() - started
            if rows != total:
                raise RuntimeError(f"{name}: {rows} rows read, the list says {total}")
            unit = "requests" if name.startswith("pages") else "bytes"
            figures[name] = {
                "rows": rows,
                unit: extent,
                "seconds": round(seconds, 1),
                "peak_rss_mb": peak.peak_mb,
            }
            print(
                f"  {name}: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s), "
                f"service peak RSS {peak.peak_mb:.0f} MB",
                flush=True,
            )
    finally:
        service.stop()
    return figures


async def on_sqlite(rows: int, page: int, now: datetime) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
    path = folder / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    try:
        return await seeded(
            "sqlite", url, rows, page, lambda: asyncio.to_thread(seed_sqlite, path, rows, now)
        )
    finally:
        shutil.rmtree(folder)


async def on_postgres(rows: int, page: int, now: datetime) -> dict[str, object]:
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    plain = f"postgresql://postgres@127.0.0.1:5432/{BENCH_DATABASE}"

    async def seed() -> None:
        await seed_postgres(plain, rows, now)
        connection = await asyncpg.connect(plain)
        await connection.execute("VACUUM ANALYZE")
        await connection.close()

    try:
        return await seeded(
            "postgres", plain.replace("postgresql://", "postgresql+asyncpg://"), rows, page, seed
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        await admin.close()


async def seeded(
    name: str, url: str, rows: int, page: int, seed: Callable[[], Awaitable[None]]
) -> dict[str, object]:
    print(f"{name}: migrating, seeding {rows:,} rows", flush=True)
    await asyncio.to_thread(upgrade, url)
    await seed()
    print(f"{name}: reading the live rows back", flush=True)
    return await asyncio.to_thread(bench_service, url, page)


async def run(args: argparse.Namespace) -> dict[str, object]:
    now = datetime.now(UTC)
    results: dict[str, object] = {
        "rows_seeded": args.rows,
        "page": args.page,
        "target_peak_rss_mb": RSS_TARGET_MB,
    }
    if "sqlite" in args.databases:
        results["sqlite"] = await on_sqlite(args.rows, args.page, now)
    if "postgres" in args.databases:
        results["postgres"] = await on_postgres(args.rows, args.page, now)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_112_000)
    parser.add_argument(
        "--databases", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument("--page", type=int, default=1000)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    out = ROOT / "bench" / "results" / f"export-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
