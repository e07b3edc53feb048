"""Storage under more load than it can write: N clients re-send the same 64 texts to /predict/batch (answered
from the cache, so far faster than a database takes rows) for M seconds against a real service (VADER).

    .venv/bin/python bench/backpressure.py --clients 8 --seconds 60 [--database-url postgresql://...]

Prints the texts answered 200, the requests refused 503 ("storage is behind"), and the rows stored once the
writer has caught up: every text answered 200 must be a stored row (each is in the journal before it is
answered; the journal is bounded by SENTIMENT_JOURNAL_MB and SENTIMENT_MAX_PENDING_WRITES, then 503).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine import Process, free_port
from bench.httpclient import Connection

TEXTS = [f"the flight number {i} was {'great' if i % 2 else 'awful'}" for i in range(64)]


async def load(port: int, clients: int, seconds: float) -> dict[str, int]:
    counts = {"answered_texts": 0, "refused_requests": 0, "other_errors": 0}
    stop_at = time.monotonic() + seconds

    async def client() -> None:
        connection = Connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop_at:
                status, _ = await connection.request("POST", "/predict/batch", {"texts": TEXTS})
                if status == 200:
                    counts["answered_texts"] += len(TEXTS)
                elif status == 503:
                    counts["refused_requests"] += 1
                    await asyncio.sleep(0.01)
                else:
                    counts["other_errors"] += 1
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return counts


async def health(port: int) -> dict[str, object]:
    connection = Connection("127.0.0.1", port)
    _, body = await connection.request("GET", "/db/health")
    await connection.close()
    report: dict[str, object] = json.loads(body)
    return report


async def stored_rows(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as connection:
            return int(connection.execute("SELECT count(*) FROM predictions").fetchone()[0])
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return int(await connection.fetchval("SELECT count(*) FROM predictions"))
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()
    database_url = args.database_url or (
        f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='backpressure-')) / 'bench.db'}"
    )
    env = {
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url,
        "SENTIMENT_AUTO_MIGRATE": "true",
    }
    port = free_port()
    service = Process([sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready")
    try:
        before = asyncio.run(stored_rows(database_url))
        counts = asyncio.run(load(port, args.clients, args.seconds))
        deadline = time.monotonic() + 300
        while (report := asyncio.run(health(port)))["pending_writes"] and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        service.stop()
    stored = asyncio.run(stored_rows(database_url)) - before
    print(
        f"{args.clients} clients x {args.seconds:g} s on {database_url.split(':', 1)[0]}: "
        f"answered {counts['answered_texts']:,} texts ({counts['answered_texts'] / args.seconds:,.0f}/s), "
        f"refused {counts['refused_requests']:,} requests with 503, other errors {counts['other_errors']}; "
        f"stored {stored:,} rows, dropped {report['dropped']}, lost {counts['answered_texts'] - stored:,}"
    )
    return 0 if stored == counts["answered_texts"] else 1


if __name__ == "__main__":
    sys.exit(main())
