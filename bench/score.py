"""Offline scoring at scale: `sentiment score` with VADER over generated CSVs of 1,000,000 and 3,000,000 rows.

    .venv/bin/python bench/score.py [--rows 1000000 3000000] [--model vader] [--keep]

Each CSV (id, created_at, airline, text; texts drawn from ../shared/data with random lengths, some quoted with
commas, quotes and line breaks, a few empty so that problem rows are reported) is generated into a temporary
folder, one row at a time. `sentiment score` then runs as its own process under /usr/bin/time -v (peak RSS
from "Maximum resident set size"; without /usr/bin/time, /proc/PID/status VmHWM is polled). A file read and
written as a stream keeps the same peak memory whatever its size: the check is peak RSS under 400 MB for every
size, and the largest within 10% of the smallest. Prints rows/s and peak RSS per size; writes
bench/results/score-*.json. Not part of CI.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SENTIMENT = Path(sys.executable).parent / "sentiment"
RSS_LIMIT_MB = 400.0
SPREAD_LIMIT = 0.10


def text_pool() -> list[str]:
    texts: list[str] = []
    with (DATA / "tweeteval_val.tsv").open(encoding="utf-8") as tsv:
        next(tsv)
        texts += [line.rstrip("\n").rsplit("\t", 1)[0] for line in tsv]
    with (DATA / "airline_tweets.csv").open(encoding="utf-8", newline="") as airline:
        reader = csv.DictReader(airline)
        texts += [row["text"] for row in reader]
    return texts


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` rows one at a time: the file never exists in memory, here or in the scorer."""
    rng = random.Random(seed)
    pool = text_pool()
    airlines = ["United", "US Airways", "American", "Southwest", "Delta", "Virgin America"]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "created_at", "airline", "text"])
        for index in range(rows):
            text = rng.choice(pool)
            if rng.random() < 0.2:
                text = (
                    f"{text} {rng.choice(pool)}"  # a longer text now and then: lengths vary as in real data
                )
            if rng.random() < 0.0005:
                text = ""  # an empty text: reported by line number and skipped
            minute = index % (60 * 24 * 9)
            writer.writerow(
                [
                    index,
                    f"{16 + minute // 1440:02d}-02-2015 {minute // 60 % 24:02d}:{minute % 60:02d}",
                    rng.choice(airlines),
                    text,
                ]
            )


def measure(command: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, last output line) of one run of `command`."""
    started = time.perf_counter()
    if Path("/usr/bin/time").exists():
        done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed:\n{done.stderr[-2000:]}")
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        assert match, done.stderr[-2000:]
        return seconds, int(match.group(1)) / 1024, done.stdout.strip().splitlines()[-1]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_kb = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            peak_kb = max(peak_kb, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            pass
        time.sleep(0.05)
    output = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed")
    return time.perf_counter() - started, peak_kb / 1024, output.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--model", default="vader")
    parser.add_argument("--keep", action="store_true", help="keep the generated and scored files")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sentiment-score-bench-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    os.environ.update(env)
    results = []
    try:
        for rows in args.rows:
            source, target = folder / f"rows-{rows}.csv", folder / f"rows-{rows}.scored.csv"
            generated = time.perf_counter()
            generate(source, rows)
            print(
                f"generated {rows:,} rows ({source.stat().st_size / 1e6:,.0f} MB) in "
                f"{time.perf_counter() - generated:.0f} s",
                flush=True,
            )
            command = [
                str(SENTIMENT),
                "score",
                str(source),
                "--text-column",
                "text",
                "--model",
                args.model,
                "-o",
                str(target),
                "--no-progress",
            ]
            seconds, peak_mb, line = measure(command)
            with target.open(encoding="utf-8", newline="") as scored:
                written = sum(1 for _ in csv.reader(scored)) - 1
            results.append(
                {
                    "rows": rows,
                    "input_mb": round(source.stat().st_size / 1e6, 1),
                    "seconds": round(seconds, 1),
                    "rows_per_s": round(rows / seconds),
                    "peak_rss_mb": round(peak_mb, 1),
                    "rows_written": written,
                    "cli": line,
                }
            )
            print(
                f"{rows:>10,} rows  {seconds:7.1f} s  {rows / seconds:9,.0f} rows/s  "
                f"peak RSS {peak_mb:6.1f} MB  written {written:,}\n  {line}",
                flush=True,
            )
            if not args.keep:
                source.unlink()
                target.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    peaks = [result["peak_rss_mb"] for result in results]
    spread = (max(peaks) - min(peaks)) / min(peaks)  # type: ignore[operator]
    ok = max(peaks) < RSS_LIMIT_MB and spread <= SPREAD_LIMIT  # type: ignore[operator]
    print(
        f"peak RSS {min(peaks):.1f}-{max(peaks):.1f} MB (limit {RSS_LIMIT_MB:.0f} MB), "
        f"spread {100 * spread:.1f}% (limit {100 * SPREAD_LIMIT:.0f}%): {'ok' if ok else 'FAILED'}"
    )
    out = ROOT / "bench" / "results" / f"score-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"model": args.model, "results": results, "peak_spread": round(spread, 4), "ok": ok}, indent=2
        )
    )
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
