"""The admin guard, on the alert acknowledgement endpoint (every admin endpoint shares it)."""

import time
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.core.throttle import AttemptThrottle
from sentiment.services.alerts import AlertService
from tests.conftest import in_app, make_settings


async def raise_one_alert(alerts: AlertService) -> None:
    alerts.post_raise("k", "test", "warning", "a test alert")
    await alerts.settle()


@pytest.fixture
async def client(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[AsyncTestClient]:
    """An app with one active alert, configured with the parametrised admin token."""
    app = create_app(make_settings(sqlite_url, admin_token=request.param))
    async with AsyncTestClient(app=app) as client:
        in_app(client, raise_one_alert, app.state.services.alerts)
        yield client


@pytest.mark.parametrize("client", [None], indirect=True)
async def test_admin_endpoint_is_403_with_advice_when_no_token_is_configured(client: AsyncTestClient) -> None:
    response = await client.post("/alerts/1/acknowledge", headers={"authorization": "Bearer anything"})
    assert response.status_code == 403
    assert "SENTIMENT_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("client", ["s3cret"], indirect=True)
async def test_admin_endpoint_is_401_without_or_with_a_wrong_token(client: AsyncTestClient) -> None:
    missing = await client.post("/alerts/1/acknowledge")
    wrong = await client.post("/alerts/1/acknowledge", headers={"authorization": "Bearer guess"})
    basic = await client.post("/alerts/1/acknowledge", headers={"authorization": "Basic s3cret"})
    assert [r.status_code for r in (missing, wrong, basic)] == [401, 401, 401]
    assert missing.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("client", ["s3cret"], indirect=True)
async def test_admin_endpoint_acts_with_the_right_token(client: AsyncTestClient) -> None:
    response = await client.post("/alerts/1/acknowledge", headers={"authorization": "Bearer s3cret"})
    unknown = await client.post("/alerts/99/acknowledge", headers={"authorization": "Bearer s3cret"})
    assert response.status_code == 200
    assert response.json()["acknowledged_at"] is not None
    assert unknown.status_code == 404


async def test_every_admin_endpoint_in_the_api_refuses_a_missing_or_wrong_token(sqlite_url: str) -> None:
    """Every operation the OpenAPI document marks with a 401 answers
    401 without the token and with a wrong one, and changes nothing."""
    app = create_app(make_settings(sqlite_url, admin_token="s3cret"))
    async with AsyncTestClient(app=app) as client:
        # Wrong tokens are throttled past a few per client (test_sessions.py): here each must reach the guard
        app.state.services.access.throttle = AttemptThrottle(time.monotonic, free_attempts=1_000)
        spec = (await client.get("/schema/openapi.json")).json()
        guarded = [
            (
                method,
                path.replace("{key}", "vader")
                .replace("{alert_id}", "1")
                .replace("{dataset_id}", "0190f4d2-0000-7000-8000-000000000000")
                .replace("{key_id}", "0190f4d2-0000-7000-8000-000000000000"),
            )
            for path, item in spec["paths"].items()
            for method, operation in item.items()
            if isinstance(operation, dict) and "401" in operation.get("responses", {})
        ]
        results = []
        for method, path in guarded:
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret"}):
                response = await client.request(
                    method.upper(), path, json={"model": "vader"}, headers=headers
                )
                results.append((method, path, response.status_code))
        default = (await client.get("/models")).json()["default_model"]
    # acknowledge, failsafe reset and faults, model download, load, unload, default, data-set cancel and
    # delete, API keys list, create and revoke, training start and cancel
    assert len(guarded) == 14
    assert [r for r in results if r[2] != 401] == []
    # /docs offers the admin token ("Authorize") for exactly these operations
    assert spec["components"]["securitySchemes"]["AdminToken"]["scheme"] == "bearer"
    secured = [
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security") == [{"AdminToken": []}]
    ]
    assert len(secured) == 14
    assert all("401" in spec["paths"][path][method]["responses"] for method, path in secured)
    assert default == "vader"
