"""The server's own defences, on a real uvicorn server with a trivial app: request heads that never complete
(silent, dribbled, after a first answer) are cut off at the deadline while others are served, and connections
beyond the cap are answered 503 at once."""

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import uvicorn

from sentiment.web.server import GuardedH11Protocol, GuardedHttpToolsProtocol
from sentiment.web.settings import ServerLimits

REQUEST = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n"


async def hello(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=[GuardedHttpToolsProtocol, GuardedH11Protocol], ids=["httptools", "h11"])
def protocol(request: pytest.FixtureRequest) -> type:
    """Both of uvicorn's HTTP protocols: the service runs httptools, h11 where httptools is missing."""
    return request.param  # type: ignore[no-any-return]


@asynccontextmanager
async def serving(limits: ServerLimits, protocol: type) -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        hello,
        http=partial(protocol, limits=limits),  # type: ignore[arg-type]
        lifespan="off",
        log_config=None,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def answer_of(port: int, request: bytes = REQUEST) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(1000), 5)
    writer.close()
    return answer


async def test_a_head_that_never_completes_is_cut_off_while_others_are_served(protocol: type) -> None:
    async with serving(ServerLimits(header_timeout_s=0.4), protocol) as port:
        silent = await asyncio.open_connection("127.0.0.1", port)
        partial_head = await asyncio.open_connection("127.0.0.1", port)
        partial_head[1].write(b"GET / HTTP/1.1\r\nhost: te")
        started = time.monotonic()
        assert (await answer_of(port)).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < 0.3  # served at once meanwhile
        for reader, writer in (silent, partial_head):
            cut = await asyncio.wait_for(reader.read(1000), 5)
            assert cut.startswith(b"HTTP/1.1 408")
            assert await reader.read(1000) == b""  # and closed
            writer.close()
        assert 0.35 < time.monotonic() - started < 2


async def test_a_head_dribbled_a_byte_at_a_time_does_not_rearm_the_deadline(protocol: type) -> None:
    async with serving(ServerLimits(header_timeout_s=0.5), protocol) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def dribble() -> None:
            for byte in b"GET / HTTP/1.1\r\nx-slow: " + b"a" * 100:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)

        started = time.monotonic()
        dribbling = asyncio.create_task(dribble())
        answer = await asyncio.wait_for(reader.read(1000), 5)
        dribbling.cancel()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started < 1.5


async def test_the_next_head_on_a_kept_alive_connection_has_the_same_deadline(protocol: type) -> None:
    async with serving(ServerLimits(header_timeout_s=0.4), protocol) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        first = await asyncio.wait_for(reader.read(1000), 5)
        writer.write(b"GET / HTTP/1.1\r\nhost")
        second = await asyncio.wait_for(reader.read(1000), 5)
        writer.close()
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 408")


async def test_connections_beyond_the_cap_are_answered_503_at_once(protocol: type) -> None:
    async with serving(ServerLimits(header_timeout_s=30, max_connections=2), protocol) as port:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        await asyncio.sleep(0.05)
        refused = await answer_of(port)
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)
        served = await answer_of(port)
    assert refused.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in refused
    assert served.startswith(b"HTTP/1.1 200")
