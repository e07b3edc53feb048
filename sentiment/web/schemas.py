"""Shapes of what crosses the HTTP boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from sentiment.domain import Label, Prediction
from sentiment.storage.repositories import Alert

ModelKey = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="a model key from GET /models")]


class PredictIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    model: ModelKey | None = None


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    texts: list[str]
    model: ModelKey | None = None


class PredictionOut(msgspec.Struct):
    id: UUID
    sentiment: Label
    confidence: float
    scores: dict[str, float]
    model_used: str
    processing_time_ms: float
    fallback_used: bool
    timestamp: datetime

    @classmethod
    def from_domain(cls, prediction: Prediction) -> PredictionOut:
        return cls(
            id=prediction.id,
            sentiment=prediction.sentiment,
            confidence=prediction.confidence,
            scores=prediction.scores,
            model_used=prediction.model_used,
            processing_time_ms=prediction.processing_time_ms,
            fallback_used=prediction.fallback_used,
            timestamp=prediction.timestamp,
        )


class BatchOut(msgspec.Struct):
    results: list[PredictionOut]
    model_used: str
    total_processing_time_ms: float
    batch_size: int


class Health(msgspec.Struct):
    status: str


class AlertOut(msgspec.Struct):
    id: int
    key: str
    kind: str
    severity: str
    message: str
    state: str
    raised_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None

    @classmethod
    def from_domain(cls, alert: Alert) -> AlertOut:
        return cls(**{field: getattr(alert, field) for field in cls.__struct_fields__})
