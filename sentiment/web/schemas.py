"""Shapes of what crosses the HTTP boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from sentiment.core.domain import Alert, Label, Prediction, ScoresSource

ModelKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=200, description="a model key (see /status)", examples=["minilm-sst2"]
    ),
]
# Blank texts and batch sizes are checked by the service, so that its 400 names the rule that was broken.
Text = Annotated[
    str,
    msgspec.Meta(description="the text to score (not blank)", examples=["UCLA is amazing for AI research!"]),
]


class PredictIn(msgspec.Struct, forbid_unknown_fields=True):
    text: Text
    model: ModelKey | None = None


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    texts: Annotated[
        list[str],
        msgspec.Meta(
            description="1 to 256 texts (the default limit), answered in this order",
            examples=[["great game!", "so boring"]],
        ),
    ]
    model: ModelKey | None = None


class PredictionOut(msgspec.Struct):
    id: Annotated[UUID, msgspec.Meta(description="UUIDv7, also the stored row's key")]
    sentiment: Label
    confidence: Annotated[
        float, msgspec.Meta(description="probability of the chosen label", examples=[0.997])
    ]
    scores: Annotated[
        dict[str, float],
        msgspec.Meta(
            description="every label the model knows", examples=[{"negative": 0.003, "positive": 0.997}]
        ),
    ]
    model_used: Annotated[
        str, msgspec.Meta(description="vader when the fallback answered", examples=["minilm-sst2"])
    ]
    processing_time_ms: float
    fallback_used: bool
    timestamp: datetime
    truncated: Annotated[
        bool,
        msgspec.Meta(
            description="the text was longer than the model's window and the model saw only part of it "
            "(which part: SENTIMENT_LONG_TEXTS)"
        ),
    ] = False
    scores_source: Annotated[
        ScoresSource,
        msgspec.Meta(
            description="where the scores come from: the model's probabilities, a language model's token "
            "log-probabilities, or none (a language model that reports none: 1.0 for the label it named)"
        ),
    ] = "model"

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
            truncated=prediction.truncated,
            scores_source=prediction.scores_source,
        )


class BatchOut(msgspec.Struct):
    results: list[PredictionOut]
    model_used: str
    total_processing_time_ms: float
    batch_size: int


class Health(msgspec.Struct):
    status: str


class AlertOut(Alert, frozen=True):
    """An alert as the API answers it: the domain alert's fields, under the schema name clients know."""

    @classmethod
    def from_domain(cls, alert: Alert) -> AlertOut:
        return cls(**msgspec.structs.asdict(alert))
