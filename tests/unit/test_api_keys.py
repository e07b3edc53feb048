"""API keys without a database: how keys look and are digested, each key's own rate limit on a fake clock,
which paths need a key, and the two settings."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from sentiment.core.api_keys import ApiKey, display_prefix, key_digest, new_key
from sentiment.core.domain import RateLimited
from sentiment.services.api_keys import ApiKeyService
from sentiment.settings import Settings, SettingsError
from sentiment.web.key_guard import OPEN_PATHS
from tests.clocks import FakeClock


def a_key(rate_per_minute: int | None, number: int = 1) -> ApiKey:
    return ApiKey(
        id=UUID(int=number),
        name=f"team-{number}",
        prefix="sk_abcde",
        rate_per_minute=rate_per_minute,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        revoked_at=None,
        last_used_at=None,
        requests=0,
        texts=0,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keys(clock: FakeClock) -> ApiKeyService:
    # The engine is never connected: admitting a request touches memory only.
    return ApiKeyService(create_async_engine("sqlite+aiosqlite://"), clock=clock)


def test_keys_are_random_256_bit_tokens_kept_as_their_sha256_digest() -> None:
    made = {new_key() for _ in range(100)}
    assert len(made) == 100
    key = made.pop()
    assert key.startswith("sk_") and len(key) == 3 + 43
    assert key_digest(key) == hashlib.sha256(key.encode()).hexdigest()
    assert display_prefix(key) == key[:8]


def test_a_key_may_make_its_rate_at_once_then_one_request_per_interval(
    keys: ApiKeyService, clock: FakeClock
) -> None:
    key = a_key(rate_per_minute=3)
    for _ in range(3):
        keys.admit(key, scores_text=True)
    with pytest.raises(RateLimited) as refused:
        keys.admit(key, scores_text=True)
    assert refused.value.retry_after_s == 20
    clock.advance(19.9)
    with pytest.raises(RateLimited) as still:
        keys.admit(key, scores_text=True)
    assert still.value.retry_after_s == 1
    clock.advance(0.1)
    keys.admit(key, scores_text=True)
    with pytest.raises(RateLimited):
        keys.admit(key, scores_text=True)


def test_the_limit_is_per_key_and_counts_only_requests_that_score_text(keys: ApiKeyService) -> None:
    first, second, unlimited = a_key(1, 1), a_key(1, 2), a_key(None, 3)
    keys.admit(first, scores_text=True)
    keys.admit(second, scores_text=True)  # a budget of its own, though of the same rate
    for _ in range(100):
        keys.admit(first, scores_text=False)
        keys.admit(unlimited, scores_text=True)
    with pytest.raises(RateLimited):
        keys.admit(first, scores_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/ready",
        "/metrics",
        "/docs",
        "/schema",
        "/schema/openapi.json",
        "/static/app.css",
        "/ui/login",
    ],
)
def test_probes_the_scrape_documents_and_the_login_page_are_open(path: str) -> None:
    assert OPEN_PATHS.match(path)


@pytest.mark.parametrize(
    "path",
    [
        "/predict",
        "/predict/batch",
        "/models",
        "/status",
        "/alerts",
        "/analytics",
        "/datasets",
        "/keys",
        "/uix",
        "/ui",
        "/ui/analyze",
        "/",
    ],
)
def test_every_other_endpoint_needs_a_key(path: str) -> None:
    assert not OPEN_PATHS.match(path)


def test_api_keys_are_off_and_uploads_open_unless_set() -> None:
    assert (Settings.from_env({}).api_keys, Settings.from_env({}).uploads) == (False, "open")
    configured = Settings.from_env({"SENTIMENT_API_KEYS": "on", "SENTIMENT_UPLOADS": "Admin"})
    assert (configured.api_keys, configured.uploads) == (True, "admin")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SENTIMENT_UPLOADS": "closed"}, "SENTIMENT_UPLOADS='closed' is not a policy; use open"),
        ({"SENTIMENT_API_KEYS": "maybe"}, "SENTIMENT_API_KEYS='maybe' is not a boolean"),
    ],
)
def test_a_bad_access_setting_stops_start_up_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + message.replace("(", r"\(")):
        Settings.from_env(env)
