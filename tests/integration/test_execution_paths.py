"""Execution paths: the fast paths load and agree with fp32; a broken one falls back to fp32 with an alert."""

from collections.abc import Sequence
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from sentiment.app import create_app
from sentiment.core.domain import Scored
from sentiment.inference import paths
from sentiment.inference.backend import Backend, BaseBackend
from sentiment.inference.catalogue import BUILTIN_MODELS, ModelSpec
from sentiment.inference.paths import build
from sentiment.inference.registry import load_backend
from sentiment.inference.self_check import SAMPLE_TEXTS
from sentiment.inference.transformers_backend import TransformersBackend
from tests.conftest import SST2_MODEL, in_app, make_settings, wait_until_settled


class LabelFlipper(BaseBackend):
    """A fast path gone wrong: fp32's answers with the label of every `every`-th text of a call reversed
    (every one by default)."""

    def __init__(self, inner: Backend, every: int = 1) -> None:
        self.labels = inner.labels
        self.execution_path = "planted"
        self._inner, self._every = inner, every

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        flipped = {"negative": "positive", "positive": "negative", "neutral": "neutral"}
        return [
            Scored(flipped[s.label], s.confidence, s.scores) if i % self._every == 0 else s  # type: ignore[arg-type]
            for i, s in enumerate(self._inner.predict(texts))
        ]


def test_a_planted_path_that_changes_two_percent_of_labels_is_refused(tmp_path: Path) -> None:
    backend = build(
        str(SST2_MODEL),
        "auto",
        None,
        tmp_path,
        make_fast=lambda source, _: LabelFlipper(TransformersBackend(source), every=50),
    )
    assert backend.execution_path == "fp32"
    assert backend.fast_path_rejected is not None
    assert "the onnx-int8 path was refused" in backend.fast_path_rejected
    assert "(at least 99% needed)" in backend.fast_path_rejected
    # The verdict is remembered: the next start refuses the path without building it or loading fp32 twice.
    again = build(str(SST2_MODEL), "auto", None, tmp_path, make_fast=lambda *_: pytest.fail("built again"))
    assert again.fast_path_rejected is not None and "remembered in" in again.fast_path_rejected


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


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the module: each path exports its model once."""
    return tmp_path_factory.mktemp("exports")


@pytest.mark.slow
@pytest.mark.parametrize("path", ["int8", "onnx", "onnx-int8"])
def test_each_fast_path_passes_its_self_check_on_the_reference_model(path: str, exports: Path) -> None:
    backend = build(str(SST2_MODEL), path, None, exports)  # type: ignore[arg-type]
    assert backend.execution_path == path
    results = backend.predict(list(SAMPLE_TEXTS[:2]))
    assert [r.label for r in results] == ["positive", "negative"]
    if path.startswith("onnx"):
        assert list(exports.glob("*/model*.onnx")), "the export is kept in the cache folder"


@pytest.mark.slow
def test_auto_takes_onnx_int8_on_this_cpu_and_then_trusts_its_remembered_verdict(
    exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(str(SST2_MODEL), "auto", None, exports)
    assert (first.execution_path, first.fast_path_rejected) == ("onnx-int8", None)
    assert [r.label for r in first.predict(["What a wonderful, moving film."])] == ["positive"]
    assert (exports / "self-checks" / f"{paths.source_stamp(str(SST2_MODEL), 'onnx-int8')}.json").is_file()
    monkeypatch.setattr(paths._Reference, "backend", lambda _: pytest.fail("fp32 loaded to check again"))
    again = build(str(SST2_MODEL), "auto", None, exports)
    assert again.execution_path == "onnx-int8"
    assert "torch" not in again.__class__.__module__


def test_auto_device_is_the_cpu_here_and_cuda_without_a_gpu_is_refused_clearly() -> None:
    import torch

    from sentiment.core.domain import ModelLoadError
    from sentiment.inference.paths import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_half_precision_on_a_gpu_is_held_to_the_same_self_check(tmp_path: Path) -> None:
    """On a GPU, half precision serves only when it passes the check that a CPU fast path must pass; else the
    model runs in full precision on the GPU and says why. (Here CPU stand-ins play both precisions.)"""
    fp32 = TransformersBackend(str(SST2_MODEL))
    verdict = tmp_path / "half.json"

    def full() -> Backend:
        return fp32

    passing = paths.on_gpu_checked("auto", lambda: fp32, full, lambda: fp32, verdict)
    assert passing is fp32 and passing.fast_path_rejected is None
    flipped = paths.on_gpu_checked(
        "auto", lambda: LabelFlipper(fp32, every=50), full, lambda: fp32, tmp_path / "flipped.json"
    )
    assert flipped is fp32 and flipped.fast_path_rejected is not None
    assert (
        "the cuda-fp16 path was refused and the model runs in fp32 on the GPU" in flipped.fast_path_rejected
    )
    assert "(at least 99% needed)" in flipped.fast_path_rejected
    asked_for_full = paths.on_gpu_checked(
        "fp32", lambda: pytest.fail("half built"), full, lambda: pytest.fail("checked"), verdict
    )
    assert asked_for_full is fp32
