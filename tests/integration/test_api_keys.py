"""API keys in-process: what needs one, the refusals (missing, wrong, revoked, over the key's own limit),
usage in GET /keys and /metrics, management by the admin only, uploads under SENTIMENT_UPLOADS=admin, and that
no key is ever kept or said in clear."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from sentiment.app import create_app
from sentiment.services.settings import DatasetSettings
from sentiment.storage.database import create_engine
from sentiment.storage.tables import ApiKeyRow
from tests.conftest import make_settings

ADMIN = {"authorization": "Bearer adm"}
CSV = b"text\nwhat a lovely day\nawful service\n"


def keyed_app(url: str, tmp_path: Path, **overrides: Any) -> Any:
    return create_app(
        make_settings(
            url,
            admin_token="adm",
            datasets=DatasetSettings(data_dir=str(tmp_path / "data")),
            **({"api_keys": True} | overrides),
        )
    )


@pytest.fixture
async def client(sqlite_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    """SENTIMENT_API_KEYS=on, admin token `adm`."""
    async with AsyncTestClient(app=keyed_app(sqlite_url, tmp_path)) as client:
        yield client


async def new_key(client: AsyncTestClient, name: str = "team", rate: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name} | ({"rate_per_minute": rate} if rate else {})
    response = await client.post("/keys", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created: dict[str, Any] = response.json()
    return created


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def upload_files() -> dict[str, Any]:
    return {"file": ("tweets.csv", CSV, "text/csv"), "text_column": (None, "text"), "model": (None, "vader")}


# -- what needs a key ----------------------------------------------------------------------------------------

READS = ["/models", "/models/vader", "/analytics", "/status", "/alerts", "/datasets", "/db/health"]


async def test_with_keys_off_nothing_needs_a_key(sqlite_url: str, tmp_path: Path) -> None:
    async with AsyncTestClient(app=keyed_app(sqlite_url, tmp_path, api_keys=False)) as client:
        predicted = await client.post("/predict", json={"text": "fine"})
        reads = [(await client.get(path)).status_code for path in READS]
    assert predicted.status_code == 200
    assert 401 not in reads


async def test_a_missing_key_is_401_saying_how_to_send_one(client: AsyncTestClient) -> None:
    predict = await client.post("/predict", json={"text": "fine"})
    batch = await client.post("/predict/batch", json={"texts": ["fine"]})
    reads = [await client.get(path) for path in READS]
    upload = await client.post("/datasets", files=upload_files())
    assert [r.status_code for r in (predict, batch, upload, *reads)] == [401] * (3 + len(READS))
    detail = predict.json()["detail"]
    assert "Authorization: Bearer <key>" in detail and "X-API-Key: <key>" in detail
    assert predict.headers["www-authenticate"] == "Bearer"


async def test_probes_the_scrape_the_documents_and_the_login_page_need_no_key(
    client: AsyncTestClient,
) -> None:
    paths = ["/health", "/ready", "/metrics", "/docs", "/schema/openapi.json", "/ui/login"]
    statuses = {path: (await client.get(path, follow_redirects=False)).status_code for path in paths}
    assert {path: status for path, status in statuses.items() if status != 200} == {}


async def test_pages_send_visitors_without_a_key_to_log_in_with_one(client: AsyncTestClient) -> None:
    pages = ["/", "/ui", "/ui/analyze", "/ui/predictions", "/ui/models"]
    sent = [(await client.get(path, follow_redirects=False)) for path in pages]
    # Each page is where the login goes back to ("/" redirects to /ui, which is its own way back).
    back = ["/ui/login", *(f"/ui/login?next={path.replace('/', '%2F')}" for path in pages[1:])]
    assert [(r.status_code, r.headers.get("location")) for r in sent] == [(303, link) for link in back]
    part = await client.get("/ui/overview/live", headers={"hx-request": "true"}, follow_redirects=False)
    assert (part.status_code, part.headers.get("hx-redirect")) == (401, "/ui/login")
    on_page = {"hx-request": "true", "hx-current-url": "http://testserver/ui?range=24h"}
    part = await client.get("/ui/overview/live", headers=on_page, follow_redirects=False)
    assert (part.status_code, part.headers.get("hx-redirect")) == (401, "/ui/login?next=%2Fui%3Frange%3D24h")
    login = await client.get("/ui/login")
    assert "API key or admin token" in login.text
    key = (await new_key(client))["key"]
    token = csrf_of(login.text)
    wrong = await client.post("/ui/login", data={"token": key + "x", "csrf_token": token})
    assert (wrong.status_code, "wrong token or API key" in wrong.text) == (401, True)
    logged = await client.post("/ui/login", data={"token": key, "csrf_token": token}, follow_redirects=False)
    assert (logged.status_code, logged.headers["location"]) == (302, "/ui")
    page = await client.get("/ui/analyze")
    assert page.status_code == 200 and "Log out" in page.text
    scored = await client.post("/ui/analyze", data={"text": "lovely", "csrf_token": csrf_of(page.text)})
    assert scored.status_code == 200 and "positive" in scored.text
    (listed,) = (await client.get("/keys", headers=ADMIN)).json()
    assert listed["requests"] >= 2  # the session's page requests count as the key's
    await client.delete(f"/keys/{listed['id']}", headers=ADMIN)
    after = await client.get("/ui/analyze", follow_redirects=False)
    assert after.status_code == 303  # a revoked key ends the sessions logged in with it


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_a_key_works_as_bearer_and_as_x_api_key(client: AsyncTestClient) -> None:
    key = (await new_key(client))["key"]
    as_bearer = await client.post("/predict", json={"text": "lovely"}, headers=bearer(key))
    as_header = await client.post("/predict/batch", json={"texts": ["a", "b"]}, headers={"x-api-key": key})
    read = await client.get("/models", headers={"X-API-Key": key})
    assert [as_bearer.status_code, as_header.status_code, read.status_code] == [200, 200, 200]


async def test_the_admin_token_is_accepted_wherever_a_key_is(client: AsyncTestClient) -> None:
    predicted = await client.post("/predict", json={"text": "fine"}, headers=ADMIN)
    read = await client.get("/status", headers={"x-api-key": "adm"})
    assert (predicted.status_code, read.status_code) == (200, 200)


async def test_a_wrong_key_is_401_and_repeated_wrong_keys_throttle_the_client(
    client: AsyncTestClient,
) -> None:
    key = (await new_key(client))["key"]
    # The throttle's free attempts, then the one failure that starts the client's wait.
    wrong = [await client.post("/predict", json={"text": "x"}, headers=bearer(key + "x")) for _ in range(6)]
    assert [r.status_code for r in wrong] == [401] * 6
    assert wrong[0].json()["detail"] == "wrong API key"
    throttled = await client.post("/predict", json={"text": "x"}, headers=bearer("sk_guess"))
    # While the client waits, even the right key is not looked at.
    right = await client.post("/predict", json={"text": "x"}, headers=bearer(key))
    assert (throttled.status_code, right.status_code) == (429, 429)
    assert int(throttled.headers["retry-after"]) >= 1


async def test_a_revoked_key_is_401_at_once(client: AsyncTestClient) -> None:
    created = await new_key(client)
    key = created["key"]
    assert (await client.post("/predict", json={"text": "x"}, headers=bearer(key))).status_code == 200
    revoked = await client.delete(f"/keys/{created['record']['id']}", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = await client.post("/predict", json={"text": "x"}, headers=bearer(key))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    unknown = await client.delete("/keys/00000000-0000-7000-8000-000000000000", headers=ADMIN)
    assert unknown.status_code == 404


async def test_a_key_over_its_own_rate_is_429_with_retry_after_on_scoring_requests_only(
    client: AsyncTestClient,
) -> None:
    limited = (await new_key(client, "limited", rate=2))["key"]
    other = (await new_key(client, "other", rate=2))["key"]
    first = [await client.post("/predict", json={"text": "x"}, headers=bearer(limited)) for _ in range(2)]
    over = await client.post("/predict/batch", json={"texts": ["x"]}, headers=bearer(limited))
    assert [r.status_code for r in first] == [200, 200]
    assert over.status_code == 429
    assert 1 <= int(over.headers["retry-after"]) <= 30  # one request per 30 s once the burst is spent
    assert "2 scoring requests per minute" in over.json()["detail"]
    # Reads are not scoring requests, and another key has a budget of its own.
    assert (await client.get("/models", headers=bearer(limited))).status_code == 200
    assert (await client.post("/predict", json={"text": "x"}, headers=bearer(other))).status_code == 200


# -- usage ---------------------------------------------------------------------------------------------------


async def test_usage_counts_show_in_get_keys_and_in_metrics_by_name_and_prefix(
    client: AsyncTestClient,
) -> None:
    created = await new_key(client, "analytics-team")
    key, prefix = created["key"], created["record"]["prefix"]
    await client.post("/predict", json={"text": "good"}, headers=bearer(key))
    await client.post("/predict/batch", json={"texts": ["a", "b", "c"]}, headers={"x-api-key": key})
    await client.get("/models", headers=bearer(key))
    listed = {k["id"]: k for k in (await client.get("/keys", headers=ADMIN)).json()}
    record = listed[created["record"]["id"]]
    assert (record["requests"], record["texts"]) == (3, 4)
    assert record["last_used_at"] is not None
    metrics = (await client.get("/metrics")).text
    labels = f'key_name="analytics-team",key_prefix="{prefix}"'
    assert f"sentiment_api_key_requests_total{{{labels}}} 3.0" in metrics
    assert f"sentiment_api_key_texts_total{{{labels}}} 4.0" in metrics


# -- management ----------------------------------------------------------------------------------------------


async def test_only_the_admin_manages_keys(client: AsyncTestClient) -> None:
    created = await new_key(client)
    key, key_id = created["key"], created["record"]["id"]
    for headers in ({}, bearer(key), {"x-api-key": key}):
        made = await client.post("/keys", json={"name": "mine"}, headers=headers)
        listed = await client.get("/keys", headers=headers)
        revoked = await client.delete(f"/keys/{key_id}", headers=headers)
        assert [made.status_code, listed.status_code, revoked.status_code] == [401, 401, 401]
    assert (await client.post("/predict", json={"text": "x"}, headers=bearer(key))).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "two\nlines"}, "printable"),
        ({"name": "nul\u0000"}, "printable"),
        ({"name": "team", "rate_per_minute": 0}, "rate_per_minute"),
        ({"name": "team", "key": "sk_mine"}, "key"),
    ],
)
async def test_a_key_request_that_breaks_a_rule_is_400(
    client: AsyncTestClient, body: dict[str, Any], message: str
) -> None:
    response = await client.post("/keys", json=body, headers=ADMIN)
    assert response.status_code == 400
    assert message in str(response.json())


async def test_the_keys_page_is_for_admins_and_shows_a_new_key_once(client: AsyncTestClient) -> None:
    await new_key(client, "secret-team")
    anonymous = await client.get("/ui/keys")
    assert anonymous.status_code == 200
    assert "secret-team" not in anonymous.text and 'href="/ui/keys"' not in anonymous.text
    csrf = await login(client)
    page = await client.get("/ui/keys")
    assert "secret-team" in page.text and 'href="/ui/keys"' in page.text
    assert (await client.get("/models")).status_code == 200  # an admin's session is accepted where a key is
    made = await client.post(
        "/ui/keys", data={"name": "page-team", "rate_per_minute": "30", "csrf_token": csrf}
    )
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    shown = re.search(r'<code class="secret">(sk_[^<]+)</code>', made.text)
    assert shown is not None
    key = shown.group(1)
    assert key not in (await client.get("/ui/keys")).text
    assert (await client.post("/predict", json={"text": "x"}, headers=bearer(key))).status_code == 200
    forged = await client.post("/ui/keys", data={"name": "forged", "csrf_token": "guess"})
    assert forged.status_code == 403
    key_id = re.search(r'id="key-([0-9a-f-]{36})">\s*<td><strong>page-team<', made.text)
    assert key_id is not None
    revoked = await client.post(f"/ui/keys/{key_id.group(1)}/revoke", headers={"x-csrf-token": csrf})
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert (await client.post("/predict", json={"text": "x"}, headers=bearer(key))).status_code == 401


async def login(client: AsyncTestClient) -> str:
    """Log the client's session in as the admin; the session's CSRF token."""
    html = (await client.get("/ui/login")).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    response = await client.post(
        "/ui/login", data={"token": "adm", "csrf_token": match.group(1)}, follow_redirects=False
    )
    assert response.status_code in (301, 302, 303)
    html = (await client.get("/ui/keys")).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


# -- no key in clear -----------------------------------------------------------------------------------------


async def test_no_key_is_stored_logged_listed_or_exported_in_clear(sqlite_url: str, tmp_path: Path) -> None:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logged:
        async with AsyncTestClient(app=keyed_app(sqlite_url, tmp_path)) as client:
            created = await new_key(client, "audited")
            key = created["key"]
            await client.post("/predict", json={"text": "x"}, headers=bearer(key))
            await client.post("/predict", json={"text": "x"}, headers={"x-api-key": key + "typo"})
            listed = (await client.get("/keys", headers=ADMIN)).text
            metrics = (await client.get("/metrics")).text
            await client.delete(f"/keys/{created['record']['id']}", headers=ADMIN)
    digest = hashlib.sha256(key.encode()).hexdigest()
    engine = create_engine(sqlite_url)
    async with engine.connect() as connection:
        rows = [dict(row._mapping) for row in await connection.execute(select(ApiKeyRow.__table__))]
    await engine.dispose()
    assert len(rows) == 1
    assert rows[0]["key_hash"] == digest and rows[0]["prefix"] == key[:8]
    assert not any(key in str(value) for value in rows[0].values())
    assert key not in listed and digest not in listed and key not in metrics
    assert {"api_key_created", "api_key_revoked", "http_request"} <= {line["event"] for line in logged}
    assert not any(key[8:16] in str(line) for line in logged)  # not the key, nor any of it past the prefix


# -- uploads -------------------------------------------------------------------------------------------------


async def test_uploads_admin_refuses_anonymous_uploads_and_accepts_a_key_or_the_admin(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = keyed_app(sqlite_url, tmp_path, api_keys=False, uploads="admin")
    async with AsyncTestClient(app=app) as client:
        key = (await new_key(client, "uploader"))["key"]
        anonymous = await client.post("/datasets", files=upload_files())
        wrong = await client.post("/datasets", files=upload_files(), headers={"x-api-key": "sk_wrong"})
        with_key = await client.post("/datasets", files=upload_files(), headers={"x-api-key": key})
        as_admin = await client.post("/datasets", files=upload_files(), headers=ADMIN)
        # Keys are off: predictions still need none.
        predicted = await client.post("/predict", json={"text": "x"})
    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert "SENTIMENT_UPLOADS=admin" in anonymous.json()["detail"]
    assert (with_key.status_code, as_admin.status_code, predicted.status_code) == (202, 202, 200)


async def test_uploads_admin_keeps_page_uploads_for_a_logged_in_admin(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = keyed_app(sqlite_url, tmp_path, api_keys=False, uploads="admin")
    async with AsyncTestClient(app=app) as client:
        page = await client.get("/ui/analyze")
        assert 'id="dataset-upload"' not in page.text and "need an admin" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        files = {"file": ("tweets.csv", CSV, "text/csv")}
        refused = await client.post("/ui/datasets", files=files, headers={"x-csrf-token": csrf.group(1)})
        assert refused.status_code == 401
        token = await login(client)
        assert 'id="dataset-upload"' in (await client.get("/ui/analyze")).text
        uploaded = await client.post("/ui/datasets", files=files, headers={"x-csrf-token": token})
        assert uploaded.status_code == 200 and 'id="dataset-columns"' in uploaded.text
