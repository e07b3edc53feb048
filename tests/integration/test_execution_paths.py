"""Execution paths: the fast paths load and agree with fp32; a broken one falls back to fp32 with an alert."""

from collections.abc import Sequence
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.core.domain import Scored
from sentiment.inference.backend import Backend, BaseBackend
from sentiment.inference.catalogue import BUILTIN_MODELS, ModelSpec
from sentiment.inference.paths import SELF_CHECK_TEXTS, agreement, build, checked
from sentiment.inference.registry import load_backend
from sentiment.inference.transformers_backend import TransformersBackend
from tests.conftest import SST2_MODEL, in_app, make_settings, wait_until_settled


class LabelFlipper(BaseBackend):
    """A fast path gone wrong: every label the reference gives, reversed."""

    def __init__(self, inner: Backend) -> None:
        self.labels = inner.labels
        self.execution_path = "int8"
        self._inner = inner

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        flipped = {"negative": "positive", "positive": "negative", "neutral": "neutral"}
        return [Scored(flipped[s.label], s.confidence, s.scores) for s in self._inner.predict(texts)]  # type: ignore[arg-type]


def test_agreement_and_the_self_check_verdict() -> None:
    assert agreement(["a", "b", "c", "d"], ["a", "b", "c", "x"]) == 0.75
    reference = TransformersBackend(str(SST2_MODEL))
    assert checked(reference, reference) is None
    verdict = checked(LabelFlipper(reference), reference)
    assert verdict is not None and "at least 90% needed" in verdict


def test_broken_fast_path_is_refused_and_the_model_runs_in_fp32(tmp_path: Path) -> None:
    backend = build(
        str(SST2_MODEL),
        "int8",
        None,
        tmp_path,
        make_fast=lambda source, _: LabelFlipper(TransformersBackend(source)),
    )
    assert backend.execution_path == "fp32"
    assert backend.fast_path_rejected is not None
    assert "int8 path was refused" in backend.fast_path_rejected
    assert backend.predict(["What a wonderful, moving film."])[0].label == "positive"


async def test_refused_fast_path_shows_in_models_and_raises_an_alert(sqlite_url: str, tmp_path: Path) -> None:
    def loader(spec: ModelSpec) -> Backend:
        if spec.kind != "transformers":
            return load_backend(spec)
        return build(
            spec.source,
            spec.path,
            None,
            tmp_path,
            make_fast=lambda source, _: LabelFlipper(TransformersBackend(source)),
        )

    settings = make_settings(
        sqlite_url,
        default_model="fast",
        models=BUILTIN_MODELS + (ModelSpec("fast", str(SST2_MODEL), path="int8"),),
    )
    app = create_app(settings, loader=loader)
    async with AsyncTestClient(app=app) as client:
        await wait_until_settled(app)
        model = (await client.get("/models/fast")).json()["model"]
        in_app(client, app.state.services.alerts.settle)
        alerts = (await client.get("/alerts", params={"state": "active"})).json()
        answer = (await client.post("/predict", json={"text": "What a wonderful, moving film."})).json()
    assert (model["path"], model["execution_path"], model["status"]) == ("int8", "fp32", "loaded")
    alert = next(a for a in alerts if a["key"] == "fast_path_rejected:fast")
    assert "runs in fp32" in alert["message"] and "self-check" in alert["message"]
    assert (answer["sentiment"], answer["model_used"]) == ("positive", "fast")


@pytest.mark.slow
@pytest.mark.parametrize("path", ["int8", "onnx", "onnx-int8"])
def test_each_fast_path_passes_its_self_check_on_the_reference_model(path: str, tmp_path: Path) -> None:
    backend = build(str(SST2_MODEL), path, None, tmp_path)  # type: ignore[arg-type]
    assert backend.execution_path == path
    results = backend.predict(list(SELF_CHECK_TEXTS[:2]))
    assert [r.label for r in results] == ["positive", "negative"]
    if path.startswith("onnx"):
        assert list(tmp_path.glob("*/model*.onnx")), "the export is kept in the cache folder"


def test_auto_device_is_the_cpu_here_and_cuda_without_a_gpu_is_refused_clearly() -> None:
    import torch

    from sentiment.core.domain import ModelLoadError
    from sentiment.inference.paths import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        resolve_device("cuda")
