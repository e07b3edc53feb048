"""The failsafe against a real server process: a failing or hanging model is answered by VADER within the call
timeout, the breaker opens with an alert, and heals by itself once the fault is gone."""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import SST2_MODEL, ServerProcess

ADMIN = {"authorization": "Bearer e2e-token"}
CALL_TIMEOUT_S = 1.0
OPEN_S = 2.0


@pytest.fixture
def server(tmp_path: Path, start_server: Callable[[dict[str, str]], ServerProcess]) -> ServerProcess:
    server = start_server(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'failsafe.db'}",
            "SENTIMENT_MODELS": f"minilm-sst2={SST2_MODEL}",
            "PRELOAD_MODEL": "minilm-sst2",
            "SENTIMENT_ADMIN_TOKEN": "e2e-token",
            "FAILSAFE_CALL_TIMEOUT_SECONDS": str(CALL_TIMEOUT_S),
            "FAILSAFE_CIRCUIT_BREAKER_TIMEOUT": str(OPEN_S),
        }
    )
    server.wait_healthy(probe="/ready")
    return server


def timed_requests(base_url: str, count: int) -> list[tuple[float, dict]]:
    """`count` singles and `count` batches, 4 at a time; each answer with its latency in seconds."""

    def one(i: int) -> tuple[float, dict]:
        started = time.perf_counter()
        if i % 2:
            response = httpx.post(
                f"{base_url}/predict/batch", json={"texts": [f"fine {i}", f"awful {i}"]}, timeout=10
            )
            assert response.status_code == 200
            body = response.json()["results"]
        else:
            response = httpx.post(f"{base_url}/predict", json={"text": f"a lovely day {i}"}, timeout=10)
            assert response.status_code == 200
            body = [response.json()]
        return time.perf_counter() - started, {
            "fallback": [r["fallback_used"] for r in body],
            "used": {r["model_used"] for r in body},
        }

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(2 * count)))


def breaker(base_url: str) -> dict:
    report = httpx.get(f"{base_url}/failsafe/status").json()
    return next(b for b in report["breakers"] if b["model"] == "minilm-sst2")


def active_alerts(base_url: str) -> list[str]:
    return [a["key"] for a in httpx.get(f"{base_url}/alerts", params={"state": "active"}).json()]


def set_fault(base_url: str, mode: str, hang_seconds: float = 30) -> None:
    response = httpx.post(
        f"{base_url}/failsafe/faults",
        json={"model": "minilm-sst2", "mode": mode, "hang_seconds": hang_seconds},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text


def wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_faulty_model_is_answered_by_vader_then_heals_by_itself(server: ServerProcess, mode: str) -> None:
    base = server.base_url
    set_fault(base, mode)
    answers = timed_requests(base, 6)
    latencies = sorted(latency for latency, _ in answers)
    print(
        f"{mode}: {len(answers)} requests, latency min {latencies[0] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms (call timeout {CALL_TIMEOUT_S * 1000:.0f} ms)"
    )
    assert all(all(a["fallback"]) and a["used"] == {"vader"} for _, a in answers)
    assert latencies[-1] < 3.0

    status = breaker(base)
    assert status["state"] == "open"
    assert status["opened_at"] is not None and status["next_trial_at"] is not None
    wait_for(lambda: "breaker_open:minilm-sst2" in active_alerts(base))

    set_fault(base, "none")
    time.sleep(OPEN_S)
    answer = httpx.post(f"{base}/predict", json={"text": "UCLA is amazing for AI research!"}).json()
    assert (answer["model_used"], answer["fallback_used"]) == ("minilm-sst2", False)
    assert breaker(base)["state"] == "closed"
    wait_for(lambda: "breaker_open:minilm-sst2" not in active_alerts(base))
    resolved = httpx.get(f"{base}/alerts", params={"state": "resolved"}).json()
    assert [a["key"] for a in resolved] == ["breaker_open:minilm-sst2"]


def test_hanging_call_is_answered_when_the_deadline_passes(server: ServerProcess) -> None:
    set_fault(server.base_url, "hang")
    started = time.perf_counter()
    answer = httpx.post(f"{server.base_url}/predict", json={"text": "hello"}, timeout=10).json()
    elapsed = time.perf_counter() - started
    print(f"hang: answered after {elapsed * 1000:.0f} ms with a {CALL_TIMEOUT_S * 1000:.0f} ms call timeout")
    assert answer["fallback_used"] is True
    assert CALL_TIMEOUT_S <= elapsed < CALL_TIMEOUT_S + 0.5
    assert breaker(server.base_url)["failures_in_window"] == 1
