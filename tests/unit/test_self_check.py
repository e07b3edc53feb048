"""The fast-path self-check as plain logic: the built-in sample, agreement with fp32, the accuracy bound."""

from collections import Counter

import pytest

from sentiment.core.domain import Label, Scored
from sentiment.inference.self_check import SAMPLE, SAMPLE_LABELS, Verdict, margin

pytestmark = pytest.mark.unit

OTHER: dict[str, Label] = {"negative": "positive", "positive": "negative", "neutral": "negative"}


def clear(label: str, labels: tuple[str, ...] = ("negative", "neutral", "positive")) -> Scored:
    """An answer well clear of a tie."""
    scores = {name: (0.9 if name == label else 0.1 / (len(labels) - 1)) for name in labels}
    return Scored(label, 0.9, scores)  # type: ignore[arg-type]


def test_the_sample_holds_distinct_texts_of_every_label() -> None:
    texts = [text for text, _ in SAMPLE]
    assert len(texts) == len(set(texts)) == 2115
    assert Counter(SAMPLE_LABELS) == {"positive": 907, "negative": 906, "neutral": 302}


def test_margin_is_the_lead_over_the_runner_up() -> None:
    assert margin(
        Scored("positive", 0.6, {"negative": 0.1, "neutral": 0.3, "positive": 0.6})
    ) == pytest.approx(0.3)
    assert margin(Scored("positive", 1.0, {"positive": 1.0})) == 1.0


def test_one_label_in_a_hundred_changed_passes_and_two_are_refused() -> None:
    gold = ["positive", "negative"] * 50
    reference = [clear(label) for label in gold]
    one = [clear(OTHER[label]) if i == 7 else clear(label) for i, label in enumerate(gold)]
    two = [clear(OTHER[label]) if i in (7, 8) else clear(label) for i, label in enumerate(gold)]
    assert Verdict.of(reference, one, gold).agreement == 0.99
    # One wrong of 100 is an accuracy drop of 0.01 on its own: the accuracy bound refuses it, not agreement.
    assert "accuracy" in (Verdict.of(reference, one, gold).refusal() or "")
    refused = Verdict.of(reference, two, gold).refusal()
    assert refused is not None and "agreed with fp32 on 98.0% of the 100" in refused


def test_a_path_that_flips_two_percent_of_the_sample_is_refused() -> None:
    reference = [clear(label) for label in SAMPLE_LABELS]
    flipped = [clear(OTHER[label]) if i % 50 == 0 else clear(label) for i, label in enumerate(SAMPLE_LABELS)]
    verdict = Verdict.of(reference, flipped)
    assert verdict.agreement == pytest.approx(1 - 43 / 2115)
    assert verdict.refusal() is not None
    assert Verdict.of(reference, reference).refusal() is None


def test_changes_that_fix_mistakes_pass_and_changes_that_cost_accuracy_do_not() -> None:
    gold = ["positive"] * 1000
    reference = [clear("negative") if i < 100 else clear("positive") for i in range(1000)]
    fixes = [clear("positive")] * 1000  # 10% disagreement: refused on agreement even so
    assert "agreed" in (Verdict.of(reference, fixes, gold).refusal() or "")
    costs = [clear("negative") if i < 108 else clear("positive") for i in range(1000)]  # 8 more mistakes
    verdict = Verdict.of(reference, costs, gold)
    assert (verdict.agreement, verdict.accuracy, verdict.reference_accuracy) == (0.992, 0.892, 0.9)
    assert "accuracy on the 1000 self-check texts was 0.892 against fp32's 0.900" in (verdict.refusal() or "")
    costs_less = [clear("negative") if i < 104 else clear("positive") for i in range(1000)]
    assert Verdict.of(reference, costs_less, gold).refusal() is None  # 0.004 lower: allowed


def test_near_ties_and_labels_the_model_lacks_are_left_out() -> None:
    binary = ("negative", "positive")
    gold = ["positive"] * 98 + ["neutral", "positive"]
    tie = Scored("positive", 0.52, {"negative": 0.48, "positive": 0.52})
    reference = [clear("positive", binary)] * 98 + [clear("positive", binary), tie]
    candidate = [clear("positive", binary)] * 98 + [clear("negative", binary), clear("negative", binary)]
    verdict = Verdict.of(reference, candidate, gold)
    assert (verdict.agreement, verdict.ties, verdict.texts) == (1.0, 2, 100)
    assert verdict.refusal() is None
