"""Work for clients that are gone is dropped: a prediction whose client disconnects is cancelled, and the
texts it still had queued are skipped by the model's queue instead of being scored for nobody.

Litestar does not cancel a handler when its client goes; the server says so only to whoever awaits `receive`
once the body is read. For the paths that score text, a watcher does, and cancels the request when the server
reports the disconnect before the response was sent. It starts only for a request still running
`WATCH_AFTER_S` after its body was read: most answers are sent sooner, and a task per request costs more than
their scoring.
"""

from __future__ import annotations

import asyncio

import structlog
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

log = structlog.get_logger(__name__)

SCORING_PATHS = frozenset({"/predict", "/predict/batch", "/ui/analyze"})
WATCH_AFTER_S = 0.05


class CancelWhenClientGoes:
    """A plain ASGI layer: the request runs in its own task, and only a scoring request that is still running
    `WATCH_AFTER_S` after its body was read gets a watcher (one task)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SCORING_PATHS or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        request = asyncio.current_task()
        assert request is not None  # an ASGI server runs each request in a task
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
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

        def start_watching() -> None:
            nonlocal watcher
            watcher = loop.create_task(watch())

        async def receiving() -> ReceiveMessage:
            nonlocal timer
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False) and timer is None:
                timer = loop.call_later(WATCH_AFTER_S, start_watching)
            return message

        async def sending(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                responded = True
            await send(message)

        try:
            await self._app(scope, receiving, sending)
        except asyncio.CancelledError:
            # The cancellation was this layer's (the request ends here, answered by nobody) unless the request
            # itself was cancelled too (a shutdown): that one goes on.
            if not gone or request.uncancel() > 0:
                raise
        finally:
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()
                await asyncio.wait([watcher])  # unlike awaiting it, a cancellation of this request goes on
