"""A data set through the pages in a real browser (Debian's chromium through playwright) against a real
server: upload airline_tweets.csv on the Analyze page, pick its columns, watch the htmx progress bar, read the
report, download the export. Scored with VADER, so the whole test takes seconds rather than minutes (the
transformer path is the same engine and is covered in-process by tests/integration/test_datasets.py)."""

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATA, PageWatch, ServerProcess

pytestmark = pytest.mark.browser
AIRLINE = DATA / "airline_tweets.csv"
ROWS = 14_640
AIRLINES = ("United", "US Airways", "American", "Southwest", "Delta", "Virgin America")


@pytest.fixture
def server(tmp_path: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'datasets.db'}",
            "SENTIMENT_DATA_DIR": str(tmp_path / "data"),
            # Small chunks: more progress steps for the bar to
            # show while VADER scores the file in a few seconds.
            "SENTIMENT_DATASET_CHUNK_ROWS": "128",
        }
    )


def test_airline_tweets_upload_scores_with_progress_and_shows_the_report(
    server: ServerProcess, watched_page: PageWatch
) -> None:
    page = watched_page.page
    page.goto(f"{server.base_url}/ui/analyze")
    page.set_input_files("#dataset-file", str(AIRLINE))
    page.click("#dataset-upload button[type=submit]")
    page.locator("#dataset-columns").wait_for()
    assert page.locator("#dataset-text").input_value() == "text"
    assert page.locator("#dataset-time").input_value() == "tweet_created"
    page.select_option("#dataset-group", "airline")
    page.select_option("#dataset-gold", "airline_sentiment")
    page.select_option("#dataset-model", "vader")
    watched_page.screenshot("dataset-columns")
    page.evaluate("window.samePage = true")
    page.click("#dataset-columns button[type=submit]")

    # The bar is redrawn by htmx every 500 ms: record every value it shows until the job is done.
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while not page.locator("#dataset-report-link").count():
        assert time.monotonic() < deadline, f"the job did not finish; the bar showed {seen}"
        bar = page.locator("#dataset-progress")
        value = bar.get_attribute("value") if bar.count() else None
        if value is not None and (not seen or seen[-1] != int(value)):
            seen.append(int(value))
            if 0 < int(value) < ROWS and len(seen) == 2:
                watched_page.screenshot("dataset-progress")
        page.wait_for_timeout(50)
    assert page.locator("#dataset-progress").get_attribute("value") == str(ROWS)
    assert any(0 < value < ROWS for value in seen), (
        f"the bar never showed a step between 0 and {ROWS}: {seen}"
    )
    assert page.evaluate("window.samePage") is True  # all of it without a page load
    figures = page.locator("#dataset-figures").inner_text()
    assert f"{ROWS:,} / {ROWS:,} rows" in figures and "rows/s" in figures

    page.click("#dataset-report-link")
    page.locator("#dataset-groups svg.chart").wait_for()
    groups = page.locator("#dataset-groups svg.chart")
    for airline in AIRLINES:
        assert groups.get_by_text(airline, exact=True).count() == 1, airline
    assert page.locator("#dataset-trend svg.chart path").count() == 3
    metrics = page.locator("#dataset-metrics-table")
    assert metrics.get_by_text("accuracy").count() == 1 and metrics.get_by_text("macro-F1").count() == 1
    accuracy = metrics.locator("tr", has_text="accuracy").locator("td").nth(1).inner_text()
    assert 0.3 < float(accuracy) < 0.8
    assert page.locator("#dataset-metrics table.confusion").count() == 1
    watched_page.screenshot("dataset-report")

    href = page.locator("#dataset-export-link").get_attribute("href")
    export = httpx.get(f"{server.base_url}{href}", timeout=30)
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.text)))
    assert len(rows) - 1 == ROWS
    assert rows[0][-5:] == ["label", "confidence", "score_negative", "score_neutral", "score_positive"]
    assert watched_page.console_errors == []
    assert watched_page.foreign_requests == []
