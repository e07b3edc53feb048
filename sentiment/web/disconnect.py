"""Work for clients that are gone is dropped: a prediction whose client disconnects is cancelled, and the
texts it still had queued are skipped by the model's queue instead of being scored for nobody.

Litestar does not cancel a handler when its client goes; the server says so only to whoever awaits `receive`
once the body is read. This middleware does, for the paths that score text, and cancels the handler when the
server reports the disconnect before the response was sent.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

log = structlog.get_logger(__name__)

SCORING_PATHS = frozenset({"/predict", "/predict/batch", "/ui/analyze"})


class CancelWhenClientGoes(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["path"] not in SCORING_PATHS or scope.get("method") != "POST":
            await next_app(scope, receive, send)
            return
        body_read = asyncio.Event()
        responded = False

        async def receiving() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read.set()
            return message

        async def sending(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                responded = True
            await send(message)

        handler = asyncio.ensure_future(next_app(scope, receiving, sending))
        gone = False

        async def watch() -> None:
            nonlocal gone
            await body_read.wait()
            # The body is read: the server's next message is the client's disconnect (or, once the response
            # is complete, the end of the exchange).
            message = await receive()
            if message["type"] == "http.disconnect" and not responded and not handler.done():
                gone = True
                log.info("client_gone", path=scope["path"])
                handler.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await handler
        except asyncio.CancelledError:
            if not gone:
                raise  # this request itself was cancelled (a shutdown), not left by its client
        finally:
            handler.cancel()  # nothing when it is done; stops it when this request was cancelled
            watcher.cancel()
            with suppress(asyncio.CancelledError):
                await watcher
