"""Model management in-process: the catalogue, figures, load/unload/default, and refusals."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.inference.backend import Backend
from sentiment.inference.catalogue import BUILTIN_MODELS, ModelSpec, spec_from_source
from tests.conftest import in_app, make_settings, wait_until_settled

ADMIN = {"authorization": "Bearer adm"}


@pytest.fixture
async def client(sqlite_url: str, loader: Callable[[ModelSpec], Backend]) -> AsyncIterator[AsyncTestClient]:
    app = create_app(make_settings(sqlite_url, default_model="minilm-sst2", admin_token="adm"), loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        yield client


async def wait_for_status(client: AsyncTestClient, key: str, status: str) -> dict:
    for _ in range(500):
        detail = (await client.get(f"/models/{key}")).json()
        if detail["model"]["status"] == status:
            return detail
        await asyncio.sleep(0.02)
    raise AssertionError(f"{key} never became {status}: {detail}")


async def test_catalogue_lists_builtin_and_configured_models_with_labels_and_status(
    client: AsyncTestClient,
) -> None:
    overview = (await client.get("/models")).json()
    models = {m["key"]: m for m in overview["models"]}
    assert overview["default_model"] == "minilm-sst2"
    assert {
        "distilbert-sst2",
        "twitter-roberta",
        "bert-multilingual",
        "vader",
        "minilm-sst2",
        "minilm-tweets3",
    } <= set(models)
    sst2 = models["minilm-sst2"]
    assert (sst2["status"], sst2["is_default"], sst2["breaker"], sst2["kind"]) == (
        "loaded",
        True,
        "closed",
        "transformers",
    )
    assert models["minilm-tweets3"]["status"] == "available"
    assert models["minilm-tweets3"]["labels"] == ["negative", "neutral", "positive"]
    assert models["distilbert-sst2"]["status"] == "not downloaded"
    assert models["bert-multilingual"]["labels"] == ["negative", "neutral", "positive"]
    assert models["vader"]["breaker"] is None


async def test_model_figures_match_the_requests_sent(client: AsyncTestClient) -> None:
    for i in range(5):
        await client.post("/predict", json={"text": f"single {i}"})
    for _ in range(2):
        await client.post("/predict/batch", json={"texts": ["one", "two", "three"], "model": "minilm-sst2"})
    await client.post("/predict", json={"text": "vader's", "model": "vader"})
    detail = (await client.get("/models/minilm-sst2")).json()
    figures = detail["figures"]
    assert (figures["requests"], figures["texts"], figures["errors"], figures["fallbacks"]) == (7, 11, 0, 0)
    assert figures["latency_p50_ms"] > 0 and figures["latency_p95_ms"] >= figures["latency_p50_ms"]
    assert detail["memory_mb"] is not None and detail["load_seconds"] is not None
    assert (await client.get("/models/vader")).json()["figures"]["requests"] == 1


async def test_load_then_make_default_then_unload_the_old_one(client: AsyncTestClient) -> None:
    assert (await client.post("/models/minilm-tweets3/load", headers=ADMIN)).status_code == 202
    await wait_for_status(client, "minilm-tweets3", "loaded")
    overview = (await client.put("/models/default", json={"model": "minilm-tweets3"}, headers=ADMIN)).json()
    assert overview["default_model"] == "minilm-tweets3"
    answer = (await client.post("/predict", json={"text": "meh, it's a Tuesday"})).json()
    assert answer["model_used"] == "minilm-tweets3"
    unloaded = await client.post("/models/minilm-sst2/unload", headers=ADMIN)
    assert unloaded.status_code == 200 and unloaded.json()["status"] == "available"
    refused = await client.post("/predict", json={"text": "hi", "model": "minilm-sst2"})
    assert refused.status_code == 409


async def test_default_model_and_vader_cannot_be_unloaded(client: AsyncTestClient) -> None:
    for key in ("minilm-sst2", "vader"):
        response = await client.post(f"/models/{key}/unload", headers=ADMIN)
        assert response.status_code == 409
        assert "cannot be unloaded" in response.json()["detail"] or "default" in response.json()["detail"]


async def test_setting_a_default_that_is_not_loaded_switches_once_it_has_loaded(
    sqlite_url: str, loader: Callable[[ModelSpec], Backend]
) -> None:
    def slow_loader(spec: ModelSpec) -> Backend:
        if spec.key == "minilm-tweets3":
            time.sleep(0.5)
        return loader(spec)

    app = create_app(
        make_settings(sqlite_url, default_model="minilm-sst2", admin_token="adm"), loader=slow_loader
    )
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        await default_switches_once_loaded(client)


async def default_switches_once_loaded(client: AsyncTestClient) -> None:
    overview = (await client.put("/models/default", json={"model": "minilm-tweets3"}, headers=ADMIN)).json()
    assert overview["default_model"] == "minilm-sst2"
    assert (await client.post("/predict", json={"text": "ok"})).json()["model_used"] == "minilm-sst2"
    for _ in range(500):
        if (await client.get("/models")).json()["default_model"] == "minilm-tweets3":
            break
        await asyncio.sleep(0.02)
    assert (await client.post("/predict", json={"text": "ok"})).json()["model_used"] == "minilm-tweets3"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/models/download", {"model": "distilbert-sst2"}),
        ("post", "/models/minilm-tweets3/load", None),
        ("post", "/models/minilm-tweets3/unload", None),
        ("put", "/models/default", {"model": "minilm-tweets3"}),
    ],
)
async def test_model_actions_need_the_admin_token(
    client: AsyncTestClient, method: str, path: str, body: dict | None
) -> None:
    response = await getattr(client, method)(path, json=body, headers={"authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert (await client.get("/models")).json()["default_model"] == "minilm-sst2"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/models/gpt-5", None, 404),
        ("post", "/models/gpt-5/load", None, 404),
        ("post", "/models/download", {"model": "minilm-sst2"}, 409),  # a local folder: nothing to download
        ("post", "/models/distilbert-sst2/load", None, 409),  # not downloaded
        ("put", "/models/default", {"model": "gpt-5"}, 404),
        ("put", "/models/default", {}, 400),
    ],
)
async def test_bad_model_actions_are_clear_4xx(
    client: AsyncTestClient, method: str, path: str, body: dict | None, status: int
) -> None:
    kwargs = {"headers": ADMIN} | ({"json": body} if body is not None else {})
    response = await getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text


async def test_download_with_no_hub_fails_fast_with_advice_and_an_alert(client: AsyncTestClient) -> None:
    started = asyncio.get_running_loop().time()
    assert (
        await client.post("/models/download", json={"model": "distilbert-sst2"}, headers=ADMIN)
    ).status_code == 202
    for _ in range(250):
        download = (await client.get("/models/distilbert-sst2")).json()["model"]["download"]
        if download["state"] != "downloading":
            break
        await asyncio.sleep(0.02)
    elapsed = asyncio.get_running_loop().time() - started
    print(f"offline download failed after {elapsed:.2f} s: {download['error']}")
    assert download["state"] == "failed" and elapsed < 5
    assert "unreachable" in download["error"] or "cannot be reached" in download["error"]
    assert "SENTIMENT_MODELS" in download["error"]
    in_app(client, client.app.state.services.alerts.settle)
    alerts = (await client.get("/alerts", params={"state": "active"})).json()
    assert "model_download_failed:distilbert-sst2" in [a["key"] for a in alerts]
    assert (await client.post("/predict", json={"text": "still answering"})).status_code == 200


async def test_a_model_whose_folder_is_missing_is_failed_and_says_so(sqlite_url: str, tmp_path: Path) -> None:
    gone = tmp_path / "not-mounted" / "model"
    settings = make_settings(
        sqlite_url, admin_token="t", models=(*BUILTIN_MODELS, spec_from_source("gone", str(gone)))
    )
    async with AsyncTestClient(app=create_app(settings)) as client:
        pages = [await client.get(path) for path in ("/models", "/models/gone", "/status", "/ui/models")]
        load = await client.post("/models/gone/load", headers={"authorization": "Bearer t"})
        await asyncio.sleep(0.2)
        detail = (await client.get("/models/gone")).json()["model"]
    assert [page.status_code for page in pages] == [200, 200, 200, 200]
    assert load.status_code == 202
    assert detail["status"] == "failed"
    assert detail["error"].startswith(f"model folder {gone} not found")


async def test_status_says_where_the_default_came_from_and_a_stored_choice_can_be_cleared(
    sqlite_url: str, loader: Callable[[ModelSpec], Backend]
) -> None:
    import socket

    from sentiment.services.models import clear_stored_choices, stored_choice

    settings = make_settings(sqlite_url, default_model="minilm-sst2", admin_token="adm", sync_interval_s=0.05)
    app = create_app(settings, loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        status = (await client.get("/status")).json()
        assert status["default_model_origin"] == {
            "source": "configuration",
            "chosen_at": None,
            "replica": None,
        }
        await client.put("/models/default", json={"model": "vader"}, headers=ADMIN)
        origin = (await client.get("/status")).json()["default_model_origin"]
        assert (origin["source"], origin["replica"]) == ("api", socket.gethostname())
    stored = await stored_choice(sqlite_url)
    assert stored is not None and (stored.default_model, stored.chosen_by) == ("vader", socket.gethostname())
    # After a restart the stored choice wins over PRELOAD_MODEL, and /status says so.
    app = create_app(settings, loader=loader)
    async with AsyncTestClient(app=app) as client:
        for _ in range(100):
            status = (await client.get("/status")).json()
            if status["default_model"] == "vader":
                break
            await asyncio.sleep(0.05)
        assert status["default_model"] == "vader"
        assert status["default_model_origin"]["source"] == "api"
        assert status["default_model_origin"]["chosen_at"] is not None
    assert await clear_stored_choices(sqlite_url)
    assert await stored_choice(sqlite_url) is None
    assert not await clear_stored_choices(sqlite_url)
    app = create_app(settings, loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        await asyncio.sleep(0.2)  # a few sync rounds: nothing stored to follow
        status = (await client.get("/status")).json()
    assert (status["default_model"], status["default_model_origin"]["source"]) == (
        "minilm-sst2",
        "configuration",
    )
