"""Inference-engine benchmark: the bare model's ceiling against the service, on the same machine, in one run.

    .venv/bin/python bench/engine.py [--model ../shared/models/minilm-sst2]
        [--data ../shared/data/sst2_dev.tsv]

(a) bare model (tokenizer + forward), best batch size among 1..32, batches in file order; single-text latency
(b) service, /predict/batch with 64 texts per request  (c) service, 32 concurrent single-text clients
(d) naive baseline under the load of (c): uvicorn + a synchronous transformers pipeline per request
(e) service, one client sending single texts           (f) VADER through the service, singles and batches
(g) /health p99 while (c) runs
The result cache is off and every process uses the same torch thread count.
Writes bench/results/engine-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.httpclient import Connection, LoadResult, closed_loop, percentile

SHARED = ROOT.parent / "shared"
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
CLIENTS = 32


def read_texts(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.rsplit("\t", 1)[0] for line in lines if line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ceiling(model: Path, texts: list[str], threads: int, backend: object | None = None) -> dict[str, object]:
    """(a): the bare backend the service itself uses (fp32 unless one is given), no HTTP and no queue."""
    import torch

    from sentiment.inference.transformers_backend import TransformersBackend

    torch.set_num_threads(threads)
    backend = backend or TransformersBackend(str(model), threads)
    by_size: dict[int, float] = {}
    single_latencies: list[float] = []
    for size in BATCH_SIZES:
        started = time.perf_counter()
        for start in range(0, len(texts), size):
            call_started = time.perf_counter()
            backend.predict(texts[start : start + size])  # type: ignore[attr-defined]
            if size == 1:
                single_latencies.append(time.perf_counter() - call_started)
        by_size[size] = len(texts) / (time.perf_counter() - started)
        print(f"  (a) batch {size:>2}: {by_size[size]:7.1f} texts/s", flush=True)
    best = max(by_size, key=by_size.__getitem__)
    return {
        "texts_per_s_by_batch": by_size,
        "best_batch": best,
        "texts_per_s": by_size[best],
        "single_p50_ms": percentile(single_latencies, 50) * 1000,
    }


class Process:
    def __init__(self, command: list[str], env: dict[str, str], port: int, ready_path: str) -> None:
        self.port = port
        # Open for the life of the process it logs; closed in stop().
        self.log = tempfile.NamedTemporaryFile(prefix="bench-", suffix=".log", delete=False)  # noqa: SIM115
        journal = tempfile.mkdtemp(prefix="bench-journal-")  # never the working folder's ./journal
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "SENTIMENT_JOURNAL_DIR": journal, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        asyncio.run(self._wait(ready_path))

    async def _wait(self, path: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.process.args} exited; see {self.log.name}")
            try:
                connection = Connection("127.0.0.1", self.port)
                status, _ = await connection.request(
                    "GET" if path != "/" else "POST", path, None if path != "/" else {"text": "warm"}
                )
                await connection.close()
                if status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.process.args} not ready; see {self.log.name}")

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


def singles(texts: list[str], model: str | None = None, repeat: int = 1):  # type: ignore[no-untyped-def]
    for text in itertools.chain.from_iterable(itertools.repeat(texts, repeat)):
        yield "/predict", ({"text": text} if model is None else {"text": text, "model": model}), 1


def batches(texts: list[str], size: int, model: str | None = None, repeat: int = 1):  # type: ignore[no-untyped-def]
    for _ in range(repeat):
        for start in range(0, len(texts), size):
            chunk = texts[start : start + size]
            yield (
                "/predict/batch",
                ({"texts": chunk} if model is None else {"texts": chunk, "model": model}),
                len(chunk),
            )


def load(port: int, clients: int, bodies) -> LoadResult:  # type: ignore[no-untyped-def]
    return asyncio.run(closed_loop("127.0.0.1", port, clients, bodies))


def with_health_probe(port: int, clients: int, bodies) -> tuple[LoadResult, list[float]]:  # type: ignore[no-untyped-def]
    """(c) and (g) together: /health is probed every 20 ms while the clients saturate the model."""

    async def run() -> tuple[LoadResult, list[float]]:
        probes: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            connection = Connection("127.0.0.1", port)
            while not done.is_set():
                started = time.perf_counter()
                await connection.request("GET", "/health")
                probes.append(time.perf_counter() - started)
                await asyncio.sleep(0.02)
            await connection.close()

        prober = asyncio.create_task(probe())
        result = await closed_loop("127.0.0.1", port, clients, bodies)
        done.set()
        await prober
        return result, probes

    return asyncio.run(run())


def figures(result: LoadResult) -> dict[str, float]:
    return {
        "texts_per_s": result.texts_per_s,
        "requests": result.requests,
        "errors": result.errors,
        "p50_ms": result.percentile_ms(50),
        "p95_ms": result.percentile_ms(95),
        "p99_ms": result.percentile_ms(99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "minilm-sst2")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "sst2_dev.tsv")
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    )
    parser.add_argument("--repeat", type=int, default=2, help="passes over the data for the concurrent loads")
    args = parser.parse_args()
    texts = read_texts(args.data)
    threads = str(args.threads)
    print(
        f"{len(texts)} texts from {args.data}, model {args.model}, "
        f"{threads} torch threads, {os.cpu_count()} cores"
    )

    results: dict[str, object] = {"threads": args.threads, "texts": len(texts), "cores": os.cpu_count()}
    results["a"] = ceiling(args.model, texts, args.threads)

    env = {
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": threads,
        "LOG_LEVEL": "WARNING",
        "SENTIMENT_CACHE_SIZE": "0",
        "SENTIMENT_MODELS": f"bench={args.model}",
        "PRELOAD_MODEL": "bench",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.db",
    }
    port = free_port()
    service = Process([sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready")
    client_cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    service_cpu_start = service.cpu_seconds()
    try:
        print("  (b) service, /predict/batch x64 ...", flush=True)
        results["b"] = figures(load(port, 1, batches(texts, 64, repeat=args.repeat)))
        print(
            f"  (c) service, {CLIENTS} concurrent single-text clients, with (g) /health probes ...",
            flush=True,
        )
        loaded, probes = with_health_probe(port, CLIENTS, singles(texts, repeat=args.repeat))
        results["c"] = figures(loaded)
        results["g"] = {
            "health_p50_ms": percentile(probes, 50) * 1000,
            "health_p99_ms": percentile(probes, 99) * 1000,
            "probes": len(probes),
        }
        print("  (e) service, one client ...", flush=True)
        results["e"] = figures(load(port, 1, singles(texts[:300])))
        print("  (f) VADER through the service ...", flush=True)
        results["f"] = {
            "singles": figures(load(port, CLIENTS, singles(texts, model="vader", repeat=args.repeat))),
            "batches": figures(load(port, 2, batches(texts, 64, model="vader", repeat=5 * args.repeat))),
        }
    finally:
        service_cpu = service.cpu_seconds() - service_cpu_start
        service.stop()
    client_cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    results["load_generator_cpu_s"] = (client_cpu_end.ru_utime + client_cpu_end.ru_stime) - (
        client_cpu_start.ru_utime + client_cpu_start.ru_stime
    )
    results["service_cpu_s"] = service_cpu

    print("  (d) naive baseline under the load of (c) ...", flush=True)
    port = free_port()
    naive = Process(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.naive_app:app",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        {**env, "NAIVE_MODEL": str(args.model), "PYTHONPATH": str(ROOT)},
        port,
        "/",
    )
    try:
        results["d"] = figures(load(port, CLIENTS, singles(texts, repeat=1)))
    finally:
        naive.stop()

    a, b, c, d, e = (results[k] for k in "abcde")
    results["ratios"] = {
        "c/a": c["texts_per_s"] / a["texts_per_s"],  # type: ignore[index]
        "b/a": b["texts_per_s"] / a["texts_per_s"],  # type: ignore[index]
        "c/d": c["texts_per_s"] / d["texts_per_s"],  # type: ignore[index]
        "e_p50_minus_a_single_ms": e["p50_ms"] - a["single_p50_ms"],  # type: ignore[index]
    }
    print_table(results)
    out = ROOT / "bench" / "results" / f"engine-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0


def print_table(r: dict) -> None:  # type: ignore[type-arg]
    a, b, c, d, e, f, g = (r[k] for k in "abcdefg")
    rows = [
        (
            "(a) bare model, best batch",
            (
                f"{a['texts_per_s']:.1f} texts/s (batch {a['best_batch']}); "
                f"single p50 {a['single_p50_ms']:.1f} ms"
            ),
        ),
        ("(b) service /predict/batch x64", f"{b['texts_per_s']:.1f} texts/s"),
        (
            "(c) service, 32 clients, singles",
            (
                f"{c['texts_per_s']:.1f} texts/s; p50/p95/p99 {c['p50_ms']:.0f}/"
                f"{c['p95_ms']:.0f}/{c['p99_ms']:.0f} ms; errors {c['errors']}"
            ),
        ),
        (
            "(d) naive pipeline, 32 clients",
            f"{d['texts_per_s']:.1f} texts/s; p50/p99 {d['p50_ms']:.0f}/{d['p99_ms']:.0f} ms",
        ),
        (
            "(e) service, 1 client, singles",
            f"p50/p95/p99 {e['p50_ms']:.1f}/{e['p95_ms']:.1f}/{e['p99_ms']:.1f} ms",
        ),
        (
            "(f) VADER via service",
            (
                f"singles {f['singles']['texts_per_s']:.0f} texts/s; batches "
                f"{f['batches']['texts_per_s']:.0f} texts/s"
            ),
        ),
        ("(g) /health during (c)", f"p50 {g['health_p50_ms']:.1f} ms, p99 {g['health_p99_ms']:.1f} ms"),
        ("ratios", "  ".join(f"{k} {v:.2f}" for k, v in r["ratios"].items())),
        ("CPU", f"load generator {r['load_generator_cpu_s']:.1f} s, service {r['service_cpu_s']:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
