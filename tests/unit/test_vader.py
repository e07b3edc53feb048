import pytest

from sentiment.inference.vader import VaderBackend, scored_from_vader


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
