"""The admin guard, on the alert acknowledgement endpoint (every admin endpoint shares it)."""

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from sentiment.alerts import AlertService
from sentiment.app import create_app
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
