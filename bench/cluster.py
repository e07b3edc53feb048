"""`sentiment score --cluster local:N` against the same command in one process, in the same run.

    .venv/bin/python bench/cluster.py [--workers 2] [--vader-rows 250000 1000000]
                                      [--model-rows 100000] [--model ../shared/models/minilm-sst2]
                                      [--path onnx-int8] [--keep]

Generates the CSVs of bench/score.py (tweets of ../shared/data repeated, with time and group columns, a few
empty texts), then for VADER at each size and for the model at its size runs `sentiment score` once alone
and once per worker count with `--cluster local:N` (N single-threaded worker processes, torch threads =
cores / N). Prints rows/s of each, the speed-up over one process, the outputs' agreement (identical files,
else labels equal and the largest confidence difference), the client's peak RSS and every worker's: bounded
means the workers' peak does not grow with the corpus. Writes bench/results/cluster-*.json. Not part of CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.score import SENTIMENT, generate

ROOT = Path(__file__).resolve().parents[1]


def score(source: Path, target: Path, model: str, path: str | None, cluster: str | None) -> dict[str, object]:
    """One `sentiment score` run: its seconds, and from the command's own summary the peak RSS of its process
    and, with a cluster, of every worker."""
    command = [str(SENTIMENT), "score", str(source), "--text-column", "text", "--model", model]
    command += ["-o", str(target), "--no-progress"]
    command += ["--execution-path", path] if path else []
    command += ["--cluster", cluster] if cluster else []
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{done.stderr[-3000:]}")
    client = re.search(r"; peak memory ([\d,]+) MB", done.stdout)
    workers = re.search(r"peak memory per worker \(MB\): ([\d, ]+)", done.stdout)
    return {
        "seconds": round(seconds, 1),
        "client_peak_rss_mb": float(client.group(1).replace(",", "")) if client else None,
        "worker_peak_rss_mb": [float(x.replace(",", "")) for x in workers.group(1).split(", ")]
        if workers
        else None,
        "summary": done.stdout.strip(),
    }


def agreement(expected: Path, found: Path) -> dict[str, object]:
    """Rows, label agreement and the largest confidence difference between two scored CSVs."""
    with expected.open(encoding="utf-8", newline="") as a, found.open(encoding="utf-8", newline="") as b:
        rows = labels = 0
        largest = 0.0
        for one, other in zip(csv.DictReader(a), csv.DictReader(b), strict=True):
            rows += 1
            labels += one["label"] == other["label"]
            largest = max(largest, abs(float(one["confidence"]) - float(other["confidence"])))
    return {"rows": rows, "labels_equal": labels, "max_confidence_diff": largest}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--vader-rows", type=int, nargs="*", default=[250_000, 1_000_000])
    parser.add_argument("--model-rows", type=int, default=100_000)
    parser.add_argument("--model", default=str(ROOT.parent / "shared" / "models" / "minilm-sst2"))
    parser.add_argument("--path", default="onnx-int8")
    parser.add_argument("--keep", action="store_true", help="keep the generated and scored files")
    args = parser.parse_args()
    os.environ.update({"HF_HUB_OFFLINE": "1", "LOG_LEVEL": "WARNING"})
    folder = Path(tempfile.mkdtemp(prefix="sentiment-cluster-bench-"))
    jobs = [("vader", None, rows) for rows in args.vader_rows]
    jobs += [(args.model, args.path, args.model_rows)] if args.model_rows else []
    results = []
    try:
        for model, path, rows in jobs:
            source = folder / f"rows-{rows}.csv"
            if not source.exists():
                generate(source, rows)
            alone = folder / f"alone-{rows}-{Path(model).name}.csv"
            single = score(source, alone, model, path, None)
            single_rate = rows / float(single["seconds"])  # type: ignore[arg-type]
            print(
                f"{Path(model).name} {path or ''} {rows:,} rows, one process: {json.dumps(single)}",
                flush=True,
            )
            for workers in args.workers:
                target = folder / f"cluster-{rows}-{workers}.csv"
                result = score(source, target, model, path, f"local:{workers}")
                rate = rows / float(result["seconds"])  # type: ignore[arg-type]
                same = alone.read_bytes() == target.read_bytes()
                entry = {
                    "model": Path(model).name,
                    "path": path,
                    "rows": rows,
                    "workers": workers,
                    "one_process_rows_per_s": round(single_rate),
                    "one_process_peak_rss_mb": single["client_peak_rss_mb"],
                    "cluster_rows_per_s": round(rate),
                    "speedup": round(rate / single_rate, 2),
                    "identical_file": same,
                    **result,
                    **({} if same else agreement(alone, target)),
                }
                results.append(entry)
                print(json.dumps(entry), flush=True)
                target.unlink()
            alone.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    out = ROOT / "bench" / "results" / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
