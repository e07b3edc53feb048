"""The one interface every model backend implements: a list of texts in, a scored label per text out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sentiment.core.domain import Label, Scored
from sentiment.inference.stats import TokenUsage


class Backend(Protocol):
    """Small and synchronous: knows nothing of HTTP, asyncio or the database."""

    labels: tuple[Label, ...]
    # "cuda" when the model runs on a GPU, which is fed larger batches; else "cpu".
    device: str
    # What actually runs (fp32, int8, onnx, onnx-int8, cuda-fp16, cuda-fp32, vader, remote), for operators.
    execution_path: str
    # Why a faster execution path that was asked for was refused, when it was.
    fast_path_rejected: str | None
    # True when a long text costs a forward pass per window (SENTIMENT_LONG_TEXTS=windows), not one.
    scores_every_window: bool
    # The most texts one call should take (a language model answers a text per request, a few at a time);
    # None: the batching policy decides.
    batch_limit: int | None
    # How long one call may take before the caller gives up on it (a language model's own deadline); None:
    # the breaker's call timeout.
    call_timeout_s: float | None
    # Requests and tokens as a language model's server reports them; None for models that run here.
    usage: TokenUsage | None

    @property
    def details(self) -> dict[str, str]:
        """What the model is, recorded with a data-set job so that its result can be reproduced."""
        ...

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
    batch_limit: int | None = None
    call_timeout_s: float | None = None
    usage: TokenUsage | None = None

    @property
    def details(self) -> dict[str, str]:
        return {"execution_path": self.execution_path}

    def close(self) -> None:
        return None
