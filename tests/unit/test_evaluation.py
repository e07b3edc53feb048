"""Gold labels read from a column, and the metrics against them (scikit-learn's conventions, exactly)."""

import pytest

from sentiment.core.evaluation import (
    Confusion,
    Disagreement,
    UnreadableGold,
    agreement,
    format_report,
    metrics,
    missing_classes_note,
    most_disagreed,
    polarity,
    read_gold_values,
)


def test_label_words_are_read_whatever_their_case_or_spacing() -> None:
    gold = read_gold_values(["Negative", " neutral ", "POSITIVE", "neg", "pos", "neu"])
    assert [gold.label(v) for v in ["negative ", "Neutral", "positive", "NEG", "pos", "neu"]] == [
        "negative",
        "neutral",
        "positive",
        "negative",
        "positive",
        "neutral",
    ]
    assert gold.label("") is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["0", "1"], {"0": "negative", "1": "positive"}),
        (["0", "1", "2"], {"0": "negative", "1": "neutral", "2": "positive"}),
        (["-1", "0", "1"], {"-1": "negative", "0": "neutral", "1": "positive"}),
        (["0", "2", "4"], {"0": "negative", "2": "neutral", "4": "positive"}),
    ],
)
def test_numeric_codings_are_read_only_when_the_whole_set_of_values_is_one(
    values: list[str], expected: dict
) -> None:
    assert read_gold_values(values + [""]).mapping == expected


@pytest.mark.parametrize("values", [["1", "2"], ["1", "2", "3", "4", "5"], ["0"]])
def test_ambiguous_numbers_are_refused_with_the_codings_that_are_understood(values: list[str]) -> None:
    with pytest.raises(UnreadableGold, match="0/1/2 or -1/0/1"):
        read_gold_values(values)


def test_values_that_are_not_labels_are_set_aside_not_guessed() -> None:
    gold = read_gold_values(["positive", "negative", "mixed"])
    assert gold.ignored == ("mixed",)
    assert gold.label("mixed") is None
    with pytest.raises(UnreadableGold, match="empty"):
        read_gold_values(["", " "])


def test_three_class_metrics_match_scikit_learn() -> None:
    # Checked against sklearn.metrics.precision_recall_fscore_support on the same pairs.
    confusion = Confusion([[3, 1, 0], [1, 1, 1], [0, 1, 2]])
    figures = metrics(confusion)
    assert figures.total == 10
    assert figures.accuracy == pytest.approx(0.6)
    negative, neutral, positive = figures.classes
    assert (negative.precision, negative.recall) == (pytest.approx(0.75), pytest.approx(0.75))
    assert (neutral.precision, neutral.recall) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert (positive.precision, positive.recall) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert figures.macro_recall == pytest.approx((0.75 + 1 / 3 + 2 / 3) / 3)
    assert figures.macro_f1 == pytest.approx((0.75 + 1 / 3 + 2 / 3) / 3)
    assert figures.confusion == [[3, 1, 0], [1, 1, 1], [0, 1, 2]]


def test_a_binary_model_on_three_class_gold_is_scored_honestly() -> None:
    confusion = Confusion()
    confusion.add_pairs(
        [("negative", "negative")] * 4
        + [("neutral", "negative")] * 2
        + [("neutral", "positive")] * 2
        + [("positive", "positive")] * 2
    )
    figures = metrics(confusion)
    neutral = figures.classes[1]
    assert (neutral.label, neutral.support, neutral.predicted) == ("neutral", 4, 0)
    assert neutral.precision is None and neutral.recall == 0.0 and neutral.f1 == 0.0
    assert figures.accuracy == pytest.approx(0.6)
    # Neutral counts, as zero, in every macro average (scikit-learn's zero_division=0).
    assert figures.macro_recall == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    note = missing_classes_note("minilm-sst2", ("negative", "positive"), confusion)
    assert note is not None and "4 neutral" in note and "never be right" in note
    assert missing_classes_note("vader", ("negative", "neutral", "positive"), confusion) is None


def test_a_class_absent_from_gold_and_predictions_is_left_out() -> None:
    confusion = Confusion()
    confusion.add_pairs([("negative", "negative"), ("positive", "positive"), ("positive", "negative")])
    figures = metrics(confusion)
    assert [c.label for c in figures.classes] == ["negative", "positive"]
    assert figures.macro_recall == pytest.approx((1.0 + 0.5) / 2)
    assert figures.macro_f1 == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_no_rows_give_zeros_not_an_error() -> None:
    figures = metrics(Confusion())
    assert (figures.total, figures.accuracy, figures.macro_f1, figures.classes) == (0, 0.0, 0.0, [])


def test_the_printed_report_has_the_headline_figures_and_the_matrix() -> None:
    report = format_report("m on data", metrics(Confusion([[3, 1, 0], [1, 1, 1], [0, 1, 2]])), "a note")
    assert "accuracy      0.6000" in report
    assert "macro recall  0.5833" in report
    assert "  negative           3         1         0" in report
    assert report.endswith("note: a note")


def test_agreement_and_kappa_of_a_textbook_table() -> None:
    # 50 rows: both say negative on 20, both positive on 15, they differ on 15: observed 0.7. The first says
    # negative on 25, the second on 30: chance 25/50 * 30/50 + 25/50 * 20/50 = 0.5, kappa (0.7 - 0.5) / 0.5.
    table = [[20, 0, 5], [0, 0, 0], [10, 0, 15]]
    found = agreement("a", "b", table)
    assert found is not None
    assert (found.first, found.second, found.rows, found.observed) == ("a", "b", 50, 0.7)
    assert found.kappa == pytest.approx(0.4)


def test_kappa_is_one_for_full_agreement_zero_at_chance_and_undefined_when_chance_is_certain() -> None:
    full = agreement("a", "b", [[3, 0, 0], [0, 4, 0], [0, 0, 5]])
    chance = agreement("a", "b", [[1, 0, 1], [0, 0, 0], [1, 0, 1]])
    certain = agreement("a", "b", [[0, 0, 0], [0, 0, 0], [0, 0, 9]])
    assert full is not None and full.kappa == 1.0
    assert chance is not None and chance.kappa == 0.0
    assert certain is not None and (certain.observed, certain.kappa) == (1.0, None)
    assert agreement("a", "b", [[0] * 3] * 3) is None


def test_the_widest_disagreements_are_kept_widest_first() -> None:
    def row(line: int, spread: float) -> Disagreement:
        return Disagreement(
            line, f"text {line}", {"a": "negative", "b": "positive"}, {"a": 0.0, "b": spread}, spread
        )

    kept = most_disagreed([row(2, 0.5), row(3, 0.9)], [row(7, 0.7), row(5, 0.9), row(9, 0.1)], keep=3)
    assert [r.line for r in kept] == [3, 5, 7]  # equal spreads: the earlier line first
    assert polarity({"negative": 0.2, "neutral": 0.1, "positive": 0.7}) == pytest.approx(0.5)
    assert polarity({"negative": 0.9, "positive": 0.1}) == pytest.approx(-0.8)
