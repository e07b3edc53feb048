"""Who is calling. With SENTIMENT_API_KEYS=on every endpoint but the probes, the scrape and the documents
needs an API key, sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`; the admin token (and an admin's
logged-in session) is accepted wherever a key is. The pages, which read and score as the API does, need a
session logged in on /ui/login with a key or the admin token (a visitor without one is sent there). With
SENTIMENT_UPLOADS=admin data-set uploads and starts need an admin or a key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler

from sentiment.core.api_keys import ApiKey
from sentiment.services.api_keys import ApiKeyService
from sentiment.services.container import Services
from sentiment.web.dependencies import access_of
from sentiment.web.guard import CSRF_HEADER, client_of, is_admin_session, require_csrf, throttled

KEY_HEADER = "x-api-key"
# Open with keys on: liveness and readiness probes, the Prometheus scrape, the API documents, the pages'
# assets and the login page. Every other endpoint, present or future, needs a key.
OPEN_PATHS = re.compile(r"^/(health|ready|metrics|docs|schema(/.*)?|static/.*|ui/log(in|out))$")
PAGE_PATHS = re.compile(r"^/(ui(/.*)?)?$")
SESSION_KEY = "api_key"  # what a page session logged in with a key keeps: the key's digest, never the key
# Every request that makes the service score text: the JSON predictions, the analyze page, data-set uploads
# and starts (API and pages). The service-wide and the per-key rate limits count these.
SCORING_PATHS = re.compile(r"^/(predict(/batch)?|ui/analyze|datasets|ui/datasets(/[^/]+/start)?)$")
SEND_A_KEY = "send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
_CALLER = "sentiment_caller"


@dataclass(frozen=True)
class Caller:
    """Who a request's credential names: an API key, or the admin (key None). `by_session`: the key came from
    a logged-in page session, not a header (a state-changing request then needs the session's CSRF token)."""

    key: ApiKey | None
    by_session: bool = False


class LoginRequired(NotAuthorizedException):
    """A page asked for without a logged-in session while keys are on: the visitor is sent to /ui/login."""


def api_keys_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKeyService:
    services: Services = connection.app.state.services
    return services.api_keys


def scores_text(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return (
        connection.scope.get("method") == "POST" and SCORING_PATHS.match(connection.scope["path"]) is not None
    )


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    supplied = connection.headers.get(KEY_HEADER)
    if supplied is None:
        scheme, _, supplied = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
    return supplied.strip() or None


async def identify(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller | None:
    """The caller named by the request's key or admin token, checked once per request (the second guard to
    ask gets the first one's answer); None when the request brings neither. A wrong or revoked key is 401; a
    key over its own rate limit, or a client throttled for wrong keys, is 429 (RateLimited)."""
    if (known := _known_caller(connection)) is not None:
        return known
    supplied = presented_key(connection)
    if supplied is None:
        return await _session_caller(connection)
    access = access_of(connection)
    client = client_of(connection)
    # Wrong keys count with wrong admin tokens: a client that keeps sending them waits, unheard meanwhile.
    if refusal := throttled(access, client):
        raise refusal
    if access.accepts(supplied):
        access.throttle.succeeded(client)
        caller = Caller(None)
    else:
        keys = api_keys_of(connection)
        key = await keys.verify(supplied)
        if key is None or key.revoked_at is not None:
            access.throttle.failed(client)
            reason = (
                "wrong API key" if key is None else "this API key was revoked; ask an admin for a new one"
            )
            raise NotAuthorizedException(reason, headers={"www-authenticate": "Bearer"})
        access.throttle.succeeded(client)
        keys.admit(key, scores_text(connection))
        caller = Caller(key)
    connection.state[_CALLER] = caller
    return caller


def _known_caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller | None:
    """The caller a guard identified earlier in this request, read from the scope (`connection.state` builds
    a State object on every access, and every scoring request asks)."""
    known = connection.scope.get("state", {}).get(_CALLER)
    return known if isinstance(known, Caller) else None


async def _session_caller(connection: ASGIConnection[Any, Any, Any, Any]) -> Caller | None:
    """The key a page session logged in with, while it is valid: a revoked key ends its sessions too."""
    session = connection.scope.get("session")
    digest = session.get(SESSION_KEY) if isinstance(session, dict) else None
    if not isinstance(digest, str):
        return None
    keys = api_keys_of(connection)
    key = await keys.verify_digest(digest)
    if key is None or key.revoked_at is not None:
        return None
    keys.admit(key, scores_text(connection))
    caller = Caller(key, by_session=True)
    connection.state[_CALLER] = caller
    return caller


async def require_api_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler | None = None
) -> None:
    """On the whole app: with SENTIMENT_API_KEYS=on, an endpoint outside OPEN_PATHS needs a key, the admin
    token or a logged-in session (an admin's, or one logged in with a key)."""
    if not api_keys_of(connection).required or OPEN_PATHS.match(connection.scope["path"]):
        return
    if await identify(connection) is not None or is_admin_session(connection):
        return
    if PAGE_PATHS.match(connection.scope["path"]):
        raise LoginRequired("log in with an API key or the admin token on /ui/login")
    raise NotAuthorizedException(
        f"this endpoint needs an API key: {SEND_A_KEY}; an admin makes keys on /ui/keys, with POST /keys or "
        "with `sentiment keys create NAME`",
        headers={"www-authenticate": "Bearer"},
    )


async def require_uploader(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler | None = None
) -> None:
    """With SENTIMENT_UPLOADS=admin, data-set uploads and starts need an admin (the token, or a logged-in
    session with its CSRF token) or an API key."""
    if api_keys_of(connection).uploads == "open":
        return
    caller = await identify(connection)
    if caller is not None and not caller.by_session:
        return
    if caller is not None or is_admin_session(connection):
        # The header, not a form field: reading the form would consume an upload's stream.
        if connection.headers.get(CSRF_HEADER) is None:
            raise PermissionDeniedException(f"missing CSRF token: send the session's token as {CSRF_HEADER}")
        await require_csrf(connection, handler)
        return
    raise NotAuthorizedException(
        "data-set uploads need an admin or an API key on this service (SENTIMENT_UPLOADS=admin): "
        f"{SEND_A_KEY}, or log in on /ui/login",
        headers={"www-authenticate": "Bearer"},
    )


def count_texts(connection: ASGIConnection[Any, Any, Any, Any], texts: int) -> None:
    """Add the texts a request scored to its key's usage (nothing for the admin, or without a key)."""
    caller = _known_caller(connection)
    if caller is not None and caller.key is not None:
        api_keys_of(connection).count_texts(caller.key, texts)
