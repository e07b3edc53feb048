"""Page sessions kept on the server (the app registers the database store under "sessions"); the cookie holds
only a random id. Litestar's server-side backend, narrowed where a page session needs it:

- a request whose session stays empty (every JSON API call) writes no row and sets no cookie;
- an id the store does not know is never adopted: a cookie planted on a browser cannot fix its session id;
- a session the handler cleared (login, logout) loses its id and row: login then starts under a new id;
- an unchanged session is not written back: its expiry is renewed by an update on read, so a session that a
  logout ended meanwhile, on any replica, is not brought back by a request already in flight;
- a request that brings no cookie and is not a page (an API client's) skips the middleware altogether."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, ScopeSession, Send
from litestar.utils.dataclass import extract_dataclass_items

from sentiment.web.key_guard import PAGE_PATHS


class StoredSession(dict[str, Any]):
    """A session as loaded from the store, with the bytes it was loaded from."""

    def __init__(self, data: dict[str, Any], raw: bytes) -> None:
        super().__init__(data)
        self.raw = raw


class PageSessionBackend(ServerSideSessionBackend):
    def _cookie_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        session_id = connection.cookies.get(self.config.key)
        return session_id if session_id and session_id != "null" else None

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        if session_id := self._cookie_id(connection):
            store = self.config.get_store_from_app(connection.scope["app"])
            raw = await self.get(session_id, store=store)
            if raw is not None:
                return StoredSession(self.deserialize_data(raw), raw)
        return {}

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        """The cookie's id when a session was loaded under it, else a new one (made when the answer stores
        the session: most requests never need one)."""
        cookie_id = self._cookie_id(connection)
        if cookie_id and isinstance(connection.scope.get("session"), StoredSession):
            return cookie_id
        return ""

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        cookie_id = self._cookie_id(connection)
        if cookie_id is None and (scope_session is Empty or not scope_session):
            return  # the common case, every JSON API call: no session before, none after
        store = self.config.get_store_from_app(connection.scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        cookie_params = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )
        # The middleware set the id after loading; None here means the handler cleared the session.
        session_id = connection.get_session_id()
        if cookie_id and session_id != cookie_id:
            await self.delete(cookie_id, store=store)
        if scope_session is Empty or not scope_session:
            if cookie_id:
                headers.add(
                    "Set-Cookie",
                    Cookie(value="null", key=self.config.key, expires=0, **cookie_params).to_header(
                        header=""
                    ),
                )
            return
        session_id = session_id or self.generate_session_id()
        unchanged = (
            session_id == cookie_id
            and isinstance(scope_session, StoredSession)
            and self.deserialize_data(scope_session.raw) == scope_session
        )
        if not unchanged:
            await self.set(session_id, self.serialize_data(scope_session, connection.scope), store=store)
        # Sent again on every answer, so that the browser keeps the cookie as long as the store keeps the row.
        headers.add(
            "Set-Cookie", Cookie(value=session_id, key=self.config.key, **cookie_params).to_header(header="")
        )


class PageSessionConfig(ServerSideSessionConfig):
    _backend_class = PageSessionBackend


class SessionsWhereNeeded:
    """The session middleware for the requests that can have a session: those that bring a cookie, and pages
    (which start one, for a CSRF token or a login). An API call without a cookie has none before and none
    after: it skips the cookie parsing and the send wrapper, on every request."""

    def __init__(self, app: ASGIApp, config: PageSessionConfig) -> None:
        self._app = app
        self._with_sessions = config.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not PAGE_PATHS.match(scope["path"]) and not _has_cookie(scope):
            await self._app(scope, receive, send)
        else:
            await self._with_sessions(scope, receive, send)


def _has_cookie(scope: Scope) -> bool:
    return any(name == b"cookie" for name, _ in scope["headers"])
