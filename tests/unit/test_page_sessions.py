"""The page session backend on an in-memory store: what it writes, and what it never brings back."""

from datetime import timedelta
from typing import Any

from litestar import Litestar, Request, get
from litestar.params import FromPath
from litestar.stores.memory import MemoryStore
from litestar.testing import AsyncTestClient

from sentiment.web.sessions import PageSessionConfig


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        self.writes += 1
        await super().set(key, value, expires_in)


def session_app(store: MemoryStore) -> Litestar:
    @get("/set/{user:str}")
    async def set_user(request: Request[Any, Any, Any], user: FromPath[str]) -> str:
        request.session["user"] = user
        return user

    @get("/read")
    async def read(request: Request[Any, Any, Any]) -> str:
        return str(request.session.get("user"))

    @get("/ended-meanwhile")
    async def ended_meanwhile(request: Request[Any, Any, Any]) -> str:
        """Loads the session, then sees it deleted (a logout on another replica) before answering."""
        await store.delete(request.cookies["session"])
        return str(request.session.get("user"))

    return Litestar(
        route_handlers=[set_user, read, ended_meanwhile],
        stores={"sessions": store},
        middleware=[PageSessionConfig(store="sessions", renew_on_access=True).middleware],
    )


async def test_a_request_in_flight_does_not_bring_back_a_session_ended_meanwhile() -> None:
    store = MemoryStore()
    async with AsyncTestClient(app=session_app(store)) as client:
        await client.get("/set/a")
        session_id = client.cookies["session"]
        assert await store.exists(session_id)
        assert (await client.get("/ended-meanwhile")).text == "a"  # it was loaded before the logout
    assert not await store.exists(session_id)


async def test_only_a_new_or_changed_session_is_written() -> None:
    store = CountingStore()
    async with AsyncTestClient(app=session_app(store)) as client:
        assert "set-cookie" not in (await client.get("/read")).headers  # no session: nothing stored
        await client.get("/set/a")
        assert store.writes == 1
        for _ in range(3):
            assert (await client.get("/read")).text == "a"
            await client.get("/set/a")  # the same value again
        assert store.writes == 1
        await client.get("/set/b")
        assert store.writes == 2 and (await client.get("/read")).text == "b"
