"""`sentiment predict` and `sentiment models` as their own processes, without a server."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from sentiment.storage.database import create_engine
from sentiment.storage.repositories import ModelChoiceRepository, ModelChoices
from tests.conftest import SST2_MODEL
from tests.integration.test_datasets_cli import sentiment


def test_predict_prints_one_prediction_as_json_from_vader(tmp_path: Path) -> None:
    done = sentiment(tmp_path, "predict", "I love this, it is wonderful!", "--model", "vader")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["sentiment"], answer["model_used"]) == ("positive", "vader")
    assert set(answer["scores"]) == {"negative", "neutral", "positive"}
    assert answer["confidence"] > 0.5


def test_predict_takes_a_model_folder(tmp_path: Path) -> None:
    # A cache of its own: the first run on a machine exports and checks the model (the default path, auto).
    done = sentiment(
        tmp_path,
        "predict",
        "a dull, lifeless and boring film",
        "--model",
        str(SST2_MODEL),
        env={"SENTIMENT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["sentiment"], answer["model_used"]) == ("negative", SST2_MODEL.name)
    assert set(answer["scores"]) == {"negative", "positive"}
    # Loading a model says nothing at WARNING: no torchao kernels, torch deprecations, exporter narration or
    # quantizer advice reported as problems.
    assert done.stderr == ""


def test_predict_with_an_unknown_model_says_so_in_one_line(tmp_path: Path) -> None:
    done = sentiment(tmp_path, "predict", "text", "--model", "nope")
    assert done.returncode == 2
    assert done.stdout == ""
    message = done.stderr.strip()
    assert message.startswith("sentiment: unknown model 'nope': give a model key (distilbert-sst2")
    assert len(message.splitlines()) == 1


def test_a_bad_command_line_exits_2_and_work_that_cannot_be_done_exits_1(tmp_path: Path) -> None:
    missing = sentiment(tmp_path, "predict", "text", "--model", str(tmp_path / "no-such-model"))
    assert missing.returncode == 2
    assert "unknown model" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    failed = sentiment(tmp_path, "predict", "text", "--model", str(broken))
    assert failed.returncode == 1
    message = failed.stderr.strip().splitlines()[-1]
    assert message.startswith("sentiment: model broken-model failed to load: Couldn't instantiate"), (
        failed.stderr
    )
    assert message.endswith("to convert a slow tokenizer to a fast one.")  # the library's lines, as one


def test_models_list_shows_every_catalogued_model_with_its_status(tmp_path: Path) -> None:
    done = sentiment(tmp_path, "models", "list", env={"SENTIMENT_MODELS": f"sst2={SST2_MODEL}"})
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert done.stdout.splitlines()[0].split() == ["KEY", "KIND", "STATUS", "LABELS", "SOURCE"]
    assert set(rows) == {"distilbert-sst2", "twitter-roberta", "bert-multilingual", "vader", "sst2"}
    assert rows["vader"][1:4] == ["(default)", "vader", "available"]
    assert rows["sst2"][1:] == ["transformers", "available", "negative,positive", str(SST2_MODEL)]
    assert rows["twitter-roberta"][2:4] == ["not", "downloaded"]


def test_models_pull_refuses_what_has_nothing_to_download(tmp_path: Path) -> None:
    local = sentiment(tmp_path, "models", "pull", "sst2", env={"SENTIMENT_MODELS": f"sst2={SST2_MODEL}"})
    assert local.returncode == 1
    expected = f"sentiment: sst2 is served from {SST2_MODEL}; there is nothing to download"
    assert local.stderr.strip() == expected
    unknown = sentiment(tmp_path, "models", "pull", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().startswith("sentiment: unknown model 'nope'; known models: distilbert-sst2")


def test_models_default_shows_and_clears_the_choice_stored_through_the_api(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    env = {"DATABASE_URL": url}
    shown = sentiment(tmp_path, "models", "default", env=env)
    assert (shown.returncode, shown.stdout) == (0, "nothing stored: the default is PRELOAD_MODEL (vader)\n")

    async def choose() -> None:  # what PUT /models/default stores on a replica called "replica-2"
        engine = create_engine(url)
        async with engine.begin() as connection:
            choices = ModelChoices("minilm-sst2", ("minilm-sst2",), chosen_by="replica-2")
            await ModelChoiceRepository(connection).save(choices, datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
        await engine.dispose()

    asyncio.run(choose())
    shown = sentiment(tmp_path, "models", "default", env=env)
    assert shown.stdout == "minilm-sst2: chosen through the API on replica-2 at 2026-12-01 09:30:00+00:00\n"
    cleared = sentiment(tmp_path, "models", "default", "--clear", env=env)
    assert (cleared.returncode, cleared.stdout) == (
        0,
        "cleared: replicas use PRELOAD_MODEL when they next start\n",
    )
    again = sentiment(tmp_path, "models", "default", "--clear", env=env)
    assert again.stdout == "nothing stored: PRELOAD_MODEL rules\n"
