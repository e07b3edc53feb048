"""Live requests while a data set is scored on the same model: are they served ahead of the bulk work?

    .venv/bin/python bench/priority.py [--model ../shared/models/minilm-sst2] [--path auto]
        [--data ../shared/data/airline_tweets.csv] [--text-column text]

(1) idle: one client sends single-text POST /predict, nothing else runs: p50 and p95.
(2) the data set alone: uploaded and scored by the same model with no other traffic: rows/s.
(3) both: the data set again while one client sends single texts all along: their p50 and p95, and the data
set's rows/s meanwhile. The service runs from the current folder (`python -m sentiment serve`), so the same
script measures an older checkout when started from inside it.
Writes bench/results/priority-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine import SHARED, Process, free_port
from bench.httpclient import Connection, percentile

IDLE_REQUESTS = 400


def read_column(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as file:
        return [row[column] for row in csv.DictReader(file)]


async def singles(port: int, texts: list[str], until: asyncio.Event | None, count: int) -> list[float]:
    """Sequential single-text requests: `count` of them, or until `until` is set."""
    connection = Connection("127.0.0.1", port)
    latencies: list[float] = []
    try:
        i = 0
        while (until is None and i < count) or (until is not None and not until.is_set()):
            started = time.perf_counter()
            status, body = await connection.request(
                "POST", "/predict", {"text": f"{texts[i % len(texts)]} #{i}"}
            )
            if status != 200:
                raise RuntimeError(f"/predict answered {status}: {body[:200]!r}")
            latencies.append(time.perf_counter() - started)
            i += 1
    finally:
        await connection.close()
    return latencies


async def score_dataset(port: int, data: Path, column: str, done: asyncio.Event) -> dict[str, float]:
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        with data.open("rb") as file:
            response = await client.post(
                "/datasets",
                files={"file": (data.name, file, "text/csv")},
                data={"text_column": column, "model": "bench"},
            )
        response.raise_for_status()
        dataset_id = response.json()["id"]
        started = time.perf_counter()
        while True:
            state = (await client.get(f"/datasets/{dataset_id}")).json()
            if state["status"] in ("done", "failed", "cancelled"):
                break
            await asyncio.sleep(0.1)
    done.set()
    seconds = time.perf_counter() - started
    if state["status"] != "done":
        raise RuntimeError(f"the data set ended {state['status']}: {state.get('error')}")
    rows = int(state["rows_scored"])
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
    }


async def measure(port: int, data: Path, column: str, texts: list[str]) -> dict[str, object]:
    idle = summary(await singles(port, texts, None, IDLE_REQUESTS))
    print(f"(1) idle: p50 {idle['p50_ms']:.1f} ms, p95 {idle['p95_ms']:.1f} ms", flush=True)
    alone = await score_dataset(port, data, column, asyncio.Event())
    print(f"(2) the data set alone: {alone['rows']:.0f} rows at {alone['rows_per_s']:.0f} rows/s", flush=True)
    done = asyncio.Event()
    job = asyncio.create_task(score_dataset(port, data, column, done))
    await asyncio.sleep(1.0)  # the job is under way
    during = summary(await singles(port, texts, done, 0))
    shared = await job
    print(
        f"(3) both: live p50 {during['p50_ms']:.1f} ms ({during['p50_ms'] / idle['p50_ms']:.2f}x idle), "
        f"p95 {during['p95_ms']:.1f} ms; the data set at {shared['rows_per_s']:.0f} rows/s",
        flush=True,
    )
    return {"idle": idle, "dataset_alone": alone, "live_during": during, "dataset_with_live": shared}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "minilm-sst2")
    parser.add_argument("--path", default="auto", help="SENTIMENT_EXECUTION_PATH for the model")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "airline_tweets.csv")
    parser.add_argument("--text-column", default="text")
    args = parser.parse_args()
    texts = read_column(args.data, args.text_column)
    folder = Path(tempfile.mkdtemp(prefix="priority-"))
    env = {
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
        "SENTIMENT_CACHE_SIZE": "0",
        "SENTIMENT_MODELS": f"bench={args.model.resolve()}",
        "SENTIMENT_EXECUTION_PATH": args.path,
        "PRELOAD_MODEL": "bench",
        "SENTIMENT_DATA_DIR": str(folder / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder}/priority.db",
    }
    port = free_port()
    service = Process([sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready")
    try:
        results = asyncio.run(measure(port, args.data, args.text_column, texts))
    finally:
        service.stop()
    results["path"] = args.path
    out = ROOT / "bench" / "results" / f"priority-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
