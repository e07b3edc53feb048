import asyncio
import random
from typing import Any

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from sentiment.core.domain import VADER_KEY
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.catalogue import BUILTIN_MODELS
from sentiment.inference.registry import ModelRegistry, load_backend
from sentiment.inference.vader import LinearVader, VaderBackend, scored_from_vader
from tests.conftest import DATA

TWEETS = DATA / "tweeteval_val.tsv"


def polarity(compound: float) -> dict[str, float]:
    return {"neg": 0.1, "neu": 0.6, "pos": 0.3, "compound": compound}


@pytest.mark.parametrize(
    ("compound", "label", "confidence"),
    [
        (0.05, "positive", 0.05),
        (0.8, "positive", 0.8),
        (-0.05, "negative", 0.05),
        (-0.6, "negative", 0.6),
        (0.0, "neutral", 1.0),
        (0.049, "neutral", 1 - 20 * 0.049),
        (-0.02, "neutral", 1 - 20 * 0.02),
    ],
)
def test_label_and_confidence_follow_the_compound_score(
    compound: float, label: str, confidence: float
) -> None:
    scored = scored_from_vader(polarity(compound))
    assert scored.label == label
    assert scored.confidence == pytest.approx(confidence)
    assert scored.scores == {"negative": 0.1, "neutral": 0.6, "positive": 0.3}


def test_backend_scores_real_texts_in_order() -> None:
    results = VaderBackend().predict(
        ["I love this, it is wonderful!", "This is awful and I hate it.", "The bus is blue."]
    )
    assert [r.label for r in results] == ["positive", "negative", "neutral"]


# Words vaderSentiment's checks look for around a sentiment-laden word, and such words (emoji among them).
MODIFIERS = [
    "no",
    "not",
    "never",
    "nor",
    "or",
    "so",
    "this",
    "without",
    "doubt",
    "kind",
    "of",
    "sort",
    "least",
    "at",
    "very",
    "but",
    "BUT",
    "isn't",
]
LADEN = [
    "GREAT!",
    ":)",
    "(good),",
    "good",
    "bad",
    "great",
    "awful",
    "love",
    "hate",
    "LOL",
    "😀",
    "😡",
    "!",
    "?",
    "kiss",
    "of",
    "death",
    "the",
    "bomb",
    "yeah",
    "right",
    "cut",
    "the",
    "mustard",
]


def test_linear_vader_answers_exactly_as_vader_does() -> None:
    """The reference corpus and random runs of negations, boosters, idioms and emoji: the same scores."""
    reference = SentimentIntensityAnalyzer()
    linear = LinearVader()
    texts = [line.rsplit("\t", 1)[0] for line in TWEETS.read_text(encoding="utf-8").splitlines()[1:]]
    rng = random.Random(7)
    texts += [" ".join(rng.choice(MODIFIERS + LADEN) for _ in range(rng.randint(1, 30))) for _ in range(3000)]
    assert [linear.polarity_scores(text) for text in texts] == [reference.polarity_scores(t) for t in texts]


def test_linear_vader_looks_at_a_few_words_around_each_word_not_the_whole_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Why it is linear: the checks vaderSentiment runs for every sentiment-laden word see at most six words
    (three back, two ahead), whatever the length of the text: 5,000 negated emoji are 20,000 words."""
    seen: list[int] = []
    for name in ("_negation_check", "_special_idioms_check"):
        check = getattr(SentimentIntensityAnalyzer, name)

        def recording(*args: object, check: Any = check) -> float:
            seen.append(len(args[1]))  # type: ignore[arg-type]  # the word list
            return float(check(*args))

        monkeypatch.setattr(SentimentIntensityAnalyzer, name, staticmethod(recording))
    LinearVader().polarity_scores("not 😀 " * 5_000)
    assert len(seen) > 5_000 and max(seen) <= 6


async def test_a_long_text_never_holds_up_the_short_ones_queued_behind_it() -> None:
    registry = ModelRegistry(BUILTIN_MODELS, VADER_KEY, load_backend, BatchPolicy(), None)
    try:
        heavy = registry.vader.run(["😀" * 10_000, "😡" * 10_000])  # several hundred ms of VADER's own work
        heavy_task = asyncio.ensure_future(heavy)
        await asyncio.sleep(0)  # the long texts are queued first
        ordinary = await registry.vader.run(["the flight was fine, thanks"])
        assert not heavy_task.done()  # answered while the long texts are still being scored
        assert ordinary.scored == VaderBackend().predict(["the flight was fine, thanks"])
        await heavy_task
    finally:
        await registry.close()


async def test_a_request_mixing_long_and_short_texts_is_answered_in_input_order() -> None:
    registry = ModelRegistry(BUILTIN_MODELS, VADER_KEY, load_backend, BatchPolicy(), None)
    texts = ["good", "awful " * 300, "meh", "great! " * 200, "bad"]
    try:
        answer = await registry.vader.run(texts)
    finally:
        await registry.close()
    assert answer.scored == VaderBackend().predict(texts)
