"""The one interface every model backend implements: a list of texts in, a scored label per text out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sentiment.core.domain import Label, Scored


class Backend(Protocol):
    """Small and synchronous: knows nothing of HTTP, asyncio or the database."""

    labels: tuple[Label, ...]
    # "cuda" when the model runs on a GPU, which is fed larger batches; else "cpu".
    device: str
    # What actually runs (fp32, int8, onnx, onnx-int8, cuda-fp16, vader, remote), shown to operators.
    execution_path: str
    # Why a faster execution path that was asked for was refused, when it was.
    fast_path_rejected: str | None
    # True when a long text costs a forward pass per window (SENTIMENT_LONG_TEXTS=windows), not one.
    scores_every_window: bool

    def predict(self, texts: Sequence[str]) -> list[Scored]: ...

    def close(self) -> None:
        """Release what the backend holds (connections, sessions) when its model is unloaded."""


class BaseBackend:
    """Defaults for the members most backends share: on the CPU, no fast path refused, nothing to release."""

    labels: tuple[Label, ...] = ()
    device: str = "cpu"
    execution_path: str = "fp32"
    fast_path_rejected: str | None = None
    scores_every_window: bool = False

    def close(self) -> None:
        return None
