"""The real service process: start-up, answers, and a clean SIGTERM that writes every pending row."""

import asyncio
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import SST2_MODEL, ServerProcess


async def test_sigterm_after_load_writes_every_answered_prediction(
    tmp_path: Path, start_server: Callable[[dict[str, str]], ServerProcess]
) -> None:
    database = tmp_path / "served.db"
    # A long write interval keeps rows pending, so the shutdown itself must write them.
    server = start_server(
        {"DATABASE_URL": f"sqlite+aiosqlite:///{database}", "SENTIMENT_WRITE_INTERVAL_SECONDS": "30"}
    )
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        singles = [client.post("/predict", json={"text": f"message {i} is lovely"}) for i in range(40)]
        batches = [
            client.post("/predict/batch", json={"texts": [f"batch {i} item {j}" for j in range(8)]})
            for i in range(5)
        ]
        responses = await asyncio.gather(*singles, *batches)
    assert all(r.status_code == 200 for r in responses)
    answered = 40 + 5 * 8
    # uvicorn re-raises the signal once its graceful shutdown is done, so the exit status says SIGTERM.
    assert server.stop(signal.SIGTERM) == -signal.SIGTERM
    assert "Application shutdown complete" in server.log_path.read_text()
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM predictions").fetchone()[0] == answered


def test_configured_model_becomes_ready_and_answers(
    tmp_path: Path, start_server: Callable[[dict[str, str]], ServerProcess]
) -> None:
    server = start_server(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 's.db'}",
            "SENTIMENT_MODELS": f"minilm-sst2={SST2_MODEL}",
            "PRELOAD_MODEL": "minilm-sst2",
        }
    )
    for _ in range(300):
        if httpx.get(f"{server.base_url}/ready").status_code == 200:
            break
        asyncio.run(asyncio.sleep(0.1))
    answer = httpx.post(
        f"{server.base_url}/predict", json={"text": "UCLA is amazing for AI research!"}
    ).json()
    assert (answer["sentiment"], answer["model_used"], answer["fallback_used"]) == (
        "positive",
        "minilm-sst2",
        False,
    )


def test_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "serve"],
        check=False,
        env={"PRELOAD_MODEL": "nope", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        (
            "sentiment: configuration error: PRELOAD_MODEL='nope' is not a known model; "
            "known models: distilbert-sst2, twitter-roberta, bert-multilingual, vader"
        )
    ]


def test_a_journal_folder_that_cannot_be_written_stops_start_up_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    journal = blocked / "journal"
    result = subprocess.run(
        [sys.executable, "-m", "sentiment", "serve"],
        check=False,
        env={"SENTIMENT_JOURNAL_DIR": str(journal), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    expected = f"SENTIMENT_JOURNAL_DIR='{journal}' cannot be written: Not a directory"
    assert result.stderr.strip().splitlines() == [f"sentiment: configuration error: {expected}"]


async def test_full_queue_answers_503_with_retry_after_at_once(
    tmp_path: Path, start_server: Callable[[dict[str, str]], ServerProcess]
) -> None:
    server = start_server(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'q.db'}",
            "SENTIMENT_MODELS": f"minilm-sst2={SST2_MODEL}",
            "PRELOAD_MODEL": "minilm-sst2",
            "SENTIMENT_ADMIN_TOKEN": "t",
            "SENTIMENT_QUEUE_SIZE": "2",
            "SENTIMENT_BATCH_SIZE": "1",
        }
    )
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        while (await client.get("/ready")).status_code != 200:
            await asyncio.sleep(0.1)
        # The model hangs on its first call: that text leaves the queue, the next two fill it.
        await client.post(
            "/failsafe/faults",
            json={"model": "minilm-sst2", "mode": "hang", "hang_seconds": 5},
            headers={"authorization": "Bearer t"},
        )
        held = [asyncio.create_task(client.post("/predict", json={"text": f"held {i}"})) for i in range(3)]
        await asyncio.sleep(0.5)
        refused = await client.post("/predict", json={"text": "one too many"})
        await client.post(
            "/failsafe/faults",
            json={"model": "minilm-sst2", "mode": "none"},
            headers={"authorization": "Bearer t"},
        )
        assert all(r.status_code == 200 for r in await asyncio.gather(*held))
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.elapsed.total_seconds() < 0.5
    assert "at capacity" in refused.json()["detail"]


async def test_clients_that_leave_mid_batch_leave_no_queued_work_behind(
    tmp_path: Path, start_server: Callable[[dict[str, str]], ServerProcess]
) -> None:
    """16 clients send batches of long texts (minutes of VADER's work in all) and leave after a second: the
    texts they left queued are dropped, and the next caller is answered at once."""
    server = start_server({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'left.db'}"})
    # About 25 ms of VADER each, so no client's batch of 128 can finish within its one second.
    texts = [f"{i} " + "😀" * 5000 for i in range(128)]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=1.0) as client:
        leaving = [client.post("/predict/batch", json={"texts": texts}) for _ in range(16)]
        outcomes = await asyncio.gather(*leaving, return_exceptions=True)
    assert all(isinstance(outcome, httpx.TimeoutException) for outcome in outcomes)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        for _ in range(100):
            depth = (await client.get("/status")).json()["queue_depths"]["vader"]
            if depth == 0:
                break
            await asyncio.sleep(0.1)
        assert depth == 0  # without the drop, 8,192 long texts would still be queued here
        answer = await client.post("/predict", json={"text": "the next caller", "model": "vader"})
    assert answer.status_code == 200
    log = server.log_path.read_text()
    assert log.count("client_gone") == 16
    assert log.count("status=499") == 16  # logged as nginx's "client closed request", not as a server error


async def test_the_server_cuts_off_heads_that_never_complete_and_caps_connections(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'slow.db'}",
            "SENTIMENT_HEADER_TIMEOUT_SECONDS": "0.5",
            "SENTIMENT_MAX_CONNECTIONS": "3",
        }
    )
    slow = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
    for _, writer in slow:
        writer.write(b"GET /health HTTP/1.1\r\nhost: x\r\n")  # the blank line never comes
    refused = httpx.get(f"{server.base_url}/health", timeout=5)
    answers = [await asyncio.wait_for(reader.read(1000), 5) for reader, _ in slow]
    for _, writer in slow:
        writer.close()
    served = httpx.get(f"{server.base_url}/health", timeout=5)
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers)
    assert served.status_code == 200
