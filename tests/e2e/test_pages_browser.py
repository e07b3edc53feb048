"""The pages in a real browser (Debian's chromium through playwright), against a real server process."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import SST2_MODEL, PageWatch, ServerProcess
from tests.seeding import seed_month

pytestmark = pytest.mark.browser
PAGES = ("/ui", "/ui/analyze", "/ui/datasets", "/ui/predictions", "/ui/models", "/ui/alerts", "/ui/login")
ADMIN = {"authorization": "Bearer browser-token"}


@pytest.fixture
def server(tmp_path: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    database = f"sqlite+aiosqlite:///{tmp_path / 'pages.db'}"
    asyncio.run(seed_month(database, 3_000))
    server = start_server(
        {
            "DATABASE_URL": database,
            "SENTIMENT_MODELS": f"minilm-sst2={SST2_MODEL}",
            "PRELOAD_MODEL": "minilm-sst2",
            "SENTIMENT_ADMIN_TOKEN": "browser-token",
            "FAILSAFE_CALL_TIMEOUT_SECONDS": "1",
            "FAILSAFE_CIRCUIT_BREAKER_TIMEOUT": "2",
            "SENTIMENT_ALERT_CHECK_SECONDS": "1",
        }
    )
    server.wait_healthy(probe="/ready")
    return server


def test_every_page_loads_with_no_console_error_and_nothing_from_another_host(
    server: ServerProcess, watched_page: PageWatch
) -> None:
    page = watched_page.page
    for path in PAGES:
        response = page.goto(f"{server.base_url}{path}")
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        watched_page.screenshot(path.strip("/").replace("/", "-") or "root")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{server.base_url}/ui")
    watched_page.screenshot("ui-phone")
    assert page.locator("svg.chart").count() >= 3
    assert watched_page.console_errors == []
    assert watched_page.foreign_requests == []


def test_analyze_form_answers_in_place_without_a_page_load(
    server: ServerProcess, watched_page: PageWatch
) -> None:
    page = watched_page.page
    page.goto(f"{server.base_url}/ui/analyze")
    page.evaluate("window.samePage = true")
    page.fill("#text", "UCLA is amazing for AI research!")
    page.click("button[type=submit]")
    page.locator("#analysis .label").wait_for()
    assert page.locator("#analysis .label").inner_text() == "positive"
    assert page.evaluate("window.samePage") is True
    assert page.locator("#analysis svg.chart rect:not(.track)").count() == 2  # a bar per class
    watched_page.screenshot("ui-analyze-answer")
    assert watched_page.console_errors == []


def test_overview_counter_rises_after_predictions(server: ServerProcess, watched_page: PageWatch) -> None:
    page = watched_page.page
    page.goto(f"{server.base_url}/ui")
    before = int(page.locator("#total-predictions").inner_text().replace(",", ""))
    for i in range(3):
        httpx.post(f"{server.base_url}/predict", json={"text": f"counting {i}"})
    # htmx refreshes the figures every 5 s, without a reload (the page keeps its marker).
    page.evaluate("window.samePage = true")
    deadline = time.monotonic() + 15
    while int(page.locator("#total-predictions").inner_text().replace(",", "")) < before + 3:
        assert time.monotonic() < deadline, "the counter did not rise"
        page.wait_for_timeout(250)
    assert page.evaluate("window.samePage") is True
    assert watched_page.console_errors == []


def test_hostile_stored_text_shows_as_text_and_runs_nothing(
    server: ServerProcess, watched_page: PageWatch
) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    httpx.post(f"{server.base_url}/predict", json={"text": hostile})
    page = watched_page.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    for _ in range(50):
        page.goto(f"{server.base_url}/ui/predictions?q=onerror")
        if page.get_by_text(hostile, exact=True).count():
            break
        time.sleep(0.1)
    assert page.get_by_text(hostile, exact=True).count() == 1
    assert page.locator("#history img").count() == 0
    watched_page.screenshot("ui-predictions-escaped")
    assert dialogs == []


def test_alert_walks_through_its_life_from_breaker_opening_to_resolved(
    server: ServerProcess, watched_page: PageWatch
) -> None:
    base, page = server.base_url, watched_page.page
    watched_page.log_in(base, "browser-token")

    httpx.post(f"{base}/failsafe/faults", json={"model": "minilm-sst2", "mode": "fail"}, headers=ADMIN)
    for i in range(3):
        assert httpx.post(f"{base}/predict", json={"text": f"failing {i}"}).json()["fallback_used"]
    page.goto(f"{base}/ui")
    page.locator("#active-alerts", has_text="breaker_open:minilm-sst2").wait_for(timeout=15_000)
    watched_page.screenshot("ui-overview-alert")

    page.goto(f"{base}/ui/alerts")
    row = page.locator("tr", has_text="breaker_open:minilm-sst2")
    row.get_by_role("button", name="Acknowledge").click()
    page.locator("tr", has_text="breaker_open:minilm-sst2").get_by_text("acknowledged").wait_for()

    httpx.post(f"{base}/failsafe/faults", json={"model": "minilm-sst2", "mode": "none"}, headers=ADMIN)
    time.sleep(2.1)
    answer = httpx.post(f"{base}/predict", json={"text": "healed at last"}).json()
    assert (answer["model_used"], answer["fallback_used"]) == ("minilm-sst2", False)
    page.locator("tr", has_text="breaker_open:minilm-sst2").get_by_text("resolved").wait_for(timeout=15_000)
    watched_page.screenshot("ui-alerts-resolved")
    assert watched_page.console_errors == []
