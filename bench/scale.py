"""The service against the bare model on a big machine, in one go: a GPU, or a CPU with many cores.

    python bench/scale.py --model PATH [--device auto] [--data FILE] [--processes 4] [--seconds 20]

Needs only the repository, one model folder and the project's dependencies (from a checkout:
`PYTHONPATH=. python bench/scale.py ...`); the texts are SST-2 dev when ../shared is beside the repository,
else the self-check's built-in sample (2,115 texts, shorter than SST-2's).

(1) the bare ceiling: the backend the service loads on this device (half precision on a GPU, fp32 on a CPU),
    texts sorted by length, batches of 64 and 256, no HTTP and no queue: texts/s.
(2) the service (SENTIMENT_DEVICE, cache off) under `--processes` load processes x 4 clients of 256-text
    /predict/batch: texts/s, and its share of the best of (1).
(3) 128 single-text clients (spread over the load processes): texts/s, p50 and p95 latency.
It prints the issue's targets beside the figures (a GPU: batches at least 0.8x the fp16 ceiling and 128 single
clients at least 3,000 texts/s; 16 or more cores: both at least 0.8x the fp32 length-sorted rate) and writes
bench/results/scale-*.json. Several load processes, so that the load generator is not what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from multiprocessing.queues import Queue
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine import SHARED, Process, free_port, read_texts
from bench.httpclient import closed_loop, percentile

BATCH = 256
BATCH_CLIENTS_PER_PROCESS = 4
SINGLE_CLIENTS = 128


def bench_texts(data: Path | None) -> tuple[list[str], str]:
    """The texts and where they came from."""
    path = data or SHARED / "data" / "sst2_dev.tsv"
    if path.exists():
        return read_texts(path), str(path)
    if data is not None:
        raise SystemExit(f"{data} does not exist")
    from sentiment.inference.self_check import SAMPLE_TEXTS

    return list(SAMPLE_TEXTS), "the self-check's built-in sample"


def bare_ceiling(model: Path, device: str, texts: list[str]) -> dict[str, float]:
    """(1): texts/s of the backend alone, by batch size, on length-sorted texts."""
    from sentiment.inference.paths import resolve_device
    from sentiment.inference.transformers_backend import TransformersBackend

    backend = TransformersBackend(str(model), device=resolve_device(device))
    ordered = sorted(texts, key=len)
    rates: dict[str, float] = {"execution_path": backend.execution_path}  # type: ignore[dict-item]
    for size in (64, BATCH):
        backend.predict(ordered[:size])  # warm: kernels, allocator
        started = time.perf_counter()
        for start in range(0, len(ordered), size):
            backend.predict(ordered[start : start + size])
        rates[f"batch_{size}"] = len(ordered) / (time.perf_counter() - started)
        print(f"(1) bare, batch {size}: {rates[f'batch_{size}']:.0f} texts/s", flush=True)
    return rates


Body = tuple[str, dict[str, object], int]


def _load_process(port: int, clients: int, bodies: list[Body], seconds: float, out: Queue) -> None:
    """One load generator: `clients` connections cycling through `bodies` for `seconds`."""
    deadline = time.monotonic() + seconds

    def cycle() -> Iterator[Body]:
        while time.monotonic() < deadline:
            yield from bodies

    result = asyncio.run(closed_loop("127.0.0.1", port, clients, cycle()))
    out.put((result.texts, result.errors, result.seconds, result.latencies_s))


def load(port: int, processes: int, clients: int, bodies: list[Body], seconds: float) -> dict[str, float]:
    """`processes` load generators with `clients` connections each, for `seconds`: the texts answered per
    second over the run, errors, and latency percentiles over every request."""
    results: Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(
            target=_load_process, args=(port, clients, bodies[i::processes], seconds, results)
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    gathered = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = [latency for *_, found in gathered for latency in found]
    return {
        "texts_per_s": sum(texts for texts, *_ in gathered) / max(elapsed for _, _, elapsed, _ in gathered),
        "errors": sum(errors for _, errors, _, _ in gathered),
        "requests": len(latencies),
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "minilm-sst2")
    parser.add_argument("--device", default="auto", help="auto (the GPU when torch sees one), cuda or cpu")
    parser.add_argument("--data", type=Path, help="a TSV of texts (text<TAB>label); default: SST-2 dev")
    parser.add_argument("--processes", type=int, default=4, help="load-generator processes")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each load")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentiment.inference.paths import resolve_device

    device = resolve_device(args.device)
    texts, source = bench_texts(args.data)
    print(
        f"{len(texts)} texts from {source}; model {args.model} on {device}; {os.cpu_count()} cores",
        flush=True,
    )
    results: dict[str, object] = {"device": device, "cores": os.cpu_count(), "texts": len(texts)}
    bare = bare_ceiling(args.model, device, texts)
    results["bare"] = bare
    ceiling = max(rate for key, rate in bare.items() if key.startswith("batch_"))

    env = {
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
        "SENTIMENT_DEVICE": device,
        "SENTIMENT_CACHE_SIZE": "0",
        "SENTIMENT_MODELS": f"bench={args.model}",
        "PRELOAD_MODEL": "bench",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='scale-')}/scale.db",
    }
    port = free_port()
    service = Process([sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready")
    try:
        batch_bodies: list[Body] = [
            (
                "/predict/batch",
                {"texts": [f"{texts[(i * BATCH + j) % len(texts)]} #{i}" for j in range(BATCH)]},
                BATCH,
            )
            for i in range(64)
        ]
        single_bodies: list[Body] = [
            ("/predict", {"text": f"{text} #{i}"}, 1) for i, text in enumerate(texts * 4)
        ]
        clients = BATCH_CLIENTS_PER_PROCESS
        print(
            f"(2) {args.processes} x {clients} clients of {BATCH}-text batches, {args.seconds:g} s ...",
            flush=True,
        )
        results["batches"] = load(port, args.processes, clients, batch_bodies, args.seconds)
        per_process = max(1, SINGLE_CLIENTS // args.processes)
        print(f"(3) {args.processes} x {per_process} single-text clients, {args.seconds:g} s ...", flush=True)
        results["singles"] = load(port, args.processes, per_process, single_bodies, args.seconds)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/models/bench", timeout=10) as answer:
            results["service_path"] = json.load(answer)["model"]["execution_path"]
    finally:
        service.stop()

    batches, singles = results["batches"], results["singles"]
    assert isinstance(batches, dict) and isinstance(singles, dict)
    batch_share = batches["texts_per_s"] / ceiling
    single_share = singles["texts_per_s"] / ceiling
    results["shares"] = {"batches": batch_share, "singles": single_share}
    print(f"    bare ceiling ({bare['execution_path']}, best batch): {ceiling:.0f} texts/s")
    print(f"    the service ran the model on {results['service_path']}")
    print(
        f"    batches: {batches['texts_per_s']:.0f} texts/s = {batch_share:.2f}x, errors {batches['errors']}"
    )
    print(
        f"    singles: {singles['texts_per_s']:.0f} texts/s = {single_share:.2f}x, "
        f"p50 {singles['p50_ms']:.1f} ms, p95 {singles['p95_ms']:.1f} ms, errors {singles['errors']}"
    )
    if device == "cuda":
        print(
            f"    targets (GPU): batches >= 0.8x: {batch_share >= 0.8}; singles >= 3,000 texts/s: "
            f"{singles['texts_per_s'] >= 3000}"
        )
    elif (os.cpu_count() or 1) >= 16:
        print(
            f"    targets (>= 16 cores): batches >= 0.8x: {batch_share >= 0.8}; "
            f"singles >= 0.8x: {single_share >= 0.8}"
        )
    else:
        print("    (fewer than 16 cores and no GPU: the issue's targets are for bigger machines)")
    out = ROOT / "bench" / "results" / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
