"""Sustained load: N clients for M seconds against a real service process, a mix of singles and batches.

    .venv/bin/python bench/load.py --clients 32 --seconds 300 [--model ../shared/models/minilm-sst2 | vader]
        [--database-url URL]

Reports answered requests and texts, errors, rows stored afterwards (every answered prediction must be a row),
p50/p99 latency, and the service's RSS sampled over time (growth after warm-up).
Writes bench/results/load-*.json.
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

from bench.engine import SHARED, Process, free_port, read_texts
from bench.httpclient import Connection, percentile


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run_load(port: int, pid: int, clients: int, seconds: float, texts: list[str]) -> dict[str, object]:
    latencies: list[float] = []
    counts = {"requests": 0, "texts": 0, "errors": 0}
    rss: list[tuple[float, int]] = []
    started = time.monotonic()
    stop_at = started + seconds

    async def client(n: int) -> None:
        connection = Connection("127.0.0.1", port)
        i = n
        try:
            while time.monotonic() < stop_at:
                i += clients
                if i % 10 == 0:  # one request in ten is a batch of 16
                    chunk = [texts[(i + j) % len(texts)] for j in range(16)]
                    body, path, size = {"texts": chunk}, "/predict/batch", 16
                else:
                    body, path, size = {"text": f"{texts[i % len(texts)]} #{i}"}, "/predict", 1
                t0 = time.perf_counter()
                status, _ = await connection.request("POST", path, body)
                latencies.append(time.perf_counter() - t0)
                counts["requests"] += 1
                if status == 200:
                    counts["texts"] += size
                else:
                    counts["errors"] += 1
        finally:
            await connection.close()

    async def sample() -> None:
        while time.monotonic() < stop_at:
            rss.append((round(time.monotonic() - started, 1), rss_kib(pid)))
            await asyncio.sleep(10)

    await asyncio.gather(sample(), *(client(n) for n in range(clients)))
    return {"counts": counts, "latencies": latencies, "rss": rss, "seconds": time.monotonic() - started}


async def pending_writes(port: int) -> int:
    connection = Connection("127.0.0.1", port)
    status, body = await connection.request("GET", "/db/health")
    await connection.close()
    return int(json.loads(body)["pending_writes"]) if status in (200, 503) else -1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=300, help="at most 3600")
    parser.add_argument(
        "--model",
        type=Path,
        default=SHARED / "models" / "minilm-sst2",
        help="a model folder, or `vader` (the service's own cost shows: VADER takes ~40 us a text)",
    )
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "tweeteval_val.tsv")
    parser.add_argument("--warm-up", type=float, default=60, help="seconds before RSS growth is measured")
    args = parser.parse_args()
    seconds = min(args.seconds, 3600)
    texts = read_texts(args.data)
    database = Path(tempfile.mkdtemp(prefix="load-")) / "load.db"
    env = {
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
        **({} if str(args.model) == "vader" else {"SENTIMENT_MODELS": f"bench={args.model}"}),
        "PRELOAD_MODEL": "vader" if str(args.model) == "vader" else "bench",
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
    }
    port = free_port()
    service = Process([sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready")
    try:
        print(f"{args.clients} clients for {seconds:g} s against {args.model.name} ...", flush=True)
        result = asyncio.run(run_load(port, service.process.pid, args.clients, seconds, texts))
        deadline = time.monotonic() + 60
        while asyncio.run(pending_writes(port)) != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        service.stop()
    with sqlite3.connect(database) as connection:
        stored = connection.execute("SELECT count(*) FROM predictions").fetchone()[0]
    counts, latencies, rss = result["counts"], result["latencies"], result["rss"]  # type: ignore[index]
    after_warm_up = [kib for at, kib in rss if at >= args.warm_up] or [kib for _, kib in rss]
    growth = (after_warm_up[-1] - after_warm_up[0]) / after_warm_up[0] if after_warm_up else 0.0
    report = {
        "clients": args.clients,
        "seconds": result["seconds"],
        **counts,  # type: ignore[dict-item]
        "rows_stored": stored,
        "lost_rows": counts["texts"] - stored,  # type: ignore[index]
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,  # type: ignore[arg-type]
        "texts_per_s": counts["texts"] / result["seconds"],  # type: ignore[index,operator]
        "rss_kib_over_time": rss,
        "rss_growth_after_warm_up": growth,
    }
    print(
        f"requests {report['requests']}, texts {report['texts']} ({report['texts_per_s']:.0f}/s), errors "
        f"{report['errors']}, rows stored {stored}, lost {report['lost_rows']}"
    )
    print(f"latency p50 {report['p50_ms']:.0f} ms, p99 {report['p99_ms']:.0f} ms")
    print("RSS (s, MiB): " + ", ".join(f"{at:g}:{kib / 1024:.0f}" for at, kib in rss))
    print(f"RSS growth after {args.warm_up:g} s warm-up: {growth:+.1%}")
    out = ROOT / "bench" / "results" / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if report["errors"] == 0 and report["lost_rows"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
