"""Execution paths of a transformers model (fp32, torch int8, ONNX Runtime, ONNX Runtime int8) and the
self-check that keeps a fast path honest: at load its labels must agree with fp32 on a built-in sample."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import structlog

from sentiment.core.domain import ModelLoadError
from sentiment.inference.backend import Backend
from sentiment.inference.long_texts import LongTexts

log = structlog.get_logger(__name__)

ExecutionPath = Literal["fp32", "int8", "onnx", "onnx-int8"]
EXECUTION_PATHS: tuple[ExecutionPath, ...] = ("fp32", "int8", "onnx", "onnx-int8")
MIN_AGREEMENT = 0.9

# Varied on purpose: clear and mixed, short and long, review and tweet style.
SELF_CHECK_TEXTS: tuple[str, ...] = (
    "I absolutely loved this movie, the acting was superb.",
    "This was the worst service I have ever received.",
    "The package arrived on Tuesday.",
    "Not bad at all, better than I expected!",
    "I can't believe how boring and predictable the plot was.",
    "@united thanks for getting me home early, great crew",
    "@airline my bag is lost again and nobody answers the phone",
    "The meeting has been moved to 3pm.",
    "What a wonderful, moving film.",
    "It's a mess: dull, overlong and painfully unfunny.",
    "meh",
    "Best purchase I've made all year, highly recommend.",
    "The food was cold and the waiter was rude.",
    "An intelligent, beautifully shot and deeply felt story.",
    "Flight delayed 4 hours, no explanation, no food vouchers.",
    "Thank you so much for the quick reply!",
)


def agreement(reference: Sequence[str], candidate: Sequence[str]) -> float:
    return sum(a == b for a, b in zip(reference, candidate, strict=True)) / len(reference)


def checked(
    fast: Backend, reference: Backend, texts: Sequence[str] = SELF_CHECK_TEXTS, minimum: float = MIN_AGREEMENT
) -> str | None:
    """None when the fast path's labels agree with fp32 well enough, else the reason to refuse it."""
    expected = [scored.label for scored in reference.predict(texts)]
    found = [scored.label for scored in fast.predict(texts)]
    share = agreement(expected, found)
    if share >= minimum:
        return None
    return (
        f"its labels agreed with fp32 on {share:.0%} of the {len(texts)} self-check texts "
        f"(at least {minimum:.0%} needed)"
    )


def resolve_device(device: str) -> str:
    """`auto` is the GPU when torch sees one, else the CPU;
    asking for `cuda` without one is refused clearly."""
    import torch

    available = torch.cuda.is_available()
    if device == "cuda" and not available:
        raise ModelLoadError("SENTIMENT_DEVICE=cuda but torch sees no CUDA GPU here; use cpu or auto")
    return "cuda" if device == "cuda" or (device == "auto" and available) else "cpu"


# Exported models (ONNX) are kept here unless SENTIMENT_CACHE_DIR says otherwise.
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "sentiment"


def build(
    source: str,
    path: ExecutionPath,
    threads: int | None,
    cache_dir: Path,
    make_fast: Callable[[str, ExecutionPath], Backend] | None = None,
    device: str = "cpu",
    long_texts: LongTexts = "head",
) -> Backend:
    """The backend for `path`, or fp32 (with `fast_path_rejected` saying why) when the fast path fails its
    check. On a GPU the model runs in half precision and the CPU paths do not apply."""
    from sentiment.inference.transformers_backend import TransformersBackend

    if resolve_device(device) == "cuda":
        return TransformersBackend(source, threads, device="cuda", long_texts=long_texts)
    reference = TransformersBackend(source, threads, long_texts=long_texts)
    if path == "fp32":
        return reference
    try:
        fast = (make_fast or _fast_backend(threads, cache_dir, long_texts))(source, path)
        reason = checked(fast, reference)
    except Exception as error:  # noqa: BLE001 - a fast path that cannot even be built leaves the model on fp32
        reason = f"it could not be built: {type(error).__name__}: {error}"
    if reason is None:
        return fast
    reference.fast_path_rejected = f"the {path} path was refused and the model runs in fp32: {reason}"
    log.warning("fast_path_rejected", source=source, path=path, reason=reason)
    return reference


def _fast_backend(
    threads: int | None, cache_dir: Path, long_texts: LongTexts
) -> Callable[[str, ExecutionPath], Backend]:
    def make(source: str, path: ExecutionPath) -> Backend:
        if path == "int8":
            from sentiment.inference.transformers_backend import TransformersBackend

            return TransformersBackend(source, threads, int8=True, long_texts=long_texts)
        from sentiment.inference.onnx_backend import OnnxBackend

        return OnnxBackend(
            source, int8=path == "onnx-int8", cache_dir=cache_dir, threads=threads, long_texts=long_texts
        )

    return make
