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


class LinearVader(SentimentIntensityAnalyzer):
    """VADER with the same answers in linear time. vaderSentiment lowercases the whole text's word list again
    for every sentiment-laden word it checks for negations and idioms, so its cost grows with the square of
    the words: a 10,000-character run of emoji (each one a few words) took 40 s and held up every request
    behind it. The checks only look three words back and two ahead: they are given those words alone."""

    @staticmethod
    def _negation_check(valence: float, words_and_emoticons: list[str], start_i: int, i: int) -> float:
        low = max(0, i - 3)
        return SentimentIntensityAnalyzer._negation_check(
            valence, words_and_emoticons[low : i + 1], start_i, i - low
        )

    @staticmethod
    def _special_idioms_check(valence: float, words_and_emoticons: list[str], i: int) -> float:
        low = max(0, i - 3)
        window = words_and_emoticons[low : i + 3]
        return SentimentIntensityAnalyzer._special_idioms_check(valence, window, i - low)


class VaderBackend(BaseBackend):
    labels: tuple[Label, ...] = ("negative", "neutral", "positive")
    execution_path = "vader"

    def __init__(self) -> None:
        self._analyzer = LinearVader()

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        return [scored_from_vader(self._analyzer.polarity_scores(text)) for text in texts]
