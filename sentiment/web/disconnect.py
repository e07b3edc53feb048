"""Work for clients that are gone is dropped: a prediction whose client disconnects is cancelled, and the
texts it still had queued are skipped by the model's queue instead of being scored for nobody.

Litestar does not cancel a handler when its client goes; the server says so only to whoever awaits `receive`
once the body is read. For the paths that score text, a watcher does, from the moment the body is read, and
cancels the request when the server reports the disconnect before the response was sent.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

log = structlog.get_logger(__name__)

SCORING_PATHS = frozenset({"/predict", "/predict/batch", "/ui/analyze"})


class CancelWhenClientGoes:
    """A plain ASGI layer: the request runs in its own task, and only a scoring request gets a watcher (one
    task, started once its body is read)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SCORING_PATHS or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        request = asyncio.current_task()
        assert request is not None  # an ASGI server runs each request in a task
        watcher: asyncio.Task[None] | None = None
        responded = gone = False

        async def watch() -> None:
            nonlocal gone
            # The body is read: the server's next message is the client's disconnect (or, once the response
            # is complete, the end of the exchange).
            message = await receive()
            if message["type"] == "http.disconnect" and not responded:
                gone = True
                log.info("client_gone", path=scope["path"])
                request.cancel()

        async def receiving() -> ReceiveMessage:
            nonlocal watcher
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False) and watcher is None:
                watcher = asyncio.create_task(watch())
            return message

        async def sending(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                responded = True
            await send(message)

        try:
            await self._app(scope, receiving, sending)
        except asyncio.CancelledError:
            if not gone:
                raise  # this request itself was cancelled (a shutdown), not left by its client
            request.uncancel()  # the cancellation was this layer's: the request ends here, answered by nobody
        finally:
            if watcher is not None:
                watcher.cancel()
                with suppress(asyncio.CancelledError):
                    await watcher
