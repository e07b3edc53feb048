import pytest

from sentiment.inference.labels import UnmappableLabels, map_labels, scored_from_probabilities


@pytest.mark.parametrize(
    ("id2label", "expected"),
    [
        ({0: "LABEL_0", 1: "LABEL_1"}, ("negative", "positive")),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ("negative", "neutral", "positive")),
        ({0: "NEGATIVE", 1: "POSITIVE"}, ("negative", "positive")),
        ({0: "negative", 1: "neutral", 2: "positive"}, ("negative", "neutral", "positive")),
        ({0: "Neg", 1: "Neu", 2: "Pos"}, ("negative", "neutral", "positive")),
        (
            {0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
            ("negative", "negative", "neutral", "positive", "positive"),
        ),
        ({1: "POSITIVE", 0: "NEGATIVE"}, ("negative", "positive")),
    ],
)
def test_maps_each_label_style_by_class_index(id2label: dict[int, str], expected: tuple[str, ...]) -> None:
    assert map_labels(id2label) == expected


@pytest.mark.parametrize(
    "id2label", [{0: "joy", 1: "anger"}, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2", 3: "LABEL_3"}]
)
def test_refuses_labels_it_cannot_map_and_names_them(id2label: dict[int, str]) -> None:
    with pytest.raises(UnmappableLabels) as refused:
        map_labels(id2label)
    assert all(name in str(refused.value) for name in id2label.values())


def test_star_probabilities_are_summed_per_label_and_the_largest_sum_wins() -> None:
    stars = ("negative", "negative", "neutral", "positive", "positive")
    scored = scored_from_probabilities(stars, [0.3, 0.25, 0.05, 0.2, 0.2])
    assert scored.label == "negative"
    assert scored.scores == pytest.approx({"negative": 0.55, "neutral": 0.05, "positive": 0.4})
    assert scored.confidence == pytest.approx(0.55)
