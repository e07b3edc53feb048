"""Nothing lost: a Postgres outage under continuous load, and a SIGTERM in the middle of load."""

import asyncio
import signal
import time
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow


async def load(base_url: str, seconds: float, clients: int = 8) -> tuple[set[str], list[int]]:
    """Singles and batches for `seconds`: the ids of every answered prediction, and every status seen."""
    answered: set[str] = set()
    statuses: list[int] = []
    stop_at = time.monotonic() + seconds

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                try:
                    if i % 4:
                        response = await http.post("/predict", json={"text": f"client {n} text {i} is fine"})
                        ids = [response.json()["id"]] if response.status_code == 200 else []
                    else:
                        response = await http.post(
                            "/predict/batch", json={"texts": [f"b{n}-{i}-{j}" for j in range(5)]}
                        )
                        ids = (
                            [r["id"] for r in response.json()["results"]]
                            if response.status_code == 200
                            else []
                        )
                except httpx.TransportError:
                    statuses.append(0)  # the server stopped taking requests
                    return
                statuses.append(response.status_code)
                answered.update(ids)
                await asyncio.sleep(0.01)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return answered, statuses


async def stored_ids(url: str) -> set[str]:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return {str(row["id"]) for row in await connection.fetch("SELECT id FROM predictions")}
    finally:
        await connection.close()


async def test_thirty_second_postgres_outage_under_load_loses_nothing_and_raises_then_resolves_an_alert(
    own_postgres,
    start_server: Callable[..., ServerProcess],  # type: ignore[no-untyped-def]
) -> None:
    server = start_server(
        {
            "DATABASE_URL": own_postgres.url,
            "SENTIMENT_AUTO_MIGRATE": "true",
            "SENTIMENT_ALERT_CHECK_SECONDS": "1",
        }
    )
    base = server.base_url

    async def outage() -> tuple[float, float]:
        await asyncio.sleep(5)
        await asyncio.to_thread(own_postgres.stop)
        down = time.monotonic()
        await asyncio.sleep(5)
        during = httpx.get(f"{base}/db/health").json()
        assert during["reachable"] is False and during["pending_writes"] > 0
        await asyncio.sleep(25)
        await asyncio.to_thread(own_postgres.start)
        return down, time.monotonic()

    (answered, statuses), (down, up) = await asyncio.gather(load(base, 45), outage())
    print(
        f"outage of {up - down:.1f} s; {len(answered)} predictions answered, statuses {sorted(set(statuses))}"
    )
    assert set(statuses) == {200}
    deadline = time.monotonic() + 30
    while (health := httpx.get(f"{base}/db/health").json())["pending_writes"] or not health["reachable"]:
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.5)
    stored = await stored_ids(own_postgres.url)
    assert answered <= stored and len(stored) == len(answered)
    assert health["dropped"] == 0
    while not [
        a
        for a in httpx.get(f"{base}/alerts", params={"state": "resolved"}).json()
        if a["key"] == "database_down"
    ]:
        assert time.monotonic() < deadline + 30, "the database alert was not resolved"
        await asyncio.sleep(0.5)
    alert = next(a for a in httpx.get(f"{base}/alerts").json() if a["key"] == "database_down")
    print(f"database_down raised {alert['raised_at']}, resolved {alert['resolved_at']}")
    assert alert["raised_at"] < alert["resolved_at"]


async def test_sigterm_under_load_stores_every_answered_prediction(
    postgres_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server({"DATABASE_URL": postgres_url, "SENTIMENT_AUTO_MIGRATE": "true"})

    async def terminate() -> None:
        await asyncio.sleep(3)
        server.process.send_signal(signal.SIGTERM)

    (answered, statuses), _ = await asyncio.gather(load(server.base_url, 8, clients=16), terminate())
    await asyncio.to_thread(server.process.wait, 60)
    stored = await stored_ids(postgres_url)
    print(
        f"SIGTERM under load: {len(answered)} answered, {len(stored)} stored, "
        f"statuses {sorted(set(statuses))}"
    )
    assert answered and answered <= stored
    assert 500 not in statuses and 503 not in statuses
