"""Pages in-process: CSRF on every form, the login session, admin actions from pages, and escaping."""

import re
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.web.pages import vader_compound
from tests.conftest import in_app, make_settings, page_csrf


@pytest.fixture
async def client(sqlite_url: str) -> AsyncIterator[AsyncTestClient]:
    app = create_app(make_settings(sqlite_url, admin_token="s3cret"))
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_analyze_form_answers_in_place_with_the_session_csrf_token(client: AsyncTestClient) -> None:
    token = await page_csrf(client)
    response = await client.post("/ui/analyze", data={"text": "I love this!", "csrf_token": token})
    assert response.status_code == 200
    assert '<span class="label positive">positive</span>' in response.text
    assert "<html" not in response.text  # a fragment for htmx, not a page
    # VADER's answer is shown as VADER's: its compound score and proportions, not a confidence.
    assert "by VADER's rules: compound score +0." in response.text and "with confidence" not in response.text
    assert "not probabilities" in response.text


@pytest.mark.parametrize(
    ("label", "confidence", "shown"),
    [("positive", 0.6369, "+0.637"), ("negative", 0.5, "\u22120.500"), ("neutral", 0.8, "\u00b10.010")],
)
def test_vader_compound_is_read_back_from_the_answer(label: str, confidence: float, shown: str) -> None:
    assert vader_compound(label, confidence) == shown


@pytest.mark.parametrize("token", [None, "forged"])
async def test_form_post_without_the_session_csrf_token_is_refused(
    client: AsyncTestClient, token: str | None
) -> None:
    await page_csrf(client)
    data = {"text": "hello"} | ({"csrf_token": token} if token else {})
    response = await client.post("/ui/analyze", data=data)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


async def test_cross_site_form_post_without_a_session_is_refused(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url, admin_token="s3cret"))
    async with AsyncTestClient(app=app) as attacker:
        response = await attacker.post(
            "/ui/login",
            data={"token": "s3cret", "csrf_token": "guess"},
            headers={"origin": "https://evil.example"},
        )
    assert response.status_code == 403


async def test_login_sets_a_strict_httponly_session_that_admin_page_actions_accept(
    client: AsyncTestClient,
) -> None:
    token = await page_csrf(client, "/ui/login")
    wrong = await client.post("/ui/login", data={"token": "guess", "csrf_token": token})
    assert wrong.status_code == 401 and "wrong token" in wrong.text
    denied = await client.post("/ui/alerts/1/acknowledge", headers={"x-csrf-token": token})
    assert denied.status_code == 401
    response = await client.post(
        "/ui/login", data={"token": "s3cret", "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code in (301, 302, 303)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    in_app(client, raise_alert, client.app.state.services.alerts)
    token = await page_csrf(client, "/ui/alerts")  # login gave the session a new CSRF token
    no_csrf = await client.post("/ui/alerts/1/acknowledge")
    assert no_csrf.status_code == 403
    acknowledged = await client.post("/ui/alerts/1/acknowledge", headers={"x-csrf-token": token})
    assert acknowledged.status_code == 200 and "acknowledged" in acknowledged.text
    # The JSON API still wants its bearer token: a page session is not an API credential for scripts.
    assert (await client.post("/failsafe/reset", json={})).status_code == 403


async def raise_alert(alerts) -> None:  # type: ignore[no-untyped-def]
    alerts.post_raise("breaker_open:m", "breaker_open", "critical", "m failed")
    await alerts.settle()


async def test_user_text_is_escaped_on_the_predictions_page(client: AsyncTestClient) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    await client.post("/predict", json={"text": hostile})
    in_app(client, client.app.state.resources.writer.flush, 10)
    html = (await client.get("/ui/predictions", params={"q": "onerror"})).text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert hostile not in html


async def test_every_page_renders_under_the_csp_with_no_inline_script_or_style(
    client: AsyncTestClient,
) -> None:
    pages = ["/ui/analyze", "/ui/datasets", "/ui/predictions", "/ui/models", "/ui/alerts", "/ui/login"]
    pages.append("/docs")
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200, path
        html = response.text
        assert "<script>" not in html and re.search(r"<script(?![^>]*\bsrc=)", html) is None, path
        assert "<style" not in html and " style=" not in html and "hx-on" not in html, path
        assert "unsafe-inline" not in response.headers["content-security-policy"]


async def test_predictions_page_shows_the_last_page_for_a_page_past_the_end(client: AsyncTestClient) -> None:
    await client.post("/predict", json={"text": "only one stored"})
    in_app(client, client.app.state.resources.writer.flush, 10)
    response = await client.get("/ui/predictions", params={"page": "99999999999999999999"})
    assert response.status_code == 200 and "only one stored" in response.text


async def test_predictions_page_ignores_a_moment_outside_the_calendar_and_says_so(
    client: AsyncTestClient,
) -> None:
    response = await client.get("/ui/predictions", params={"since": "0001-01-01T00:10:31+01:00"})
    assert (
        response.status_code == 200
        and "ignored a filter that is not valid: since must lie between" in response.text
    )


async def test_an_empty_overview_shows_first_steps_and_no_made_up_figures(client: AsyncTestClient) -> None:
    empty = (await client.get("/ui/overview/live")).text
    assert "First steps" in empty and 'href="/ui/analyze"' in empty
    assert "0.0 ms" not in empty and "&mdash;" in empty
    assert "Only VADER answers now, and it has no breaker" in empty
    await client.post("/predict", json={"text": "what a lovely day"})
    assert in_app(client, client.app.state.resources.writer.flush, 10)
    scored = (await client.get("/ui/overview/live")).text
    assert "First steps" not in scored and " ms</div>" in scored


async def test_the_models_page_shows_each_models_figures(client: AsyncTestClient) -> None:
    await client.post("/predict/batch", json={"texts": ["good", "bad", "fine", "great"], "model": "vader"})
    await client.post("/predict", json={"text": "lovely", "model": "vader"})
    html = (await client.get("/ui/models")).text
    figures = html[html.index('id="model-figures"') :]
    row = re.search(r"<tr>\s*<td>vader</td>(.*?)</tr>", figures, re.DOTALL)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.DOTALL)
    assert cells[1:3] == ["2", "5"]  # requests, texts
    assert re.fullmatch(r"\d+\.\d / \d+\.\d", cells[3])  # p50 / p95 per text


async def test_the_data_sets_page_pages_through_every_data_set_newest_first(client: AsyncTestClient) -> None:
    for i in range(30):
        uploaded = await client.post(
            "/datasets",
            files={"file": (f"set-{i:02d}.csv", b"text\nhi\n", "text/csv")},
            data={"text_column": "text"},
        )
        assert uploaded.status_code == 202, uploaded.text
    first = (await client.get("/ui/datasets")).text
    second = (await client.get("/ui/datasets", params={"page": 2})).text
    beyond = (await client.get("/ui/datasets", params={"page": 9})).text

    def names(html: str) -> list[str]:
        return re.findall(r">(set-\d\d\.csv)</a>", html)

    assert names(first) == [f"set-{i:02d}.csv" for i in range(29, 4, -1)]
    assert names(second) == [f"set-{i:02d}.csv" for i in range(4, -1, -1)]
    assert "30 data sets" in first and "page 1 of 2" in first and 'href="/ui/datasets?page=2"' in first
    assert names(beyond) == names(second)  # past the end: the last page


async def test_the_overview_narrows_to_a_label_and_fallback_from_its_url(client: AsyncTestClient) -> None:
    answers = (
        await client.post(
            "/predict/batch", json={"texts": ["I love it", "awful, just awful", "great!", "ok"]}
        )
    ).json()["results"]
    assert in_app(client, client.app.state.resources.writer.flush, 10)
    positive = sum(answer["sentiment"] == "positive" for answer in answers)
    html = (await client.get("/ui", params={"label": "positive", "fallback": "false"})).text
    total = re.search(r'id="total-predictions">([\d,]+)<', html)
    assert total is not None and int(total.group(1)) == positive and 0 < positive < len(answers)
    assert "all time, positive, not by the fallback" in html
    assert "<option selected>positive</option>" in html and '<option value="false" selected>' in html
    csv_link = re.search(r'href="(/analytics/series\.csv\?[^"]+)"', html)
    assert (
        csv_link is not None
        and "label=positive" in csv_link.group(1)
        and "fallback=false" in csv_link.group(1)
    )
