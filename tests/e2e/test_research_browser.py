"""What a researcher reads from the pages, in a real browser (Debian's chromium through playwright) against a
real server process holding a month of live traffic and the airline data set: live figures untouched by a
corpus, shares per group with their intervals, filters kept in the URL, exports that hold what is filtered,
the breaker reset, and pages that fit a phone with chart text at a readable size."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import SST2_MODEL, PageWatch, ServerProcess
from tests.integration.test_datasets import AIRLINE, AIRLINE_COLUMNS
from tests.seeding import seed_month

pytestmark = pytest.mark.browser
ADMIN = {"authorization": "Bearer research-token"}
WIDTHS = (390, 1366)


@pytest.fixture(scope="module")
def airline_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(AIRLINE.read_text(encoding="utf-8"))))


@pytest.fixture
def server(tmp_path: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    database = f"sqlite+aiosqlite:///{tmp_path / 'research.db'}"
    asyncio.run(seed_month(database, 3_000))
    server = start_server(
        {
            "DATABASE_URL": database,
            "SENTIMENT_DATA_DIR": str(tmp_path / "data"),
            "SENTIMENT_MODELS": f"minilm-sst2={SST2_MODEL}",
            "PRELOAD_MODEL": "minilm-sst2",
            "SENTIMENT_ADMIN_TOKEN": "research-token",
            "FAILSAFE_CALL_TIMEOUT_SECONDS": "1",
            "FAILSAFE_CIRCUIT_BREAKER_TIMEOUT": "600",
            "SENTIMENT_ALERT_CHECK_SECONDS": "1",
        }
    )
    server.wait_healthy(probe="/ready")
    return server


def upload_airline(base: str) -> str:
    """The airline file scored by VADER with its time, group and gold columns, through the API; its id."""
    with AIRLINE.open("rb") as file:
        answer = httpx.post(
            f"{base}/datasets",
            files={"file": ("airline_tweets.csv", file, "text/csv")},
            data={**AIRLINE_COLUMNS, "model": "vader"},
            timeout=60,
        )
    assert answer.status_code == 202, answer.text
    dataset = answer.json()["id"]
    deadline = time.monotonic() + 180
    while (status := httpx.get(f"{base}/datasets/{dataset}").json()["status"]) != "done":
        assert status not in ("failed", "cancelled") and time.monotonic() < deadline, status
        time.sleep(0.5)
    return str(dataset)


def breaker_state(base: str) -> str:
    report = httpx.get(f"{base}/failsafe/status").json()
    return str(next(b["state"] for b in report["breakers"] if b["model"] == "minilm-sst2"))


def overview_figures(page: object) -> tuple[str, str]:
    return (
        page.locator("#total-predictions").inner_text(),  # type: ignore[attr-defined]
        page.locator("section", has_text="Label distribution").locator("text.value").all_inner_texts(),  # type: ignore[attr-defined]
    )


def test_a_corpus_upload_leaves_the_overview_as_it_was_and_its_report_draws_shares_per_group(
    server: ServerProcess, watched_page: PageWatch, airline_rows: list[dict[str, str]]
) -> None:
    base, page = server.base_url, watched_page.page
    page.goto(f"{base}/ui?range=all")
    before = overview_figures(page)
    assert before[0] == "3,000"
    dataset = upload_airline(base)
    page.goto(f"{base}/ui?range=all")
    assert overview_figures(page) == before  # 14,640 scored rows, and not one in the live figures
    watched_page.screenshot("research-overview-after-upload")

    page.goto(f"{base}/ui/datasets/{dataset}?view=share")
    panels = page.locator("#dataset-group-trends figure.panel")
    assert panels.count() == 6
    largest = Counter(row["airline"] for row in airline_rows).most_common(6)
    assert panels.locator("figcaption").all_inner_texts() == [name for name, _ in largest]
    for index in range(6):
        assert panels.nth(index).locator("path.band").count() == 3  # a 95% band per label
    hover = panels.nth(0).locator("rect.hover title").first.text_content() or ""
    assert re.search(r"negative \d+\.\d% \(95% CI \d+\.\d–\d+\.\d\)", hover), hover
    assert re.search(r"; n \d", hover), hover
    assert page.locator("#dataset-trend", has_text="Net sentiment").count() == 1
    page.get_by_role("link", name="counts").click()
    page.wait_for_url(re.compile(r"view=counts"))
    assert page.locator("#dataset-trend path.band").count() == 0
    watched_page.screenshot("research-dataset-report")


def test_a_date_range_and_a_group_filter_live_in_the_url_the_numbers_and_the_export(
    server: ServerProcess, watched_page: PageWatch, airline_rows: list[dict[str, str]]
) -> None:
    base, page = server.base_url, watched_page.page
    dataset = upload_airline(base)

    # The overview over a range of one's own: in the URL, and the total is what the list API counts in it.
    page.goto(f"{base}/ui?range=all")
    listed = httpx.get(f"{base}/predictions", params={"limit": 1}).json()["predictions"][0]["created_at"]
    since, until = listed[:11] + "00:00", listed[:11] + "23:59"
    page.fill("#overview-filters input[name=since]", since)
    page.fill("#overview-filters input[name=until]", until)
    page.click("#overview-filters button[type=submit]")
    page.wait_for_url(re.compile(r"since=.*until="))
    total = httpx.get(
        f"{base}/predictions", params={"since": since + ":00Z", "until": until + ":00Z", "limit": 1}
    ).json()["total"]
    assert page.locator("#total-predictions").inner_text() == f"{total:,}" and total > 0
    watched_page.screenshot("research-overview-custom-range")

    # The predictions of one group of the data set: the URL holds the filters, the count is the file's own.
    page.goto(f"{base}/ui/predictions")
    page.select_option("select[name=dataset]", dataset)
    page.wait_for_url(re.compile(f"dataset={dataset}$"), wait_until="commit")
    page.fill("input[name=group]", "Delta")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(f"dataset={dataset}&group=Delta$"), wait_until="commit")
    delta = sum(row["airline"] == "Delta" for row in airline_rows)
    page.locator(f'[data-total="{delta}"]').wait_for()
    watched_page.screenshot("research-predictions-filtered")
    page.go_back()
    page.wait_for_url(re.compile(f"dataset={dataset}$"), wait_until="commit")
    page.locator(f'[data-total="{len(airline_rows)}"]').wait_for()
    page.go_forward()
    page.locator(f'[data-total="{delta}"]').wait_for()

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert len(exported) == delta
    assert {row["group"] for row in exported} == {"Delta"} and {row["dataset_id"] for row in exported} == {
        dataset
    }


def test_an_admin_closes_an_open_breaker_from_its_alert(
    server: ServerProcess, watched_page: PageWatch
) -> None:
    base, page = server.base_url, watched_page.page
    watched_page.log_in(base, "research-token")
    httpx.post(f"{base}/failsafe/faults", json={"model": "minilm-sst2", "mode": "fail"}, headers=ADMIN)
    for i in range(3):
        assert httpx.post(f"{base}/predict", json={"text": f"failing {i}"}).json()["fallback_used"]
    httpx.post(f"{base}/failsafe/faults", json={"model": "minilm-sst2", "mode": "none"}, headers=ADMIN)
    assert breaker_state(base) == "open"

    page.goto(f"{base}/ui/alerts?state=active")
    row = page.locator("tr", has_text="breaker_open:minilm-sst2")
    row.wait_for()
    watched_page.screenshot("research-alert-open-breaker")
    row.get_by_role("button", name=re.compile("Reset")).click()
    deadline = time.monotonic() + 10
    while breaker_state(base) != "closed":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answer = httpx.post(f"{base}/predict", json={"text": "served by the model again"}).json()
    assert (answer["model_used"], answer["fallback_used"]) == ("minilm-sst2", False)


# Each chart text's size as drawn: its font size times the scale its SVG is drawn at.
DRAWN_TEXT_PX = """() => Array.from(document.querySelectorAll('svg.chart text')).map(t =>
  parseFloat(getComputedStyle(t).fontSize) * Math.hypot(t.getScreenCTM().a, t.getScreenCTM().b))"""


def test_no_page_scrolls_sideways_on_a_phone_and_chart_text_stays_10_to_16_px(
    server: ServerProcess, watched_page: PageWatch
) -> None:
    base, page = server.base_url, watched_page.page
    dataset = upload_airline(base)
    httpx.post(f"{base}/predict", json={"text": "a live one, so the minutes chart has a point"})
    # As an admin: the pages then carry their admin controls too (actions, delete and reset buttons).
    watched_page.log_in(base, "research-token")
    pages = [
        "/ui?range=all",
        "/ui?range=all&view=share",
        "/ui?range=1h",
        "/ui/analyze",
        "/ui/datasets",
        f"/ui/datasets/{dataset}",
        f"/ui/datasets/{dataset}?view=share",
        "/ui/predictions",
        f"/ui/predictions?dataset={dataset}&group=United",
        "/ui/models",
        "/ui/alerts",
        "/ui/keys",
        "/ui/login",
        "/docs",
    ]
    charts = 0
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for path in pages:
            page.goto(f"{base}{path}")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (width, path)
            sizes = page.evaluate(DRAWN_TEXT_PX)
            assert all(10 <= size <= 16 for size in sizes), (width, path, sorted(set(sizes)))
            charts += len(sizes)
            name = re.sub(r"[^a-z0-9]+", "-", path.replace(dataset, "dataset").lower()).strip("-") or "root"
            watched_page.screenshot(f"{width}-{name}")
    assert charts > 100  # the pages did draw their charts
    assert watched_page.console_errors == []


def test_a_data_set_scored_by_two_models_shows_them_side_by_side_with_kappa_and_their_disagreements(
    server: ServerProcess, watched_page: PageWatch, tmp_path: Path
) -> None:
    base, page = server.base_url, watched_page.page
    sample = tmp_path / "airline-400.csv"
    lines = list(csv.reader(io.StringIO(AIRLINE.read_text(encoding="utf-8"))))[:401]
    with sample.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(lines)

    page.goto(f"{base}/ui/analyze")
    page.set_input_files("#dataset-file", str(sample))
    page.click("#dataset-upload button[type=submit]")
    page.locator("#dataset-columns").wait_for()
    page.select_option("#dataset-gold", "airline_sentiment")
    page.select_option("#dataset-model", "vader")
    page.locator("#dataset-compare").get_by_label("minilm-sst2").check()
    page.click("#dataset-columns button[type=submit]")
    page.locator("#dataset-report-link").wait_for(timeout=180_000)
    page.click("#dataset-report-link")

    metrics = page.locator("#dataset-metrics-table")
    metrics.wait_for()
    assert metrics.locator("th").all_inner_texts()[1:] == [
        "vader",
        "minilm-sst2",
    ]  # gold figures side by side
    assert page.locator("#dataset-metrics table.confusion").count() == 2
    pair = page.locator("#dataset-agreement tbody tr")
    assert pair.count() == 1 and pair.locator("td").first.inner_text() == "vader · minilm-sst2"
    kappa = float(pair.locator("td.kappa").inner_text())
    assert -1 <= kappa <= 1
    disagreements = page.locator("#dataset-disagreements tbody tr")
    assert 0 < disagreements.count() <= 25
    first = disagreements.first
    labels = first.locator("span.label").all_inner_texts()
    assert len(labels) == 2 and labels[0] != labels[1]
    watched_page.screenshot("research-model-comparison")
    report = page.url
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(report)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert all(10 <= size <= 16 for size in page.evaluate(DRAWN_TEXT_PX))
    watched_page.screenshot("390-ui-datasets-comparison")

    first = page.locator("#dataset-disagreements tbody tr").first
    first.locator("td.text a").click()
    page.wait_for_url(re.compile(r"/ui/predictions\?dataset="))
    assert int(page.locator("[data-total]").get_attribute("data-total") or 0) >= 1
    assert watched_page.console_errors == []
