"""A language model annotator against a real service process: a data set scored through it, and its API key
kept out of every log line, page, API answer and stored row; a data-set job on it killed mid-way and finished
by the next start with every row scored, stored and exported once."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.llm_server import LlmServer

pytestmark = pytest.mark.slow
API_KEY = "sk-live-4be1d0c9e2-never-shown"
ADMIN = {"authorization": "Bearer adm"}
TEXTS = ["I love the crew", "the worst queue", "boarding at 9", "great legroom", "bad coffee", "gate changed"]
EXPECTED = ["positive", "negative", "neutral", "positive", "negative", "neutral"]


def models_file(folder: Path, url: str, **extra: str) -> Path:
    lines = "".join(f"{name} = {value}\n" for name, value in extra.items())
    path = folder / "models.toml"
    path.write_text(
        f'[models.annotator]\nkind = "openai"\nbase_url = "{url}"\napi_key_env = "ANNOTATOR_KEY"\n'
        f"timeout_seconds = 2\n{lines}"
    )
    return path


def service_env(folder: Path, url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'llm.db'}",
        "SENTIMENT_MODELS_FILE": str(models_file(folder, url, **extra)),
        "ANNOTATOR_KEY": API_KEY,
        "PRELOAD_MODEL": "annotator",
        "SENTIMENT_ADMIN_TOKEN": "adm",
        "SENTIMENT_DATA_DIR": str(folder / "data"),
        "SENTIMENT_JOURNAL_DIR": str(folder / "journal"),
        "SENTIMENT_DATASET_CHUNK_ROWS": "10",
        "LOG_LEVEL": "DEBUG",
    }


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout_s} s"
        time.sleep(0.1)


def model_loaded(server: ServerProcess) -> bool:
    return httpx.get(f"{server.base_url}/models/annotator").json()["model"]["status"] == "loaded"


def upload(server: ServerProcess, rows: list[str]) -> str:
    body = "text\n" + "".join(f'"{row}"\n' for row in rows)
    response = httpx.post(
        f"{server.base_url}/datasets",
        files={"file": ("posts.csv", body.encode(), "text/csv")},
        data={"text_column": "text", "model": "annotator"},
        headers=ADMIN,
    )
    assert response.status_code in {200, 201, 202}, response.text
    return str(response.json()["id"])


def dataset(server: ServerProcess, dataset_id: str) -> dict:
    return httpx.get(f"{server.base_url}/datasets/{dataset_id}").json()


def test_a_data_set_is_scored_through_the_language_model_and_its_key_shows_nowhere(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    with LlmServer(api_key=API_KEY) as llm:
        server = start_server(service_env(tmp_path, llm.url))
        wait_for(lambda: model_loaded(server), 30, "the annotator loaded")
        answers = [httpx.post(f"{server.base_url}/predict", json={"text": t}).json() for t in TEXTS]
        assert [a["sentiment"] for a in answers] == EXPECTED
        assert {(a["model_used"], a["scores_source"]) for a in answers} == {("annotator", "logprobs")}

        dataset_id = upload(server, [f"{text} #{n}" for n in range(5) for text in TEXTS])
        wait_for(
            lambda: dataset(server, dataset_id)["status"] in {"done", "failed"}, 60, "the data set scored"
        )
        assert dataset(server, dataset_id)["status"] == "done"
        report = httpx.get(f"{server.base_url}/datasets/{dataset_id}/report").json()
        assert report["model_details"]["served_model"] == "test-llm"
        export = httpx.get(f"{server.base_url}/datasets/{dataset_id}/export").text.splitlines()
        assert len(export) == 1 + 30

        # Failures log their errors (the 500's body, the unreadable reply): none may carry the key.
        for mode in ("error", "garbage"):
            llm.mode = mode  # type: ignore[assignment]
            httpx.post(f"{server.base_url}/predict", json={"text": f"failing as {mode}"})
        llm.mode = "ok"
        assert all(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in llm.requests)

        shown = [
            httpx.get(f"{server.base_url}{path}", headers=ADMIN) for path in get_paths(server, dataset_id)
        ]
        assert all(page.status_code < 500 for page in shown), [(p.url, p.status_code) for p in shown]
        assert len(shown) > 20 and sum(page.status_code == 200 for page in shown) > 15
        leaks = [str(page.url) for page in shown if API_KEY in page.text]
        server.stop()

    stored = [
        path for path in tmp_path.rglob("*") if path.is_file() and API_KEY.encode() in path.read_bytes()
    ]
    assert leaks == [] and stored == [], (leaks, stored)
    log = server.log_path.read_text()
    assert "annotator" in log and API_KEY not in log


def get_paths(server: ServerProcess, dataset_id: str) -> list[str]:
    """Every GET route of the API without path parameters, the pages, and the data set's own routes."""
    spec = httpx.get(f"{server.base_url}/schema/openapi.json").json()
    api = [path for path, methods in spec["paths"].items() if "get" in methods and "{" not in path]
    pages = ["/", "/ui", "/ui/analyze", "/ui/predictions", "/ui/models", "/ui/models/table", "/ui/alerts"]
    pages += ["/ui/datasets/recent", "/docs", "/models/annotator", "/ui/keys"]
    per_dataset = [
        f"/datasets/{dataset_id}",
        f"/datasets/{dataset_id}/report",
        f"/datasets/{dataset_id}/export",
        f"/ui/datasets/{dataset_id}",
        f"/ui/datasets/{dataset_id}/report",
        f"/ui/datasets/{dataset_id}/progress",
    ]
    return sorted(set(api + pages + per_dataset))


def test_a_data_set_job_killed_mid_way_is_finished_by_the_next_start_with_every_row_scored_once(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    rows = [f"{text} #{n}" for n in range(40) for text in TEXTS]  # 240 distinct texts, chunks of 10
    with LlmServer(latency_s=0.05) as llm:
        env = service_env(tmp_path, llm.url)
        first = start_server(env)
        wait_for(lambda: model_loaded(first), 30, "the annotator loaded")
        dataset_id = upload(first, rows)
        wait_for(lambda: dataset(first, dataset_id)["rows_done"] >= 60, 60, "a quarter of the rows scored")
        first.process.kill()  # kill -9: no shutdown, the job's heartbeat simply stops
        first.process.wait()
        asked_before_kill = rows_asked(llm)
        assert asked_before_kill < len(rows)

        second = start_server(env)  # takes the job over once its heartbeat is stale (a minute)
        wait_for(lambda: dataset(second, dataset_id)["status"] in {"done", "failed"}, 180, "the job finished")
        finished = dataset(second, dataset_id)
        export = httpx.get(f"{second.base_url}/datasets/{dataset_id}/export").text.splitlines()
        report = httpx.get(f"{second.base_url}/datasets/{dataset_id}/report").json()
        asked = rows_asked(llm)
        second.stop()

    assert finished["status"] == "done", finished
    assert (finished["rows_done"], finished["rows_scored"], finished["resumes"]) == (240, 240, 1)
    with sqlite3.connect(tmp_path / "llm.db") as database:
        stored = Counter(
            text
            for (text,) in database.execute(
                "SELECT text FROM predictions WHERE dataset_id IS NOT NULL AND model_used = 'annotator'"
            )
        )
    assert stored == Counter(rows), "every row stored once"
    assert sorted(line.split(",")[0].strip('"') for line in export[1:]) == sorted(rows), "exported once"
    assert sum(report["distribution"].values()) == 240
    # Only the rows of the chunks in flight at the kill are asked again (at most one chunk per request slot).
    print(f"LLM asked {asked} times for {len(rows)} rows; {asked_before_kill} before the kill")
    assert len(rows) <= asked <= len(rows) + 10


def rows_asked(llm: LlmServer) -> int:
    """Completions asked for a data-set row (its text carries a `#`), not the probe at load."""
    return sum(
        request.path.endswith("/chat/completions") and " #" in json.dumps(request.body)
        for request in llm.requests
    )
