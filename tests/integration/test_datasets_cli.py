"""`sentiment score` and `sentiment eval` as their own processes, without a server."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, SST2_MODEL, TWEETS_MODEL

AIRLINE = DATA / "airline_tweets.csv"


def sentiment(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT_", "PRELOAD_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "-m", "sentiment", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**clean, "HF_HUB_OFFLINE": "1", "LOG_LEVEL": "WARNING", **(env or {})},
    )


def accuracy(output: str) -> float:
    match = re.search(r"accuracy\s+([0-9.]+)", output)
    assert match, output
    return float(match.group(1))


def test_score_writes_every_row_with_its_label_and_reports_bad_rows(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(
        AIRLINE.read_bytes()
        + b"5.7E+17,neutral,1,,,United,,x,,0,,,24-02-2015 11:35,,\n"
        + b"5.7E+17,neutral,1,,,United,,x,,0,caf\xe9,,24-02-2015 11:35,,\n"
    )
    target = tmp_path / "out.csv"
    done = sentiment(tmp_path, "score", str(source), "--text-column", "text", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"scored 14,640 of 14,642 rows \(2 skipped\) with vader in [0-9.]+ s: [0-9,]+ rows/s", done.stdout
    )
    # The file has 14,873 lines (texts with line breaks): the two rows appended are lines 14,874 and 14,875.
    assert "line 14874: the text ('text') is empty; skipped" in done.stderr
    assert "line 14875: not valid UTF-8 (in field 11); skipped" in done.stderr
    assert "rows/s" in done.stderr  # the progress bar
    with (
        target.open(encoding="utf-8", newline="") as scored,
        AIRLINE.open(encoding="utf-8", newline="") as original,
    ):
        rows, expected = list(csv.reader(scored)), list(csv.reader(original))
    assert len(rows) == 14_641
    assert rows[0][-5:] == ["label", "confidence", "score_negative", "score_neutral", "score_positive"]
    assert [row[:-5] for row in rows] == expected  # input order and every input column kept


def test_score_refuses_a_missing_column_or_model_in_one_line(tmp_path: Path) -> None:
    missing = sentiment(
        tmp_path, "score", str(AIRLINE), "--text-column", "tweet", "-o", str(tmp_path / "o.csv")
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith(
        "there is no column 'tweet' to use as the text column; the columns are: "
        "'tweet_id', 'airline_sentiment', 'airline_sentiment_confidence', "
        "'negativereason', 'negativereason_confidence', 'airline', "
        "'airline_sentiment_gold', 'name', 'negativereason_gold', 'retweet_count', "
        "'text', 'tweet_coord', 'tweet_created', 'tweet_location', 'user_timezone'"
    )
    unknown = sentiment(
        tmp_path, "score", str(AIRLINE), "--text-column", "text", "--model", "nope", "-o", "o.csv"
    )
    assert unknown.returncode == 2 and "unknown model 'nope'" in unknown.stderr


def test_eval_refuses_a_missing_file_or_a_gold_column_of_no_labels_in_one_line(tmp_path: Path) -> None:
    missing = sentiment(tmp_path, "eval", "nowhere.csv", "--model", "vader", "--no-progress")
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        "sentiment: No such file or directory: nowhere.csv",
    )
    (tmp_path / "rated.csv").write_text("text,stars\ngreat stay,five\nawful food,one\n", encoding="utf-8")
    unreadable = sentiment(
        tmp_path, "eval", "rated.csv", "--model", "vader", "--label-column", "stars", "--no-progress"
    )
    assert unreadable.returncode == 2
    assert unreadable.stderr.strip().startswith(
        "sentiment: gold column 'stars': its values ('five', 'one') are not"
    )


def test_eval_with_vader_on_tweeteval_prints_the_reference_figures(tmp_path: Path) -> None:
    done = sentiment(tmp_path, "eval", str(DATA / "tweeteval_val.tsv"), "--model", "vader")
    assert done.returncode == 0, done.stderr
    assert accuracy(done.stdout) == pytest.approx(0.573, abs=0.01)
    assert re.search(r"macro-F1\s+0\.\d{4}", done.stdout) and re.search(r"macro recall\s+0\.59", done.stdout)
    assert "confusion matrix (rows: gold, columns: predicted)" in done.stdout


def test_eval_reads_a_csv_gold_column_and_can_print_json(tmp_path: Path) -> None:
    done = sentiment(
        tmp_path,
        "eval",
        str(AIRLINE),
        "--model",
        "vader",
        "--label-column",
        "airline_sentiment",
        "--json",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["total"] == 14_640 and figures["model"] == "vader"
    assert sum(map(sum, figures["confusion"])) == 14_640


@pytest.mark.slow
def test_eval_of_minilm_tweets3_on_tweeteval_is_near_its_reference_accuracy(tmp_path: Path) -> None:
    done = sentiment(
        tmp_path,
        "eval",
        str(DATA / "tweeteval_val.tsv"),
        "--model",
        "minilm-tweets3",
        env={"SENTIMENT_MODELS": f"minilm-tweets3={TWEETS_MODEL}"},
    )
    assert done.returncode == 0, done.stderr
    assert accuracy(done.stdout) == pytest.approx(0.707, abs=0.01)


@pytest.mark.slow
def test_eval_of_minilm_sst2_given_as_a_folder_is_near_its_reference_accuracy(tmp_path: Path) -> None:
    done = sentiment(tmp_path, "eval", str(DATA / "sst2_dev.tsv"), "--model", str(SST2_MODEL))
    assert done.returncode == 0, done.stderr
    assert accuracy(done.stdout) == pytest.approx(0.901, abs=0.01)


@pytest.mark.slow
def test_scoring_streams_so_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    with AIRLINE.open(encoding="utf-8", newline="") as airline:
        texts = [row["text"] for row in csv.DictReader(airline)]
    peaks = []
    for rows in (20_000, 200_000):
        source = tmp_path / f"{rows}.csv"
        with source.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "text"])
            writer.writerows((i, texts[i % len(texts)]) for i in range(rows))
        done = sentiment(
            tmp_path,
            "score",
            str(source),
            "--text-column",
            "text",
            "-o",
            str(tmp_path / "o.csv"),
            "--no-progress",
        )
        assert done.returncode == 0, done.stderr
        peaks.append(float(re.search(r"peak memory ([0-9,]+) MB", done.stdout).group(1).replace(",", "")))  # type: ignore[union-attr]
    # Ten times the rows, the same memory: holding 200,000 rows would take some 50 MB more (bench/score.py
    # runs the full-size check: 1M and 3M rows).
    assert peaks[1] < 400 and peaks[1] <= peaks[0] + 15, peaks


def test_import_scores_loads_a_scored_file_once_and_refuses_an_unscored_one(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", "SENTIMENT_DATA_DIR": "data"}
    source = tmp_path / "in.tsv"
    header_and_rows = (DATA / "tweeteval_val.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:151]
    source.write_text("".join(header_and_rows), encoding="utf-8")
    scored = sentiment(tmp_path, "score", "in.tsv", "--text-column", "text", "-o", "scored.parquet")
    assert scored.returncode == 0, scored.stderr
    command = [
        "import-scores",
        "scored.parquet",
        "--name",
        "tweets",
        "--gold-column",
        "label",
        "--no-progress",
    ]
    done = sentiment(tmp_path, *command, env=env)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"imported 150 of 150 rows \(0 skipped\) as data set [0-9a-f-]{36} in [0-9.]+ s\n",
        done.stdout,
    )
    again = sentiment(tmp_path, *command, env=env)
    assert again.returncode == 0 and "tweets: already imported as data set" in again.stdout
    unscored = sentiment(tmp_path, "import-scores", "in.tsv", "--name", "raw", env=env)
    assert unscored.returncode == 2
    assert unscored.stderr.strip().splitlines()[-1].startswith("sentiment: the file has no scored columns")
