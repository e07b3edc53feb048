"""Failsafe endpoints in-process: status, reset and faults behind the admin guard."""

from collections.abc import AsyncIterator, Callable

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import ModelSpec
from tests.conftest import in_app, make_settings, page_csrf, wait_until_settled

ADMIN = {"authorization": "Bearer t0ken"}


@pytest.fixture
async def client(sqlite_url: str, loader: Callable[[ModelSpec], Backend]) -> AsyncIterator[AsyncTestClient]:
    app = create_app(
        make_settings(sqlite_url, default_model="minilm-sst2", admin_token="t0ken"), loader=loader
    )
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        yield client


def sst2_breaker(report: dict) -> dict:
    return next(b for b in report["breakers"] if b["model"] == "minilm-sst2")


async def test_status_lists_every_model_breaker_and_the_settings(client: AsyncTestClient) -> None:
    report = (await client.get("/failsafe/status")).json()
    assert report["settings"] == {
        "max_failures": 3,
        "window_s": 300.0,
        "open_s": 60.0,
        "call_timeout_s": 10.0,
    }
    assert {b["model"] for b in report["breakers"]} >= {"minilm-sst2", "distilbert-sst2"}
    assert sst2_breaker(report)["state"] == "closed"


async def test_third_failed_call_opens_the_breaker_raises_an_alert_and_reset_clears_both(
    client: AsyncTestClient,
) -> None:
    await client.post("/failsafe/faults", json={"model": "minilm-sst2", "mode": "fail"}, headers=ADMIN)
    for _ in range(4):
        body = (await client.post("/predict", json={"text": "good"})).json()
        assert (body["model_used"], body["fallback_used"]) == ("vader", True)
    breaker = sst2_breaker((await client.get("/failsafe/status")).json())
    assert (breaker["state"], breaker["times_opened"], breaker["fault"]) == ("open", 1, "fail")
    in_app(client, client.app.state.services.alerts.settle)
    alerts = (await client.get("/alerts", params={"state": "active"})).json()
    assert [a["key"] for a in alerts] == ["breaker_open:minilm-sst2"]
    assert "3 failures within 300 s" in alerts[0]["message"]

    await client.post("/failsafe/faults", json={"model": "minilm-sst2", "mode": "none"}, headers=ADMIN)
    reset = await client.post("/failsafe/reset", json={"model": "minilm-sst2"}, headers=ADMIN)
    assert sst2_breaker(reset.json())["state"] == "closed"
    body = (await client.post("/predict", json={"text": "good"})).json()
    assert (body["model_used"], body["fallback_used"]) == ("minilm-sst2", False)
    in_app(client, client.app.state.services.alerts.settle)
    assert (await client.get("/alerts", params={"state": "active"})).json() == []


async def test_reset_without_a_body_closes_every_breaker(client: AsyncTestClient) -> None:
    response = await client.post("/failsafe/reset", headers=ADMIN)
    assert response.status_code == 200
    assert all(b["state"] == "closed" for b in response.json()["breakers"])


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/failsafe/reset", {"model": "minilm-sst2"}),
        ("/failsafe/faults", {"model": "minilm-sst2", "mode": "fail"}),
    ],
)
async def test_failsafe_actions_need_the_admin_token(
    client: AsyncTestClient, path: str, payload: dict
) -> None:
    assert (await client.post(path, json=payload)).status_code == 401
    assert (
        await client.post(path, json=payload, headers={"authorization": "Bearer nope"})
    ).status_code == 401
    assert sst2_breaker((await client.get("/failsafe/status")).json())["fault"] is None


@pytest.mark.parametrize(
    ("path", "payload", "status"),
    [
        ("/failsafe/reset", {"model": "gpt-5"}, 404),
        ("/failsafe/faults", {"model": "gpt-5", "mode": "fail"}, 404),
        ("/failsafe/faults", {"model": "minilm-sst2", "mode": "explode"}, 400),
        ("/failsafe/faults", {"model": "minilm-sst2", "mode": "hang", "hang_seconds": -1}, 400),
    ],
)
async def test_bad_failsafe_requests_are_clear_4xx(
    client: AsyncTestClient, path: str, payload: dict, status: int
) -> None:
    assert (await client.post(path, json=payload, headers=ADMIN)).status_code == status


async def test_the_alerts_page_resets_an_open_breaker_and_filters_by_state(client: AsyncTestClient) -> None:
    await client.post("/failsafe/faults", json={"model": "minilm-sst2", "mode": "fail"}, headers=ADMIN)
    for _ in range(3):
        await client.post("/predict", json={"text": "good"})
    await client.post("/failsafe/faults", json={"model": "minilm-sst2", "mode": "none"}, headers=ADMIN)
    in_app(client, client.app.state.services.alerts.settle)
    assert "Reset breaker" not in (await client.get("/ui/alerts")).text  # not logged in: no admin buttons
    analyze = (await client.get("/ui/analyze")).text  # the model picker says why the model does not answer
    assert "minilm-sst2 (its breaker is open: VADER answers until a trial call succeeds)</option>" in analyze
    assert (await client.post("/ui/failsafe/reset", data={"model": "minilm-sst2"})).status_code == 401
    csrf = await log_in_as_admin(client)
    active = (await client.get("/ui/alerts", params={"state": "active"})).text
    assert "Reset breaker" in active and 'hx-vals=\'{"model": "minilm-sst2"}\'' in active
    reset = await client.post(
        "/ui/failsafe/reset", data={"model": "minilm-sst2"}, headers={"x-csrf-token": csrf}
    )
    assert (reset.status_code, reset.headers["hx-trigger"]) == (200, "alerts-changed")
    assert sst2_breaker((await client.get("/failsafe/status")).json())["state"] == "closed"
    in_app(client, client.app.state.services.alerts.settle)
    resolved = (await client.get("/ui/alerts/table", params={"state": "resolved"})).text
    assert "breaker_open:minilm-sst2" in resolved
    assert "Reset breaker" not in resolved and "Acknowledge" not in resolved  # only for active alerts
    assert "No active alerts." in (await client.get("/ui/alerts/table", params={"state": "active"})).text
    assert (await client.get("/ui/alerts", params={"state": "open"})).status_code == 400


async def log_in_as_admin(client: AsyncTestClient) -> str:
    """A page session logged in with the admin token; its new CSRF token."""
    await client.post(
        "/ui/login", data={"token": "t0ken", "csrf_token": await page_csrf(client, "/ui/login")}
    )
    page = (await client.get("/ui/alerts")).text
    assert "Log out" in page
    return await page_csrf(client, "/ui/login")
