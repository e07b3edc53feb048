"""The rule-based VADER backend: always available, the fallback behind every breaker."""

from __future__ import annotations

import string
from collections.abc import Sequence

from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SentimentIntensityAnalyzer

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


# Words that can change a valence in vaderSentiment's negation check (with any word containing "n't"): its
# negations, and the "never so"/"without doubt" patterns. A window without one is left as it is.
_NEGATION_TRIGGERS = frozenset(NEGATE) | {"never", "without", "so", "this"}


class _Words:
    """What sentiment_valence reads of vaderSentiment's SentiText (the words with their punctuation stripped
    unless that leaves two characters or fewer, and whether only some are in capitals), made with one list
    comprehension instead of a function call per word."""

    __slots__ = ("is_cap_diff", "text", "words_and_emoticons")

    def __init__(self, text: str) -> None:
        self.text = text
        self.words_and_emoticons = [
            word if len(stripped := word.strip(string.punctuation)) <= 2 else stripped
            for word in text.split()
        ]
        capitals = sum(map(str.isupper, self.words_and_emoticons))
        self.is_cap_diff = 0 < capitals < len(self.words_and_emoticons)


class LinearVader(SentimentIntensityAnalyzer):
    """VADER with the same answers in linear time, and less of it. vaderSentiment lowercases the whole text's
    word list again for every sentiment-laden word it checks for negations and idioms, so its cost grows with
    the square of the words: a 10,000-character run of emoji (each one a few words) took 40 s and held up
    every request behind it. The checks only look three words back and two ahead: they are given those words
    alone, and the negation check only when one of those words could change the answer. A text without emoji
    skips vaderSentiment's character-by-character search for them (a fifth of its time on a tweet)."""

    def __init__(self) -> None:
        super().__init__()
        # The emoji search looks at one character at a time: only single-character entries can match.
        self._emoji_characters = frozenset(emoji for emoji in self.emojis if len(emoji) == 1)

    def polarity_scores(self, text: str) -> dict[str, float]:
        if not self._emoji_characters.isdisjoint(text):
            return super().polarity_scores(text)
        # From here on vaderSentiment's own polarity_scores on the text its search would return, each list
        # made in one pass: words outside the lexicon get the 0 every branch of its loop gives them without a
        # call to sentiment_valence, and the "but" check runs only where there is a "but".
        text = text.strip()
        sentitext = _Words(text)
        words = sentitext.words_and_emoticons
        lowered = [word.lower() for word in words]
        sentiments: list[float] = []
        last = len(words) - 1
        for i, low in enumerate(lowered):
            if (
                low not in self.lexicon
                or low in BOOSTER_DICT
                or (low == "kind" and i < last and lowered[i + 1] == "of")
            ):
                sentiments.append(0)
                continue
            sentiments = self.sentiment_valence(0, sentitext, words[i], i, sentiments)
        if "but" in lowered:
            sentiments = self._but_check(words, sentiments)
        return self.score_valence(sentiments, text)

    @staticmethod
    def _negation_check(valence: float, words_and_emoticons: list[str], start_i: int, i: int) -> float:
        low = max(0, i - 3)
        preceding = [word.lower() for word in words_and_emoticons[low:i]]
        if _NEGATION_TRIGGERS.isdisjoint(preceding) and not any("n't" in word for word in preceding):
            return valence
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
