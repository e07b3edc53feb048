"""The one admin check, shared by every endpoint that changes the service's state, and the CSRF check of page
forms. API clients send `Authorization: Bearer <token>`; pages log in once with the same token, which starts a
server-side session (an HttpOnly, SameSite=Strict cookie holds its id), and every page form carries the
session's CSRF token. Wrong tokens are throttled per client address, on both paths."""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.spec import SecurityRequirement, SecurityScheme
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE

from sentiment.core.domain import RateLimited
from sentiment.services.access import AccessService
from sentiment.web.dependencies import access_of

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# What an HTML form on another site can post without a CORS preflight: a JSON endpoint refuses these.
FORM_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
# The admin token in the OpenAPI document: /docs offers it under "Authorize" for the operations marked.
ADMIN_TOKEN_SCHEME = "AdminToken"
ADMIN_SECURITY: list[SecurityRequirement] = [{ADMIN_TOKEN_SCHEME: []}]
ADMIN_TOKEN = SecurityScheme(
    type="http",
    scheme="bearer",
    description="SENTIMENT_ADMIN_TOKEN, sent as `Authorization: Bearer <token>`",
)


def csrf_token(session: dict[str, object]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def client_of(connection: ASGIConnection) -> str:
    """Whom wrong tokens count against: the client's address, as the rate limit counts requests."""
    return connection.client.host if connection.client else "127.0.0.1"


def throttled(access: AccessService, client: str) -> RateLimited | None:
    """The refusal for a client that must still wait after its wrong tokens; None when it may try."""
    wait_s = access.throttle.wait_s(client)
    if wait_s <= 0:
        return None
    seconds = math.ceil(wait_s)
    return RateLimited(f"too many wrong admin tokens from this address: try again in {seconds} s", seconds)


def is_admin_session(connection: ASGIConnection) -> bool:
    session = connection.scope.get("session")
    return isinstance(session, dict) and access_of(connection).is_admin_mark(session.get("admin"))


async def require_csrf(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    """Unsafe page requests must carry the session's CSRF
    token (htmx sends it as a header, forms as a field)."""
    if connection.scope.get("method") in SAFE_METHODS:
        return
    session = connection.scope.get("session") or {}
    expected = session.get("csrf") if isinstance(session, dict) else None
    supplied = connection.headers.get(CSRF_HEADER)
    if supplied is None and connection.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        # Guards of HTTP routes get the Request, which has form(); the declared type is the wider connection.
        supplied = (await connection.form()).get(CSRF_FIELD)  # type: ignore[attr-defined]
    if (
        not isinstance(expected, str)
        or not isinstance(supplied, str)
        or not hmac.compare_digest(supplied, expected)
    ):
        raise PermissionDeniedException("missing or wrong CSRF token: reload the page and try again")


async def require_admin(connection: ASGIConnection, handler: BaseRouteHandler | None = None) -> None:
    access = access_of(connection)
    if not access.configured:
        raise PermissionDeniedException(
            "admin actions are disabled: no admin token is configured; set SENTIMENT_ADMIN_TOKEN and restart"
        )
    scheme, _, supplied = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        client = client_of(connection)
        if refusal := throttled(access, client):
            raise refusal
        if access.verify(supplied.strip(), client):
            return
    if is_admin_session(connection):
        await require_csrf(connection, handler)
        return
    raise NotAuthorizedException(
        "missing or wrong admin token: send 'Authorization: Bearer <SENTIMENT_ADMIN_TOKEN>' "
        "or log in on /ui/login",
        headers={"www-authenticate": "Bearer"},
    )


async def require_json(request: Request[Any, Any, Any]) -> None:
    """A JSON endpoint takes JSON: a body labelled as a form or plain text, as a cross-site form would send
    it, is refused before it is read. A `before_request` hook, not a guard: Litestar copies the handler for
    every guard it runs, and the prediction endpoints run this on every request."""
    supplied = next((value for name, value in request.scope["headers"] if name == b"content-type"), b"")
    content_type = supplied.decode("latin-1").partition(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        raise ClientException(
            detail=f"send the body as application/json, not {content_type}",
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        )


def return_path(raw: str | None) -> str | None:
    """Where to go back to after logging in: a page of this service (its path and query), never another site
    nor the login page itself; None for anything else."""
    if not raw or "\\" in raw or any(c.isspace() or not c.isprintable() for c in raw):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return None
    if not (parts.path == "/ui" or parts.path.startswith("/ui/") or parts.path == "/docs"):
        return None
    if parts.path == "/ui/login":
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def login_page_for(page: str | None) -> str:
    """The login page, asked to come back to `page` (a path with its query) when that is one of ours."""
    back = return_path(page)
    return f"/ui/login?{urlencode({'next': back})}" if back else "/ui/login"


def login_link(connection: ASGIConnection) -> str:
    """The login page, asked to come back to the page `connection` shows."""
    query = connection.scope["query_string"].decode("latin-1")
    return login_page_for(connection.scope["path"] + (f"?{query}" if query else ""))
