"""Execution paths compared on the same machine in one run: for fp32, int8 (torch), onnx, onnx-int8 and auto,
the bare model's ceiling (a), SST-2 dev accuracy, and the service's figures (b) batch x64, (c) 32 concurrent
single-text clients and (e) one client, with the model configured on that path. Not part of CI.

    .venv/bin/python bench/paths.py [--paths fp32,int8,onnx,onnx-int8,auto]
        [--model ../shared/models/minilm-sst2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine import CLIENTS, SHARED, Process, batches, ceiling, figures, free_port, load, singles


def read_labelled(path: Path) -> tuple[list[str], list[str]]:
    rows = [line.rsplit("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()[1:] if line]
    return [text for text, _ in rows], [label for _, label in rows]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--paths", default="fp32,int8,onnx,onnx-int8")
    parser.add_argument("--model", type=Path, default=SHARED / "models" / "minilm-sst2")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "sst2_dev.tsv")
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
    )
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentiment.inference.paths import build

    texts, gold = read_labelled(args.data)
    cache = Path(tempfile.mkdtemp(prefix="paths-cache-"))
    results: dict[str, dict[str, object]] = {}
    for path in args.paths.split(","):
        print(f"== {path}", flush=True)
        prepared = time.perf_counter()
        backend = build(str(args.model), path, args.threads, cache)  # type: ignore[arg-type]
        prepare_s = time.perf_counter() - prepared
        chosen = backend.execution_path
        assert path in ("auto", chosen), backend.fast_path_rejected
        predicted = [
            s.label for start in range(0, len(texts), 32) for s in backend.predict(texts[start : start + 32])
        ]
        accuracy = sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
        a = ceiling(args.model, texts, args.threads, backend)
        del backend
        env = {
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": str(args.threads),
            "LOG_LEVEL": "WARNING",
            "SENTIMENT_CACHE_SIZE": "0",
            "SENTIMENT_MODELS": f"bench={args.model}",
            "PRELOAD_MODEL": "bench",
            "SENTIMENT_EXECUTION_PATH": path,
            "SENTIMENT_CACHE_DIR": str(cache),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='paths-')}/bench.db",
        }
        port = free_port()
        service = Process(
            [sys.executable, "-m", "sentiment", "serve", "--port", str(port)], env, port, "/ready"
        )
        try:
            b = figures(load(port, 1, batches(texts, 64, repeat=2)))
            c = figures(load(port, CLIENTS, singles(texts, repeat=2)))
            e = figures(load(port, 1, singles(texts[:300])))
        finally:
            service.stop()
        results[path] = {
            "chosen": chosen,
            "prepare_s": prepare_s,
            "accuracy": accuracy,
            "a": a,
            "b": b,
            "c": c,
            "e": e,
        }
        print(
            f"   {chosen}: accuracy {accuracy:.4f}; "
            f"(a) {a['texts_per_s']:.0f} texts/s at batch {a['best_batch']}; "
            f"(b) {b['texts_per_s']:.0f}; (c) {c['texts_per_s']:.0f}; (e) p50 {e['p50_ms']:.1f} ms",
            flush=True,
        )
    base = results.get("fp32")
    print(
        f"\n{'path':<10} {'accuracy':>8} {'(a) t/s':>8} {'(b) t/s':>8} {'(c) t/s':>8} {'(e) p50':>8} "
        f"{'a/a32':>6} {'c/c32':>6}"
    )
    for path, r in results.items():
        a_ratio = r["a"]["texts_per_s"] / base["a"]["texts_per_s"] if base else float("nan")  # type: ignore[index]
        c_ratio = r["c"]["texts_per_s"] / base["c"]["texts_per_s"] if base else float("nan")  # type: ignore[index]
        print(
            f"{path:<10} {r['accuracy']:>8.4f} {r['a']['texts_per_s']:>8.0f} {r['b']['texts_per_s']:>8.0f} "  # type: ignore[index]
            f"{r['c']['texts_per_s']:>8.0f} {r['e']['p50_ms']:>7.1f}ms {a_ratio:>6.2f} {c_ratio:>6.2f}"
        )  # type: ignore[index]
    out = ROOT / "bench" / "results" / f"paths-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
