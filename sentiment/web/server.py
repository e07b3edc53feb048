"""The HTTP server's own defences, on uvicorn's httptools (C) protocol, or its pure-Python h11 one where
httptools is not installed. uvicorn times out only idle keep-alive
connections, and any byte re-arms that: a client sending its request head a byte at a time ("slowloris"), or
opening a connection and sending nothing, holds a connection forever, and enough of them hold them all. Here a
request head must be complete within `header_timeout_s` of the connection opening or of the previous answer
(else 408 and the connection is closed), and a connection beyond `max_connections` is answered 503 and closed
at once instead of queuing behind the rest."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sentiment.web.settings import ServerLimits


def _plain_response(status: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", "content-type: text/plain; charset=utf-8", *extra]
    head += [f"content-length: {len(body)}", "connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


HEAD_TOO_SLOW = _plain_response("408 Request Timeout", b"the request head did not arrive in time\n")
TOO_MANY_CONNECTIONS = _plain_response(
    "503 Service Unavailable", b"too many open connections; retry in a moment\n", "retry-after: 1"
)


class HeadDeadline:
    """A deadline on request heads and a cap on open connections, for either of uvicorn's HTTP protocols (both
    keep the current request's `cycle`, the server's `connections`, their `loop` and `transport`)."""

    cycle: Any
    connections: set[Any]
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def __init__(self, *args: Any, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]  # the protocol's, after this in the MRO
        if len(self.connections) > self._limits.max_connections:
            self.transport.write(TOO_MANY_CONNECTIONS)
            self.transport.close()
            return
        self._await_head()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_head():
            self._await_head()  # bytes of a new head after an answer: uvicorn's keep-alive timer is off now
        super().data_received(data)  # type: ignore[misc]
        if not self._waiting_for_head():
            self._head_arrived()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)  # type: ignore[misc]

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _await_head(self) -> None:
        """Start the head's deadline, unless it is already running."""
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self._limits.header_timeout_s, self._head_too_slow)

    def _head_arrived(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.write(HEAD_TOO_SLOW)
            self.transport.close()


class GuardedHttpToolsProtocol(HeadDeadline, HttpToolsProtocol):
    """uvicorn's httptools protocol, guarded."""


class GuardedH11Protocol(HeadDeadline, H11Protocol):
    """uvicorn's h11 protocol, guarded."""
