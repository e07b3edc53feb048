"""Fine-tuning end to end on a small slice of the airline tweets (300 rows, one epoch, the real 3-class
MiniLM): through the CLI (with cancel and bad input), through the API (served at once and after a restart,
with cancel), and the same seed giving the same figures."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.core.training import Hyperparameters
from sentiment.services.settings import DatasetSettings
from sentiment.services.training import Trainer, TrainingRequest, TrainingService
from sentiment.settings import Settings
from tests.conftest import DATA, FP32, ROOT, TWEETS_MODEL, make_settings

pytestmark = pytest.mark.slow
AIRLINE = DATA / "airline_tweets.csv"
ADMIN = {"authorization": "Bearer train-token"}
PER_LABEL = 100


def labelled_slice(folder: Path, per_label: int = PER_LABEL) -> Path:
    """The first `per_label` rows of each label of the airline CSV, in file order, with all their columns."""
    path = folder / "airline-slice.csv"
    taken = {"negative": 0, "neutral": 0, "positive": 0}
    with (
        AIRLINE.open(encoding="utf-8", newline="") as source,
        path.open("w", encoding="utf-8", newline="") as out,
    ):
        reader = csv.DictReader(source)
        writer = csv.DictWriter(out, fieldnames=list(reader.fieldnames or ()))
        writer.writeheader()
        for row in reader:
            label = row["airline_sentiment"]
            if taken[label] < per_label:
                taken[label] += 1
                writer.writerow(row)
    return path


def nothing_in(folder: Path) -> bool:
    """No model folder and no partial one: the folder is missing or empty."""
    return not folder.exists() or not any(folder.iterdir())


def cli(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentiment", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENT_", "PRELOAD_", "DATABASE_"))}
    return {
        **clean,
        "HF_HUB_OFFLINE": "1",
        "SENTIMENT_MODELS": f"minilm-tweets3={TWEETS_MODEL}",
        "SENTIMENT_MODELS_DIR": str(tmp_path / "models"),
        # The default execution path (auto): the next process exports the new model and checks it once.
        "SENTIMENT_CACHE_DIR": str(tmp_path / "cache"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "PYTHONPATH": str(ROOT),
    }


def train_args(data: Path, name: str, *extra: str) -> list[str]:
    return [
        "train", str(data), "--text-column", "text", "--label-column", "airline_sentiment",
        "--base", "minilm-tweets3", "--name", name, "--epochs", "1", *extra,
    ]  # fmt: skip


def test_the_cli_trains_a_model_that_the_next_process_serves(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = labelled_slice(tmp_path)
    done = cli(*train_args(data, "slice-tuned"), env=cli_env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1 step 1/8" in done.stderr  # progress as it goes
    for line in ("slice-tuned (new)", "minilm-tweets3 (base)", "vader (vader)"):
        assert line in done.stdout, done.stdout
    folder = tmp_path / "models" / "slice-tuned"
    card = json.loads((folder / "training.json").read_text())
    assert card["split"] == {"train": 240, "validation": 30, "test": 30}
    assert card["label_column"] == "airline_sentiment" and card["base"] == "minilm-tweets3"
    assert card["label_mapping"] == {"negative": "negative", "neutral": "neutral", "positive": "positive"}
    assert card["new_head"] is False  # the base answers the same three labels: its head carries over
    assert [s["role"] for s in card["test"]] == ["new", "base", "vader"]
    assert all(s["figures"]["total"] == 30 for s in card["test"])
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["slice-tuned"]  # no partial folder left

    answered = cli(
        "predict", "the crew was lovely and we landed early", "--model", "slice-tuned", env=cli_env
    )
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["model_used"] == "slice-tuned"
    listed = cli("models", "list", env=cli_env)
    assert "slice-tuned" in listed.stdout

    again = cli(*train_args(data, "slice-tuned"), env=cli_env)
    assert again.returncode == 2 and "is taken" in again.stderr


def test_bad_input_is_refused_before_any_training(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = labelled_slice(tmp_path)
    (tmp_path / "thin").mkdir()
    thin = labelled_slice(tmp_path / "thin", per_label=19)
    cases = {
        "there is no column 'tweet'": ["--text-column", "tweet"],
        "too few rows per label": ["--name", "thin-one"],
        "unknown model 'no-such-model'": ["--base", "no-such-model"],
        "model name 'Bad Name'": ["--name", "Bad Name"],
    }
    for message, extra in cases.items():
        source = thin if "too few" in message else data
        refused = cli(*train_args(source, "fine", *extra), env=cli_env)
        assert refused.returncode == 2, (message, refused.stderr)
        assert message in refused.stderr, refused.stderr
    nothing = cli(*train_args(data, "no-labels", "--label-column", "airline"), env=cli_env)
    assert nothing.returncode == 2 and "are not sentiment labels" in nothing.stderr
    assert nothing_in(tmp_path / "models")


def test_ctrl_c_cancels_the_cli_and_leaves_nothing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data = labelled_slice(tmp_path, per_label=400)
    # The child takes Ctrl-C as from a terminal even where this suite runs as a background job, which ignores
    # SIGINT: a handler (unlike "ignore") is not inherited, so the child starts with the default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "sentiment", *train_args(data, "cancelled")],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    assert process.stderr is not None
    for line in process.stderr:  # wait until it trains
        if line.startswith("epoch 1/1 step"):
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, rest
    assert "training cancelled" in rest
    assert nothing_in(tmp_path / "models")


def test_the_same_seed_gives_the_same_figures_with_a_new_head_on_a_binary_base(tmp_path: Path) -> None:
    """minilm-sst2 answers negative/positive: three-class labels give it a new head, whose first weights
    come from the seed too."""
    data = labelled_slice(tmp_path)
    settings = make_settings("sqlite+aiosqlite://", device="cpu")
    figures = []
    for name in ("seeded-a", "seeded-b"):
        request = TrainingRequest(
            str(data), "text", "airline_sentiment", "minilm-sst2", name, Hyperparameters(epochs=1, seed=11)
        )
        report = Trainer(settings, tmp_path / "models", request, settings.models).run()
        assert report.new_head and report.labels == ["negative", "neutral", "positive"]
        new = report.scores("new")
        assert new is not None and new.labels == ("negative", "neutral", "positive")
        figures.append(
            [(s.role, round(s.figures.accuracy, 3), round(s.figures.macro_f1, 3)) for s in report.test]
            + [round(report.validation.macro_f1, 3), report.split_fingerprint]
        )
    assert figures[0] == figures[1]


# -- through the API, served at once and after a restart --------------------------------------------------


def app_settings(tmp_path: Path, database_url: str) -> Settings:
    models = Settings.from_env(
        {
            "SENTIMENT_MODELS": f"minilm-tweets3={TWEETS_MODEL}",
            "SENTIMENT_MODELS_DIR": str(tmp_path / "models"),
            **FP32,
        },
        dotenv=tmp_path / "no.env",
    ).models
    return make_settings(
        database_url,
        models=models,
        models_dir=str(tmp_path / "models"),
        admin_token="train-token",
        datasets=DatasetSettings(data_dir=str(tmp_path / "data")),
        sync_interval_s=0.2,
    )


@pytest.fixture
async def client(tmp_path: Path, sqlite_url: str) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(app_settings(tmp_path, sqlite_url))) as client:
        yield client


async def job_ended(client: AsyncTestClient, timeout_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = (await client.get("/training")).json()
        if job["phase"] in {"done", "failed", "cancelled"}:
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)


async def uploaded_with_gold(client: AsyncTestClient, data: Path) -> str:
    response = await client.post(
        "/datasets",
        files={"file": ("airline-slice.csv", data.read_bytes(), "text/csv")},
        data={"text_column": "text", "gold_column": "airline_sentiment", "model": "vader"},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_a_model_trained_through_the_api_is_served_at_once_and_after_a_restart(
    client: AsyncTestClient, tmp_path: Path, sqlite_url: str
) -> None:
    dataset_id = await uploaded_with_gold(client, labelled_slice(tmp_path))
    body = {"name": "api-tuned", "base": "minilm-tweets3", "epochs": 1}
    assert (await client.post(f"/datasets/{dataset_id}/train", json=body)).status_code == 401
    started = await client.post(f"/datasets/{dataset_id}/train", json=body, headers=ADMIN)
    assert started.status_code == 202, started.text
    busy = await client.post(f"/datasets/{dataset_id}/train", json={**body, "name": "second"}, headers=ADMIN)
    assert busy.status_code == 409 and "one training job runs at a time" in busy.text

    job = await job_ended(client)
    assert job["phase"] == "done", job
    assert job["step"] == job["total_steps"] == 8
    report = job["report"]
    assert report["data"] == "airline-slice.csv" and report["label_column"] == "airline_sentiment"
    assert {s["role"] for s in report["test"]} == {"new", "base", "vader"}
    answer = (await client.post("/predict", json={"text": "lost my bag again", "model": "api-tuned"})).json()
    assert (answer["model_used"], answer["fallback_used"]) == ("api-tuned", False)
    models = {m["key"]: m for m in (await client.get("/models")).json()["models"]}
    assert models["api-tuned"]["status"] == "loaded"

    taken = await client.post(f"/datasets/{dataset_id}/train", json=body, headers=ADMIN)
    assert taken.status_code == 400 and "is taken" in taken.text

    # After a restart the catalogue finds it in SENTIMENT_MODELS_DIR and loads it again (a chosen model).
    async with AsyncTestClient(app=create_app(app_settings(tmp_path, sqlite_url))) as restarted:
        deadline = time.monotonic() + 120
        while True:
            models = {m["key"]: m for m in (await restarted.get("/models")).json()["models"]}
            if models["api-tuned"]["status"] == "loaded":
                break
            assert time.monotonic() < deadline, models["api-tuned"]
            await asyncio.sleep(0.2)
        answer = (await restarted.post("/predict", json={"text": "lost my bag", "model": "api-tuned"})).json()
        assert (answer["model_used"], answer["fallback_used"]) == ("api-tuned", False)


async def test_a_training_job_is_cancelled_through_the_api(client: AsyncTestClient, tmp_path: Path) -> None:
    dataset_id = await uploaded_with_gold(client, labelled_slice(tmp_path, per_label=400))
    assert (await client.post("/training/cancel", headers=ADMIN)).status_code == 409  # nothing runs
    body = {"name": "to-cancel", "base": "minilm-tweets3", "epochs": 1}
    assert (await client.post(f"/datasets/{dataset_id}/train", json=body, headers=ADMIN)).status_code == 202
    deadline = time.monotonic() + 120
    while (await client.get("/training")).json()["step"] < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    cancelled = await client.post("/training/cancel", headers=ADMIN)
    assert cancelled.status_code == 200
    job = await job_ended(client)
    assert job["phase"] == "cancelled" and job["report"] is None
    assert nothing_in(tmp_path / "models")
    models = {m["key"] for m in (await client.get("/models")).json()["models"]}
    assert "to-cancel" not in models


async def test_a_data_set_without_a_gold_column_cannot_train(client: AsyncTestClient, tmp_path: Path) -> None:
    response = await client.post(
        "/datasets",
        files={"file": ("plain.csv", labelled_slice(tmp_path).read_bytes(), "text/csv")},
        data={"text_column": "text", "model": "vader"},
    )
    dataset_id = response.json()["id"]
    body = {"name": "no-gold", "base": "minilm-tweets3"}
    refused = await client.post(f"/datasets/{dataset_id}/train", json=body, headers=ADMIN)
    assert refused.status_code == 400 and "has no gold column" in refused.text
    missing = await client.post(
        "/datasets/00000000-0000-0000-0000-000000000000/train", json=body, headers=ADMIN
    )
    assert missing.status_code == 404


def test_partial_folders_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    models = tmp_path / "models"
    dead, live, kept = models / ".old.partial-1a2b3c4d", models / ".new.partial-5e6f7a8b", models / "trained"
    for folder in (dead, live, kept):
        folder.mkdir(parents=True)
    two_hours_ago = time.time() - 7200
    os.utime(dead, (two_hours_ago, two_hours_ago))
    os.utime(kept, (two_hours_ago, two_hours_ago))
    settings = make_settings("sqlite+aiosqlite://", models_dir=str(models))

    async def nothing(_: object) -> None:
        return None

    service = TrainingService(settings, models, lambda: settings.models, nothing, nothing)
    assert service.remove_abandoned() == [dead.name]
    assert sorted(p.name for p in models.iterdir()) == [live.name, "trained"]
