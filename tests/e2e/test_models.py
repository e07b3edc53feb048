"""Model management against real server processes: hot swap under load, memory given back on unload, a remote
model server that goes away and comes back, and two replicas following one choice through Postgres."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import SST2_MODEL, TWEETS_MODEL, ServerProcess
from tests.hubstub import HubStub
from tests.teistub import TeiStub

pytestmark = pytest.mark.slow
ADMIN = {"authorization": "Bearer adm"}
BOTH_MODELS = f"minilm-sst2={SST2_MODEL},minilm-tweets3={TWEETS_MODEL}"


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SENTIMENT_ADMIN_TOKEN": "adm",
        "SENTIMENT_MODELS": BOTH_MODELS,
        **extra,
    }


def wait_until(condition: Callable[[], bool], timeout_s: float = 60, what: str = "condition") -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"{what} not reached in {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def status_of(server: ServerProcess, key: str) -> str:
    return httpx.get(f"{server.base_url}/models/{key}").json()["model"]["status"]


def rss_anon_kib(pid: int) -> int:
    line = next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("RssAnon:"))
    return int(line.split()[1])


async def test_default_switched_ten_times_under_16_clients_drops_nothing(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(
        base_env(f"sqlite+aiosqlite:///{tmp_path / 'swap.db'}", PRELOAD_MODEL="minilm-sst2")
    )
    httpx.post(f"{server.base_url}/models/minilm-tweets3/load", headers=ADMIN)
    wait_until(lambda: status_of(server, "minilm-sst2") == status_of(server, "minilm-tweets3") == "loaded")
    switches: list[tuple[float, float, str, str]] = []  # sent, returned, previous, new
    answers: list[tuple[float, float, int, str, bool]] = []
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:

        async def user(n: int) -> None:
            i = 0
            while not done.is_set():
                started = time.monotonic()
                response = await client.post("/predict", json={"text": f"client {n} says hello {i}"})
                body = response.json() if response.status_code == 200 else {}
                answers.append(
                    (
                        started,
                        time.monotonic(),
                        response.status_code,
                        body.get("model_used", ""),
                        body.get("fallback_used", True),
                    )
                )
                i += 1

        async def operator() -> None:
            current = "minilm-sst2"
            for k in range(10):
                new = "minilm-tweets3" if k % 2 == 0 else "minilm-sst2"
                sent = time.monotonic()
                response = await client.put("/models/default", json={"model": new}, headers=ADMIN)
                assert response.json()["default_model"] == new
                switches.append((sent, time.monotonic(), current, new))
                current = new
                await asyncio.sleep(0.3)
            done.set()

        await asyncio.gather(operator(), *(user(n) for n in range(16)))

    def defaults_during(start: float, end: float) -> set[str]:
        settled = [s for s in switches if s[1] <= start]
        allowed = {settled[-1][3] if settled else "minilm-sst2"}
        for sent, returned, previous, new in switches:
            if sent <= end and returned >= start:
                allowed |= {previous, new}
        return allowed

    assert len(answers) > 100
    assert all(status == 200 and not fallback for _, _, status, _, fallback in answers)
    wrong = [a for a in answers if a[3] not in defaults_during(a[0], a[1])]
    assert wrong == []
    assert {a[3] for a in answers} == {"minilm-sst2", "minilm-tweets3"}
    print(
        f"hot swap: {len(answers)} answers by 16 clients over 10 switches, 0 errors, 0 from a stale default"
    )


def test_unloading_gives_back_most_of_the_memory_loading_took(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    # The default model is loaded first, so torch's own one-time cost is paid before the measurement starts.
    server = start_server(base_env(f"sqlite+aiosqlite:///{tmp_path / 'mem.db'}", PRELOAD_MODEL="minilm-sst2"))
    pid = server.process.pid
    wait_until(lambda: status_of(server, "minilm-sst2") == "loaded")
    for i in range(20):
        httpx.post(f"{server.base_url}/predict/batch", json={"texts": [f"warm {i} {j}" for j in range(32)]})
    before = rss_anon_kib(pid)
    httpx.post(f"{server.base_url}/models/minilm-tweets3/load", headers=ADMIN)
    wait_until(lambda: status_of(server, "minilm-tweets3") == "loaded")
    for i in range(20):
        httpx.post(
            f"{server.base_url}/predict/batch",
            json={"texts": [f"text {i} {j}" for j in range(32)], "model": "minilm-tweets3"},
        )
    loaded = rss_anon_kib(pid)
    assert httpx.post(f"{server.base_url}/models/minilm-tweets3/unload", headers=ADMIN).status_code == 200
    after = rss_anon_kib(pid)
    taken, given_back = loaded - before, loaded - after
    print(
        f"RssAnon: before {before} KiB, loaded {loaded} KiB (+{taken}), after unload {after} KiB "
        f"(-{given_back}, {given_back / taken:.0%} of what loading took)"
    )
    assert given_back >= 0.8 * taken


def test_remote_model_server_going_away_falls_back_to_vader_and_comes_back(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    stub = TeiStub().start()
    server = start_server(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'remote.db'}",
            "MODEL_SERVICE_URL": stub.url,
            "PRELOAD_MODEL": "remote",
            "FAILSAFE_CALL_TIMEOUT_SECONDS": "1",
            "FAILSAFE_CIRCUIT_BREAKER_TIMEOUT": "1",
        }
    )
    wait_until(lambda: status_of(server, "remote") == "loaded")

    asked = iter(range(1_000_000))

    def ask() -> dict:
        # A new text each time: repeated ones would be answered from the result cache.
        text = f"what a wonderful day number {next(asked)}"
        response = httpx.post(f"{server.base_url}/predict", json={"text": text}, timeout=10)
        assert response.status_code == 200
        return response.json()

    first = ask()
    assert (first["model_used"], first["fallback_used"], first["sentiment"]) == ("remote", False, "positive")
    assert set(first["scores"]) == {"negative", "neutral", "positive"}
    stub.stop()
    during = [ask() for _ in range(5)]
    assert all((a["model_used"], a["fallback_used"]) == ("vader", True) for a in during), during
    breaker = next(
        b
        for b in httpx.get(f"{server.base_url}/failsafe/status").json()["breakers"]
        if b["model"] == "remote"
    )
    assert breaker["state"] == "open"
    stub.start()  # same port
    back = wait_until(lambda: ask()["model_used"] == "remote", timeout_s=10, what="remote answering again")
    print(f"remote model back {back:.2f} s after its server returned")
    stub.stop()


@pytest.mark.postgres
def test_two_replicas_on_one_postgres_follow_a_default_chosen_on_either(
    postgres_url: str, start_server: Callable[..., ServerProcess]
) -> None:
    env = base_env(
        postgres_url,
        PRELOAD_MODEL="minilm-sst2",
        SENTIMENT_AUTO_MIGRATE="true",
        SENTIMENT_SYNC_INTERVAL_SECONDS="1",
    )
    first = start_server(env)
    second = start_server(env)
    for server in (first, second):
        wait_until(lambda server=server: status_of(server, "minilm-sst2") == "loaded")
    response = httpx.put(f"{first.base_url}/models/default", json={"model": "minilm-tweets3"}, headers=ADMIN)
    assert response.status_code == 200

    def second_uses_new_default() -> bool:
        answer = httpx.post(f"{second.base_url}/predict", json={"text": "hello"}).json()
        return answer["model_used"] == "minilm-tweets3"

    took = wait_until(second_uses_new_default, timeout_s=10, what="the other replica following")
    print(f"second replica answered with the new default {took:.2f} s after PUT /models/default on the first")


def test_download_from_a_local_hub_stand_in_reports_progress_then_loads_and_predicts(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    with HubStub({"org/minilm": SST2_MODEL}, bytes_per_s=15_000_000) as hub:
        server = start_server(
            {
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'dl.db'}",
                "SENTIMENT_ADMIN_TOKEN": "adm",
                "SENTIMENT_MODELS": "fetched=org/minilm",
                "HF_ENDPOINT": hub.endpoint,
                "HF_HOME": str(tmp_path / "hf-home"),
            }
        )
        assert status_of(server, "fetched") == "not downloaded"
        response = httpx.post(f"{server.base_url}/models/download", json={"model": "fetched"}, headers=ADMIN)
        assert response.status_code == 202
        seen: list[float] = []

        def finished() -> bool:
            download = httpx.get(f"{server.base_url}/models/fetched").json()["model"]["download"]
            if download["percent"] is not None:
                seen.append(download["percent"])
            return download["state"] != "downloading"

        wait_until(finished, timeout_s=60, what="download end")
        download = httpx.get(f"{server.base_url}/models/fetched").json()["model"]["download"]
    print(f"download progress seen: {[round(p) for p in seen]}")
    assert download["state"] == "done" and download["percent"] == 100.0
    assert download["bytes_done"] == download["bytes_total"] > 40_000_000
    assert len({round(p) for p in seen if p < 100}) >= 2, "progress was never seen mid-way"
    assert seen == sorted(seen)
    assert status_of(server, "fetched") == "available"
    assert httpx.post(f"{server.base_url}/models/fetched/load", headers=ADMIN).status_code == 202
    wait_until(lambda: status_of(server, "fetched") == "loaded")
    answer = httpx.post(
        f"{server.base_url}/predict", json={"text": "a wonderful, moving film", "model": "fetched"}
    ).json()
    assert (answer["model_used"], answer["sentiment"], answer["fallback_used"]) == (
        "fetched",
        "positive",
        False,
    )
