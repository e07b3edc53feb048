"""The service's own cost: server CPU per request and per text, from the service process's CPU time (so the
load generator's noise does not count), with VADER and the answer cache off.

    .venv/bin/python bench/overhead.py [--requests 20000] [--batches 400] [--clients 8]
        [--database-url URL] [--log-level WARNING] [--profile]

(1) single-text POST /predict from `--clients` clients; (2) 256-text POST /predict/batch from 2 clients;
(3) the bare VADER backend on the same texts in this process, for the share that is VADER's own. Every
answered row is stored before the CPU is read, so the storage writes count. `--profile` samples the
service with py-spy (`pip install py-spy`) during (1) and (2) and prints, per phase, the functions with the
most samples of their own and the frames with the most samples under them.
Writes bench/results/overhead-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine import SHARED, Process, free_port, read_texts
from bench.httpclient import closed_loop
from bench.load import pending_writes

BATCH = 256


def settle(port: int) -> None:
    """Wait until every answered row is stored: the writes are part of the cost."""
    deadline = time.monotonic() + 120
    while asyncio.run(pending_writes(port)) != 0 and time.monotonic() < deadline:
        time.sleep(0.2)


def measured(
    service: Process, port: int, clients: int, bodies: list[tuple[str, dict, int]]
) -> dict[str, float]:
    before = service.cpu_seconds()
    result = asyncio.run(closed_loop("127.0.0.1", port, clients, iter(bodies)))
    settle(port)
    cpu = service.cpu_seconds() - before
    if result.errors:
        raise RuntimeError(f"{result.errors} requests failed")
    return {
        "requests": result.requests,
        "texts": result.texts,
        "server_cpu_s": cpu,
        "cpu_ms_per_request": cpu / result.requests * 1000,
        "cpu_us_per_text": cpu / result.texts * 1e6,
        "texts_per_s": result.texts_per_s,
    }


def sampled(service: Process, phase: str, run):  # type: ignore[no-untyped-def]
    """Run `run()` with py-spy sampling the service; print where its samples fell."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    stacks = Path(tempfile.mkdtemp(prefix="overhead-spy-")) / f"{phase}.txt"
    command = [spy, "record", "--format", "raw", "--rate", "250", "--gil", "-o", str(stacks)]
    recorder = subprocess.Popen([*command, "--pid", str(service.process.pid)], stdout=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    try:
        return run()
    finally:
        recorder.send_signal(2)
        recorder.wait(30)
        print_profile(phase, stacks)


def print_profile(phase: str, stacks: Path, top: int = 25) -> None:
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        names = [
            frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1].rstrip(")") for frame in frames.split(";")
        ]
        total += int(count)
        own[names[-1]] += int(count)
        for name in set(names):
            under[name] += int(count)
    print(f"--- {phase}: {total} samples; own time")
    for name, count in own.most_common(top):
        print(f"{count / total:6.1%}  {name}")
    print(f"--- {phase}: time under")
    for name, count in under.most_common(top * 2):
        print(f"{count / total:6.1%}  {name}")


def bare_vader_us(texts: list[str]) -> float:
    from sentiment.inference.vader import VaderBackend

    backend = VaderBackend()
    started = time.process_time()
    for start in range(0, len(texts), BATCH):
        backend.predict(texts[start : start + BATCH])
    return (time.process_time() - started) / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "sst2_dev.tsv")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database-url")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--log-level", default="WARNING", help="the service's LOG_LEVEL (INFO: an access-log line a request)"
    )
    args = parser.parse_args()
    texts = read_texts(args.data)
    database = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='overhead-')}/overhead.db"
    env = {
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": args.log_level,
        "SENTIMENT_CACHE_SIZE": "0",
        "PRELOAD_MODEL": "vader",
        "DATABASE_URL": database,
    }
    port = free_port()
    service = Process([sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready")
    singles = [("/predict", {"text": f"{texts[i % len(texts)]} #{i}"}, 1) for i in range(args.requests)]
    batches = [
        (
            "/predict/batch",
            {"texts": [f"{texts[(i * BATCH + j) % len(texts)]} #{i}" for j in range(BATCH)]},
            BATCH,
        )
        for i in range(args.batches)
    ]

    def phase(run, name: str):  # type: ignore[no-untyped-def]
        return sampled(service, name, run) if args.profile else run()

    try:
        measured(service, port, args.clients, singles[:500])  # warm-up
        print(f"(1) {args.requests} single-text /predict, {args.clients} clients ...", flush=True)
        single = phase(lambda: measured(service, port, args.clients, singles), "single")
        print(f"    server CPU {single['cpu_ms_per_request']:.3f} ms per request", flush=True)
        print(f"(2) {args.batches} x {BATCH}-text /predict/batch, 2 clients ...", flush=True)
        batch = phase(lambda: measured(service, port, 2, batches), "batch")
        print(f"    server CPU {batch['cpu_us_per_text']:.1f} us per text", flush=True)
    finally:
        service.stop()
    vader = bare_vader_us([text for _, body, _ in batches for text in body["texts"]])
    print(f"(3) bare VADER {vader:.1f} us per text (CPU, this process)")
    results = {
        "single": single,
        "batch": batch,
        "bare_vader_us_per_text": vader,
        "database": database.split(":")[0],
    }
    out = ROOT / "bench" / "results" / f"overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
