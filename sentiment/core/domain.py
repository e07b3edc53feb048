"""Domain types shared by every layer: labels, scored texts, predictions and the errors the service raises."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")
VADER_KEY = "vader"
# Where a prediction's per-class scores come from: the model's own probabilities (a classifier's softmax,
# VADER's proportions), a language model's token log-probabilities, or nowhere (1.0 for the label it named).
ScoresSource = Literal["model", "logprobs", "none"]


class Scored(msgspec.Struct, frozen=True):
    """What a backend says about one text."""

    label: Label
    confidence: float
    scores: dict[str, float]
    # The model saw only part of the text (longer than its window).
    truncated: bool = False
    scores_source: ScoresSource = "model"


class Prediction(msgspec.Struct, frozen=True):
    """One answered prediction, as returned to the caller and as stored."""

    id: UUID
    text: str
    sentiment: Label
    confidence: float
    scores: dict[str, float]
    model_requested: str
    model_used: str
    fallback_used: bool
    processing_time_ms: float
    timestamp: datetime
    dataset_id: UUID | None = None
    group: str | None = None
    truncated: bool = False
    scores_source: ScoresSource = "model"


# Characters that show nothing: whitespace, zero-width spaces and joiners, the BOM, the soft hyphen,
# bidirectional marks. A text made only of these is empty to a reader and to a model.
_VISIBLE = re.compile(r"[^\s\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]")


def is_blank(text: str) -> bool:
    return _VISIBLE.search(text) is None


def first_line(error: BaseException) -> str:
    """An error's message, first line only (database drivers append whole statements); its type's name when
    it has no message, so that a log line never loses the error."""
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


class SentimentError(Exception):
    """Base of the errors the web layer maps to HTTP statuses in one table."""

    def __init__(self, detail: str, extra: dict[str, object] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(SentimentError):
    """The request is well-formed JSON but breaks a limit or a rule (empty text, too long, batch too big)."""


class UnknownModel(SentimentError):
    def __init__(self, key: str, known: list[str]) -> None:
        super().__init__(f"unknown model {key!r}; known models: {', '.join(known)}", {"known_models": known})


class ModelNotLoaded(SentimentError):
    """A catalogued model nobody asked to serve: neither loaded nor being loaded."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"model {key!r} is not loaded; load it with POST /models/{key}/load (admin token) "
            f"or start the service with PRELOAD_MODEL={key}",
        )


class QueueFull(SentimentError):
    """The model's queue is at capacity; the caller should retry after a moment."""

    def __init__(self, key: str, retry_after_s: int = 1) -> None:
        super().__init__(f"model {key!r} is at capacity; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class StorageBehind(SentimentError):
    """The predictions waiting for the database are at their bound: one answered now could not be stored, so
    the request is refused before any work is done rather than answered and then dropped."""

    def __init__(self, pending: int, retry_after_s: int = 1, reason: str | None = None) -> None:
        why = reason or f"{pending:,} predictions are waiting for the database"
        super().__init__(f"storage is behind: {why}; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


class ModelLoadError(SentimentError):
    """A model could not be loaded (missing files, unmappable labels, no network for a hub id)."""


class NotReady(SentimentError):
    """The process serves, but should not get traffic yet
    (default model not loaded, database not answering)."""


class Conflict(SentimentError):
    """The request contradicts the service's current state (unloading the default model, for one)."""


class StorageFull(SentimentError):
    """The data folder holds its quota, or its disk is nearly full: nothing more is written there until data
    sets are deleted."""


class RateLimited(SentimentError):
    """The caller is over a limit (its address's or its API key's rate, or too many wrong tokens from it); it
    may retry after `retry_after_s` seconds."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


AlertState = Literal["active", "resolved"]
AlertSeverity = Literal["info", "warning", "critical"]


# Alerts about one model are keyed "<kind>:<model>": one active alert per model and kind.
MODEL_ALERT_KINDS = ("breaker_open", "model_load_failed", "fast_path_rejected", "model_download_failed")


def model_alert_key(kind: str, model: str) -> str:
    return f"{kind}:{model}"


def alert_model(key: str) -> str | None:
    """The model an alert key is about, or None for an alert about the service as a whole."""
    kind, separator, model = key.partition(":")
    return model if separator and kind in MODEL_ALERT_KINDS else None


class Alert(msgspec.Struct, frozen=True):
    id: int
    key: str
    kind: str
    severity: str
    message: str
    state: str
    raised_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
