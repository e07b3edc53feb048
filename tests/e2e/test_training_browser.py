"""Fine-tuning from a data set's page in a real browser against a real server: an admin starts a training on
the data set's gold column, watches its progress, cancels it, starts another, reads the before/after report,
and the new model answers /predict at once and after the server restarts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import TWEETS_MODEL, PageWatch, ServerProcess
from tests.integration.test_training import labelled_slice, nothing_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TOKEN = "train-browser-token"


def server_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'training.db'}",
        "SENTIMENT_DATA_DIR": str(tmp_path / "data"),
        "SENTIMENT_MODELS_DIR": str(tmp_path / "models"),
        "SENTIMENT_MODELS": f"minilm-tweets3={TWEETS_MODEL}",
        "SENTIMENT_ADMIN_TOKEN": TOKEN,
    }


def test_an_admin_trains_a_model_from_a_data_set_page_and_it_serves(
    tmp_path: Path, start_server: Callable[..., ServerProcess], watched_page: PageWatch
) -> None:
    server = start_server(server_env(tmp_path))
    base, page = server.base_url, watched_page.page
    uploaded = httpx.post(
        f"{base}/datasets",
        files={
            "file": ("airline-slice.csv", labelled_slice(tmp_path, per_label=100).read_bytes(), "text/csv")
        },
        data={"text_column": "text", "gold_column": "airline_sentiment", "group_column": "airline"},
        headers={"authorization": f"Bearer {TOKEN}"},
    )
    assert uploaded.status_code == 202, uploaded.text
    dataset = uploaded.json()["id"]

    page.goto(f"{base}/ui/datasets/{dataset}")
    page.locator("#training").get_by_text("Log in as an admin to train a model.").wait_for()
    watched_page.log_in(base, TOKEN)
    page.goto(f"{base}/ui/datasets/{dataset}")

    # A first run, cancelled while it trains.
    page.fill("#training-form input[name=name]", "page-cancelled")
    page.select_option("#training-form select[name=base]", "minilm-tweets3")
    page.fill("#training-form input[name=epochs]", "1")
    page.click("#training-form button[type=submit]")
    page.locator("#training-figures", has_text="step").wait_for(timeout=120_000)
    watched_page.screenshot("training-progress")
    page.click("#training-cancel")
    page.locator("#training-box[data-phase=cancelled]").wait_for(timeout=60_000)
    assert nothing_in(tmp_path / "models")

    # A second run, to the end: progress moves, then the report of the three models on the test split.
    page.goto(f"{base}/ui/datasets/{dataset}")
    page.fill("#training-form input[name=name]", "page-tuned")
    page.fill("#training-form input[name=epochs]", "1")
    page.click("#training-form button[type=submit]")
    steps: list[str] = []
    deadline = time.monotonic() + 300
    while not page.locator("#training-done").count():
        assert time.monotonic() < deadline, f"training did not end; progress showed {steps}"
        figures = page.locator("#training-figures")
        if figures.count():
            text = figures.inner_text()
            if not steps or steps[-1] != text:
                steps.append(text)
        assert page.locator("#training-box[data-phase=failed]").count() == 0, page.content()
        page.wait_for_timeout(100)
    assert len(steps) >= 2, steps
    table = page.locator("#training-metrics-table")
    for model in ("page-tuned (new)", "minilm-tweets3 (base)", "vader (vader)"):
        assert table.get_by_text(model, exact=True).count() == 1, model
    watched_page.screenshot("training-report")

    answer = httpx.post(
        f"{base}/predict", json={"text": "two hours on the tarmac", "model": "page-tuned"}
    ).json()
    assert (answer["model_used"], answer["fallback_used"]) == ("page-tuned", False)
    server.stop()

    restarted = start_server(server_env(tmp_path))
    deadline = time.monotonic() + 120
    while True:
        answer = httpx.post(
            f"{restarted.base_url}/predict", json={"text": "two hours on the tarmac", "model": "page-tuned"}
        ).json()
        if answer.get("model_used") == "page-tuned" and not answer.get("fallback_used"):
            break
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)
