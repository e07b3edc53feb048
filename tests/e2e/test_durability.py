"""A prediction answered 200 is never lost: not by `kill -9` under load, not by a SIGTERM while the database
hangs. The real server process, its journal in its working folder, restarted as an operator would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from sentiment.storage.database import create_engine, head_revision
from sentiment.storage.tables import PredictionRow
from tests.conftest import SST2_MODEL, ServerProcess

pytestmark = pytest.mark.slow


async def load(base_url: str, seconds: float, clients: int = 16) -> tuple[set[str], list[int]]:
    """Singles on the default model (minilm-sst2) and batches on VADER from `clients` clients until `seconds`
    have passed or the server goes: the ids of every prediction answered 200, and every status seen."""
    answered: set[str] = set()
    statuses: list[int] = []
    stop_at = time.monotonic() + seconds

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            i = 0
            while time.monotonic() < stop_at:
                i += 1
                try:
                    if n % 2:
                        response = await http.post("/predict", json={"text": f"client {n} text {i} was fine"})
                        ids = [response.json()["id"]] if response.status_code == 200 else []
                    else:
                        texts = [f"batch {n}-{i}-{j} was dreadful" for j in range(16)]
                        response = await http.post("/predict/batch", json={"texts": texts, "model": "vader"})
                        ok = response.status_code == 200
                        ids = [r["id"] for r in response.json()["results"]] if ok else []
                except httpx.TransportError:
                    return  # the server is gone: what it answered before is what counts
                statuses.append(response.status_code)
                answered.update(ids)

    await asyncio.gather(*(client(n) for n in range(clients)))
    return answered, statuses


async def stored_ids(database_url: str) -> set[str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return {str(i) for i in (await connection.scalars(select(PredictionRow.id))).all()}
    finally:
        await engine.dispose()


def wait_written(server: ServerProcess, timeout_s: float = 60.0) -> dict[str, object]:
    """Until the journal is empty: all the process (and those before it) answered is in the database."""
    deadline = time.monotonic() + timeout_s
    while (health := httpx.get(f"{server.base_url}/db/health", timeout=5).json())["pending_writes"]:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    return health


def service_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SENTIMENT_AUTO_MIGRATE": "true",
        "SENTIMENT_MODELS": f"minilm-sst2={SST2_MODEL}",
        "PRELOAD_MODEL": "minilm-sst2",
    }


def wait_ready(server: ServerProcess, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while httpx.get(f"{server.base_url}/ready", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, httpx.get(f"{server.base_url}/ready").text
        time.sleep(0.2)


async def test_kill_9_under_load_loses_no_answered_prediction(
    database_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    env = service_env(database_url)
    answered: set[str] = set()
    for kill in range(3):
        server = start_server(env)
        wait_ready(server)

        async def kill_soon(server: ServerProcess = server) -> None:
            await asyncio.sleep(3)
            server.process.kill()

        (ids, statuses), _ = await asyncio.gather(load(server.base_url, 30), kill_soon())
        await asyncio.to_thread(server.process.wait, 10)
        server.stop()
        stored = await stored_ids(database_url)
        print(
            f"kill {kill + 1}: {len(ids):,} answered 200 in 3 s, {len(ids - stored):,} of them not yet in "
            f"the database at the kill; statuses {sorted(set(statuses))}"
        )
        assert ids and set(statuses) <= {200, 503}
        answered |= ids
    server = start_server(env)  # adopts the journals of the killed processes and writes their rows
    health = wait_written(server)
    stored = await stored_ids(database_url)
    print(f"after 3 kills: {len(answered):,} answered, {len(stored):,} stored, dropped {health['dropped']}")
    assert answered <= stored
    assert health["dropped"] == 0


@contextmanager
def hung(pids: list[int]) -> Iterator[None]:
    """The database's processes stopped (SIGSTOP): connections stay open and nothing answers."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def postgres_processes(postmaster: int) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False)
    return [postmaster, *map(int, children.stdout.split())]


@pytest.mark.postgres
async def test_sigterm_with_the_database_hanging_exits_in_bound_and_keeps_every_answered_row(
    own_postgres,  # type: ignore[no-untyped-def]
    start_server: Callable[..., ServerProcess],
) -> None:
    shutdown_s = 6.0
    env = {**service_env(own_postgres.url), "SENTIMENT_SHUTDOWN_SECONDS": str(shutdown_s)}
    server = start_server(env)
    wait_ready(server)
    postmaster = int((own_postgres.data / "postmaster.pid").read_text().split()[0])
    with hung(postgres_processes(postmaster)):

        async def terminate() -> float:
            await asyncio.sleep(3)
            server.process.send_signal(signal.SIGTERM)
            return time.monotonic()

        (answered, statuses), sent = await asyncio.gather(load(server.base_url, 30), terminate())
        await asyncio.to_thread(server.process.wait, 60)
        took = time.monotonic() - sent
        server.stop()
    print(
        f"SIGTERM with the database hanging: exited in {took:.1f} s (bound {shutdown_s:g} s), "
        f"{len(answered):,} answered, statuses {sorted(set(statuses))}"
    )
    assert answered and set(statuses) <= {200, 503}
    assert took < shutdown_s + 2  # the interpreter's own exit on top
    server = start_server(env)
    wait_written(server)
    assert answered <= await stored_ids(own_postgres.url)


@pytest.mark.postgres
async def test_two_replicas_starting_together_on_a_new_database_migrate_once_and_both_store_everything(
    postgres_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": postgres_url, "SENTIMENT_AUTO_MIGRATE": "true", "PRELOAD_MODEL": "vader"}
    replicas = [ServerProcess(env, tmp_path / f"replica-{n}.log") for n in range(2)]  # started at once
    try:
        for replica in replicas:
            await asyncio.to_thread(replica.wait_healthy)
            await asyncio.to_thread(wait_ready, replica)
        answered = set()
        for replica in replicas:
            ids, statuses = await load(replica.base_url, 2, clients=4)
            assert ids and set(statuses) == {200}
            answered |= ids
        for replica in replicas:
            await asyncio.to_thread(wait_written, replica)
    finally:
        for replica in replicas:
            replica.stop()
    engine = create_engine(postgres_url)
    async with engine.connect() as connection:
        revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    await engine.dispose()
    assert revision == head_revision()
    assert await stored_ids(postgres_url) == answered
