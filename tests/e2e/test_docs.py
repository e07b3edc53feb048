"""/docs renders every endpoint in a real browser, with nothing fetched from another host."""

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import PageWatch, ServerProcess

pytestmark = pytest.mark.browser


def test_docs_render_every_endpoint_offline_under_the_csp(
    tmp_path: Path, start_server: Callable[[dict[str, str]], ServerProcess], watched_page: PageWatch
) -> None:
    server = start_server({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}"})
    spec = httpx.get(f"{server.base_url}/schema/openapi.json").json()
    response = watched_page.page.goto(f"{server.base_url}/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = watched_page.page
    page.locator(".opblock-summary-path").first.wait_for(timeout=15_000)
    rendered = {
        page.locator(".opblock-summary-path").nth(i).inner_text().replace("\u200b", "")
        for i in range(page.locator(".opblock-summary-path").count())
    }
    watched_page.screenshot("docs")
    missing = [path for path in spec["paths"] if path not in rendered]
    assert missing == []
    # The admin token can be given once ("Authorize") and is then sent with the admin operations.
    page.locator("button.authorize").first.click()
    assert page.locator(".auth-container").filter(has_text="AdminToken").count() == 1
    # Each admin operation carries a lock, nothing else does.
    assert page.locator(".opblock .authorization__btn").count() == 14
    assert watched_page.console_errors == []
    assert watched_page.foreign_requests == []
