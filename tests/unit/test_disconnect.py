"""The layer that cancels a scoring request whose client left: it ends such a request quietly, and never
swallows a cancellation that came from elsewhere (a shutdown) at the same moment."""

import asyncio
from collections.abc import Callable

import pytest

from sentiment.web.disconnect import CancelWhenClientGoes

SCOPE = {"type": "http", "path": "/predict", "method": "POST"}


def client_leaves(also: Callable[[], None] = lambda: None) -> Callable[[], object]:
    """The server's messages: the body, then the client's disconnect (`also` runs as it is reported)."""
    messages = iter(
        [{"type": "http.request", "body": b"{}", "more_body": False}, {"type": "http.disconnect"}]
    )

    async def receive() -> object:
        message = next(messages)
        if message["type"] == "http.disconnect":
            also()
        return message

    return receive


async def scoring_forever(scope: object, receive: Callable[[], object], send: object) -> None:
    await receive()  # reads its body
    await asyncio.sleep(10)


async def nothing_sent(message: object) -> None:
    raise AssertionError("nothing is answered to a client that left")


async def test_a_request_whose_client_left_is_cancelled_and_ends_quietly() -> None:
    layer = CancelWhenClientGoes(scoring_forever)  # type: ignore[arg-type]
    request = asyncio.create_task(layer(SCOPE, client_leaves(), nothing_sent))  # type: ignore[arg-type]
    await asyncio.wait_for(request, 2)
    assert request.done() and not request.cancelled() and request.cancelling() == 0


async def test_a_shutdown_at_the_moment_the_client_leaves_still_cancels_the_request() -> None:
    layer = CancelWhenClientGoes(scoring_forever)  # type: ignore[arg-type]
    tasks: list[asyncio.Task[None]] = []

    def shut_down() -> None:  # the server's own cancellation, as the client leaves
        tasks[0].cancel()

    request = asyncio.create_task(layer(SCOPE, client_leaves(also=shut_down), nothing_sent))  # type: ignore[arg-type]
    tasks.append(request)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(request, 2)
