"""The database store of page sessions, on SQLite and Postgres alike, driven by a fake clock."""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.sessions import PURGE_INTERVAL, DatabaseStore
from sentiment.storage.tables import SessionRow


class FakeWallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture
async def store(database_url: str, clock: FakeWallClock) -> AsyncIterator[DatabaseStore]:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    store = DatabaseStore(clock)
    store.attach(engine)
    yield store
    await engine.dispose()


async def stored_hashes(store: DatabaseStore) -> set[str]:
    async with store.engine.connect() as connection:
        return set((await connection.scalars(select(SessionRow.id_hash))).all())


async def test_a_value_comes_back_under_its_key_which_is_stored_only_as_a_digest(
    store: DatabaseStore,
) -> None:
    await store.set("the-id", '{"csrf": "x"}', expires_in=60)
    await store.set("other", b"\x00bytes", expires_in=timedelta(minutes=1))
    assert await store.get("the-id") == b'{"csrf": "x"}'
    assert await store.get("other") == b"\x00bytes"
    assert await store.get("unknown") is None
    assert await stored_hashes(store) == {
        hashlib.sha256(b"the-id").hexdigest(),
        hashlib.sha256(b"other").hexdigest(),
    }


async def test_setting_a_key_again_replaces_its_value_and_expiry(
    store: DatabaseStore, clock: FakeWallClock
) -> None:
    await store.set("k", b"one", expires_in=10)
    await store.set("k", b"two", expires_in=100)
    assert await store.get("k") == b"two"
    assert await store.expires_in("k") == 100


async def test_an_expired_value_is_gone_and_its_row_deleted_on_read(
    store: DatabaseStore, clock: FakeWallClock
) -> None:
    await store.set("k", b"v", expires_in=60)
    clock.advance(seconds=59)
    assert await store.exists("k")
    clock.advance(seconds=1)
    assert await store.get("k") is None
    assert await store.expires_in("k") is None
    assert await stored_hashes(store) == set()


async def test_renewing_on_read_moves_the_expiry_to_that_long_from_now(
    store: DatabaseStore, clock: FakeWallClock
) -> None:
    await store.set("k", b"v", expires_in=60)
    for _ in range(5):  # used every 50 s: it outlives its first 60 s
        clock.advance(seconds=50)
        assert await store.get("k", renew_for=60) == b"v"
    assert await store.expires_in("k") == 60
    clock.advance(seconds=61)
    assert await store.get("k", renew_for=60) is None


async def test_a_value_set_without_expiry_stays_and_is_not_renewed(
    store: DatabaseStore, clock: FakeWallClock
) -> None:
    await store.set("k", b"v")
    clock.advance(days=10_000)
    assert await store.get("k", renew_for=60) == b"v"
    assert await store.expires_in("k") is None


async def test_delete_and_delete_all(store: DatabaseStore) -> None:
    for key in ("a", "b", "c"):
        await store.set(key, b"v", expires_in=60)
    await store.delete("a")
    await store.delete("never-set")
    assert [await store.exists(key) for key in ("a", "b", "c")] == [False, True, True]
    await store.delete_all()
    assert await stored_hashes(store) == set()


async def test_expired_rows_nobody_reads_again_are_purged_by_a_later_write(
    store: DatabaseStore, clock: FakeWallClock
) -> None:
    await store.set("left-behind", b"v", expires_in=60)
    clock.advance(seconds=PURGE_INTERVAL.total_seconds())
    await store.set("new", b"v", expires_in=60)
    assert await stored_hashes(store) == {hashlib.sha256(b"new").hexdigest()}


async def test_a_row_written_by_another_replica_is_read(store: DatabaseStore, clock: FakeWallClock) -> None:
    async with store.engine.begin() as connection:
        await connection.execute(
            insert(SessionRow).values(
                id_hash=hashlib.sha256(b"k").hexdigest(), data=b"v", expires_at=clock.now + timedelta(hours=1)
            )
        )
    assert await store.get("k") == b"v"
    assert await store.expires_in("k") == 3600


async def test_the_store_refuses_to_work_before_an_engine_is_attached() -> None:
    with pytest.raises(RuntimeError, match="no database engine attached"):
        await DatabaseStore().get("k")
