"""The rule-based VADER backend: always available, the fallback behind every breaker."""

from __future__ import annotations

from collections.abc import Sequence

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from sentiment.core.domain import Label, Scored
from sentiment.inference.backend import BaseBackend

POSITIVE_THRESHOLD = 0.05


def scored_from_vader(polarity: dict[str, float]) -> Scored:
    """Label from the compound score; confidence |compound|
    for a polar label, 1 - 20|compound| for neutral."""
    compound = polarity["compound"]
    label: Label
    if compound >= POSITIVE_THRESHOLD:
        label, confidence = "positive", abs(compound)
    elif compound <= -POSITIVE_THRESHOLD:
        label, confidence = "negative", abs(compound)
    else:
        label, confidence = "neutral", 1.0 - 20.0 * abs(compound)
    scores = {"negative": polarity["neg"], "neutral": polarity["neu"], "positive": polarity["pos"]}
    return Scored(label=label, confidence=confidence, scores=scores)


class VaderBackend(BaseBackend):
    labels: tuple[Label, ...] = ("negative", "neutral", "positive")
    execution_path = "vader"

    def __init__(self) -> None:
        self._analyzer = SentimentIntensityAnalyzer()

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        return [scored_from_vader(self._analyzer.polarity_scores(text)) for text in texts]
