"""API keys in the shared database, on SQLite and Postgres alike: two services on one database stand for two
replicas. A revocation reaches the other within the cache time, and the usage both count adds up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sentiment.core.domain import InvalidInput
from sentiment.services.api_keys import ApiKeyService
from tests.clocks import FakeClock


async def test_a_revocation_reaches_another_replica_within_the_cache_time(engine: AsyncEngine) -> None:
    clock = FakeClock()
    serving, admin = ApiKeyService(engine, clock=clock), ApiKeyService(engine)
    created = await admin.create("team", rate_per_minute=60)
    assert (await serving.verify(created.key)) == created.record
    await admin.revoke(str(created.record.id))
    clock.advance(4.9)
    cached = await serving.verify(created.key)
    assert cached is not None and cached.revoked_at is None  # still cached: at most 5 s
    clock.advance(0.2)
    refreshed = await serving.verify(created.key)
    assert refreshed is not None and refreshed.revoked_at is not None


async def test_the_replica_that_revokes_refuses_at_once(engine: AsyncEngine) -> None:
    keys = ApiKeyService(engine, clock=FakeClock())
    created = await keys.create("team")
    assert await keys.verify(created.key) is not None
    await keys.revoke(created.record.prefix)
    revoked = await keys.verify(created.key)
    assert revoked is not None and revoked.revoked_at is not None
    assert await keys.verify(created.key + "x") is None


async def test_usage_counted_by_two_replicas_adds_up_with_the_latest_use(engine: AsyncEngine) -> None:
    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    one = ApiKeyService(engine, wall_clock=lambda: start)
    two = ApiKeyService(engine, wall_clock=lambda: start + timedelta(minutes=5))
    record = (await one.create("team")).record
    for _ in range(2):
        one.admit(record, scores_text=True)
        one.count_texts(record, 10)
    two.admit(record, scores_text=False)
    two.count_texts(record, 1)
    await two.flush()
    await one.flush()
    [stored] = await one.list()
    assert (stored.requests, stored.texts) == (3, 21)
    assert stored.last_used_at == start + timedelta(minutes=5)  # the earlier flush does not turn it back


async def test_a_replica_writes_its_last_usage_when_it_closes(engine: AsyncEngine) -> None:
    keys = ApiKeyService(engine, flush_s=3600)
    keys.start()
    record = (await keys.create("team")).record
    keys.admit(record, scores_text=True)
    await keys.close()
    [stored] = await ApiKeyService(engine).list()
    assert (stored.requests, stored.texts) == (1, 0)


async def test_keys_are_revoked_by_id_or_listed_prefix_and_never_by_a_guess(engine: AsyncEngine) -> None:
    keys = ApiKeyService(engine)
    first, second = (await keys.create("a")).record, (await keys.create("b")).record
    assert await keys.revoke("sk_") is None
    assert await keys.revoke("00000000-0000-7000-8000-000000000000") is None
    by_prefix = await keys.revoke(first.prefix + "…")
    by_id = await keys.revoke(str(second.id))
    assert by_prefix is not None and by_prefix.id == first.id and by_prefix.revoked_at is not None
    assert by_id is not None and by_id.id == second.id
    again = await keys.revoke(str(second.id))
    assert again is not None and again.revoked_at == by_id.revoked_at  # the first revocation's time stays
    with pytest.raises(InvalidInput):
        await keys.revoke("  ")
