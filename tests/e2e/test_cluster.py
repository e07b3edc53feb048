"""Corpora scored on a Dask cluster: a loopback cluster of two single-threaded worker processes gives the same
output as scoring in one process, also when a worker is killed mid-run; Parquet and CSV keep every column."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dask.dataframe as dd
import pandas as pd
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

from sentiment.core.domain import SentimentError
from sentiment.inference.vader import VaderBackend
from sentiment.services import distributed
from sentiment.services.distributed import ClusterSummary, score_file_on_cluster, score_frame
from sentiment.services.offline import ScoreRequest, score_file
from sentiment.settings import Settings
from tests.conftest import DATA, SST2_MODEL, make_settings

VADER_LABELS = ("negative", "neutral", "positive")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # Dask's nanny sets its workers' OMP_NUM_THREADS and MKL_NUM_THREADS in this process's environment before
    # it spawns them: put the environment back for the tests that follow.
    saved = dict(os.environ)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def settings() -> Settings:
    return make_settings("sqlite+aiosqlite://", torch_threads=1)


def tweets(tmp_path: Path, rows: int) -> Path:
    """The first `rows` SemEval tweets as a CSV, with two empty texts among them."""
    path = tmp_path / "tweets.csv"
    with (DATA / "semeval_train.tsv").open(encoding="utf-8") as source, path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "text", "gold"])
        next(source)
        for number, line in enumerate(source):
            if number == rows:
                break
            text, gold = line.rstrip("\n").rsplit("\t", 1)
            writer.writerow([number, "" if number in (7, 1234) else text, gold])
    return path


def single_process(settings: Settings, source: Path, target: Path, model: str, chunk_rows: int) -> str:
    problems = io.StringIO()
    request = ScoreRequest(source, target, "text", model, chunk_rows)
    asyncio.run(score_file(settings, request, show_bar=False, stream=problems))
    return problems.getvalue()


def on_cluster(
    settings: Settings, source: Path, target: Path, model: str, chunk_rows: int, address: str
) -> tuple[ClusterSummary, str]:
    problems = io.StringIO()
    request = ScoreRequest(source, target, "text", model, chunk_rows)
    return score_file_on_cluster(
        settings, request, address, show_bar=False, stream=problems
    ), problems.getvalue()


def test_vader_on_the_cluster_writes_the_file_scoring_in_one_process_writes(
    cluster: LocalCluster, settings: Settings, tmp_path: Path
) -> None:
    source = tweets(tmp_path, 4000)
    alone = tmp_path / "alone.csv"
    expected_problems = single_process(settings, source, alone, "vader", 256)
    target = tmp_path / "cluster.csv"
    summary, problems = on_cluster(settings, source, target, "vader", 256, cluster.scheduler_address)
    assert target.read_bytes() == alone.read_bytes()
    assert problems == expected_problems
    assert "line 9: the text ('text') is empty; skipped" in problems
    assert (summary.scoring.rows, summary.scoring.scored, summary.scoring.skipped) == (4000, 3998, 2)
    assert summary.workers == 2 and len(summary.worker_peak_rss_mb) == 2


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_replaced_and_every_row_is_scored_exactly_once(
    cluster: LocalCluster, settings: Settings, tmp_path: Path
) -> None:
    source = DATA / "sst2_dev.tsv"
    alone = tmp_path / "alone.csv"
    single_process(settings, source, alone, str(SST2_MODEL), 32)
    with Client(cluster) as watcher:
        pids = watcher.run(os.getpid)
        killed: list[int] = []

        def kill_one_worker_once_both_work() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                busy = [address for address, keys in watcher.processing().items() if keys]
                if len(busy) == 2:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(pids[busy[0]])
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one_worker_once_both_work)
        killer.start()
        target = tmp_path / "cluster.csv"
        on_cluster(settings, source, target, str(SST2_MODEL), 32, cluster.scheduler_address)
        killer.join()
    assert killed, "both workers never worked at once"
    with alone.open(newline="") as a, target.open(newline="") as b:
        expected, found = list(csv.DictReader(a, delimiter=",")), list(csv.DictReader(b))
    assert len(found) == len(expected) == 872
    assert [row["text"] for row in found] == [row["text"] for row in expected]
    assert [row["predicted_label"] for row in found] == [row["predicted_label"] for row in expected]
    for mine, theirs in zip(found, expected, strict=True):
        assert abs(float(mine["confidence"]) - float(theirs["confidence"])) <= 1e-4


def test_parquet_through_the_cluster_keeps_every_column_with_its_type(
    cluster: LocalCluster, settings: Settings, tmp_path: Path
) -> None:
    frame = pd.read_csv(DATA / "airline_tweets.csv", nrows=3000)
    frame["tweet_created"] = pd.to_datetime(frame["tweet_created"], format="%d-%m-%Y %H:%M", utc=True)
    source = tmp_path / "airline.parquet"
    frame.to_parquet(source, index=False)
    single_process(settings, source, tmp_path / "alone.parquet", "vader", 500)
    on_cluster(settings, source, tmp_path / "cluster.parquet", "vader", 500, cluster.scheduler_address)
    found = pq.read_table(tmp_path / "cluster.parquet")
    assert found.equals(pq.read_table(tmp_path / "alone.parquet"))
    original = pq.read_schema(source)
    assert found.schema.names == [
        *original.names,
        "label",
        "confidence",
        *(f"score_{x}" for x in VADER_LABELS),
    ]
    for field in original:
        assert found.schema.field(field.name).type == field.type
    assert found.num_rows == 3000
    assert found.column("tweet_id").to_pylist() == frame["tweet_id"].tolist()
    # And back to CSV: every input column, as text.
    on_cluster(settings, source, tmp_path / "cluster.csv", "vader", 500, cluster.scheduler_address)
    with (tmp_path / "cluster.csv").open(newline="") as scored:
        header = next(csv.reader(scored))
    assert header == [*original.names, "label", "confidence", *(f"score_{x}" for x in VADER_LABELS)]


def test_score_frame_adds_the_columns_to_a_dask_frame_and_keeps_rows_without_text(
    cluster: LocalCluster, settings: Settings
) -> None:
    texts = [
        "what a lovely day",
        None,
        "this is terrible",
        "  ",
        "the bus leaves at ten",
        "best. film. ever.",
    ]
    frame = dd.from_pandas(pd.DataFrame({"id": range(6), "text": texts}), npartitions=3)
    with Client(cluster):
        scored = score_frame(frame, "text", settings, model="vader").compute()
    assert list(scored.columns) == [
        "id",
        "text",
        "label",
        "confidence",
        *(f"score_{x}" for x in VADER_LABELS),
    ]
    expected = VaderBackend().predict([t for t in texts if t and t.strip()])
    usable = scored[scored["label"].notna()]
    assert list(usable["id"]) == [0, 2, 4, 5]
    assert list(usable["label"]) == [answer.label for answer in expected]
    assert list(usable["confidence"]) == pytest.approx([answer.confidence for answer in expected], abs=1e-12)
    assert scored.loc[scored["id"].isin([1, 3]), "confidence"].isna().all()


def test_score_frame_names_a_missing_text_column(settings: Settings) -> None:
    frame = dd.from_pandas(pd.DataFrame({"body": ["x"]}), npartitions=1)
    with pytest.raises(SentimentError, match="there is no column 'text'; the columns are: 'body'"):
        score_frame(frame, "text", settings)


def test_a_model_that_cannot_load_on_the_workers_stops_the_run_at_once_with_the_reason(
    cluster: LocalCluster, settings: Settings, tmp_path: Path
) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    source = tweets(tmp_path, 10)
    with pytest.raises(SentimentError, match="broken-model"):
        on_cluster(settings, source, tmp_path / "out.csv", str(broken), 10, cluster.scheduler_address)
    assert not (tmp_path / "out.csv").exists()


def test_a_scheduler_that_does_not_answer_is_one_clear_error(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT_S", 1)
    source = tweets(tmp_path, 10)
    with pytest.raises(SentimentError, match=r"no Dask scheduler answers at tcp://127.0.0.1:9 within 1 s"):
        on_cluster(settings, source, tmp_path / "out.csv", "vader", 10, "tcp://127.0.0.1:9")


def test_the_command_line_scores_on_a_local_cluster_and_refuses_a_bad_one(tmp_path: Path) -> None:
    source = tweets(tmp_path, 300)

    def sentiment(*args: str) -> subprocess.CompletedProcess[str]:
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT_", "PRELOAD_", "DATABASE_"))
        }
        return subprocess.run(
            [sys.executable, "-m", "sentiment", "score", str(source), "--text-column", "text", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env={**clean, "HF_HUB_OFFLINE": "1", "LOG_LEVEL": "WARNING"},
        )

    done = sentiment("-o", "out.parquet", "--cluster", "local:2")
    assert done.returncode == 0, done.stderr
    assert "scored 299 of 300 rows (1 skipped) with vader" in done.stdout
    assert "line 9: the text ('text') is empty; skipped" in done.stderr
    assert "[info" not in done.stderr  # Dask's own chatter stays below the log level
    assert "on 2 Dask workers; peak memory per worker (MB):" in done.stdout
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 299
    refused = sentiment("-o", "out.csv", "--cluster", "local:many")
    assert refused.returncode == 2
    assert (
        refused.stderr.strip().splitlines()[-1]
        == "sentiment: --cluster 'local:many': say how many workers, e.g. local:2"
    )
