"""The one admin check, shared by every endpoint that changes the service's state."""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler


def require_admin(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    expected: str | None = connection.app.state.services.settings.admin_token
    if expected is None:
        raise PermissionDeniedException(
            "admin actions are disabled: no admin token is configured; set SENTIMENT_ADMIN_TOKEN and restart"
        )
    scheme, _, supplied = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), expected.encode()):
        raise NotAuthorizedException(
            "missing or wrong admin token: send 'Authorization: Bearer <SENTIMENT_ADMIN_TOKEN>'",
            headers={"www-authenticate": "Bearer"},
        )
