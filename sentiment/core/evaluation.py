"""Scoring a model against gold labels: reading the gold column's values as labels, and the metrics.

The metrics follow scikit-learn's conventions so figures compare with published ones: per-class
precision, recall and F1 over the classes that occur in the gold labels or the predictions; a ratio with
nothing to divide by (precision of a class never predicted, recall of a class never in the gold labels)
counts as 0 in the macro averages, and is reported as undefined (None) per class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from sentiment.core.domain import LABELS, Label

_INDEX = {label: i for i, label in enumerate(LABELS)}

_WORDS: dict[str, Label] = {
    "negative": "negative",
    "neg": "negative",
    "-": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "neut": "neutral",
    "positive": "positive",
    "pos": "positive",
    "+": "positive",
}
# Numeric codings used by public corpora, recognised only when the column's set of values is exactly one of
# them: {0, 1} is SST-2's negative/positive, {0, 1, 2} TweetEval's, {-1, 0, 1} a signed scale, {0, 2, 4}
# Sentiment140's.
_NUMERIC: tuple[dict[str, Label], ...] = (
    {"0": "negative", "1": "positive"},
    {"0": "negative", "1": "neutral", "2": "positive"},
    {"-1": "negative", "0": "neutral", "1": "positive"},
    {"0": "negative", "2": "neutral", "4": "positive"},
    {"0": "negative", "4": "positive"},
)


class GoldLabels(msgspec.Struct, frozen=True):
    """How a gold column's values read as labels; `ignored` values (not sentiment labels) are left out of the
    metrics."""

    mapping: dict[str, Label]
    ignored: tuple[str, ...] = ()

    def label(self, value: str) -> Label | None:
        return self.mapping.get(value.strip().lower())


class UnreadableGold(ValueError):
    pass


def read_gold_values(values: Iterable[str]) -> GoldLabels:
    """Decide from every distinct value of a gold column how to read it (case and surrounding space
    ignored)."""
    distinct = sorted({value.strip().lower() for value in values} - {""})
    if not distinct:
        raise UnreadableGold("the gold column is empty")
    for coding in _NUMERIC:
        if set(distinct) == set(coding):
            return GoldLabels({value: coding[value] for value in distinct})
    mapping = {value: _WORDS[value] for value in distinct if value in _WORDS}
    ignored = tuple(value for value in distinct if value not in _WORDS)
    if not mapping:
        shown = ", ".join(repr(value) for value in distinct[:8])
        raise UnreadableGold(
            f"its values ({shown}) are not sentiment labels: use negative/neutral/positive (or neg/neu/pos, "
            "0/1 for negative/positive, 0/1/2 or -1/0/1 for negative/neutral/positive)"
        )
    return GoldLabels(mapping, ignored)


class Confusion(msgspec.Struct):
    """Counts of (gold, predicted) pairs; rows are gold labels, columns predicted, both in LABELS order."""

    counts: list[list[int]] = msgspec.field(default_factory=lambda: [[0] * len(LABELS) for _ in LABELS])

    def add(self, gold: Label, predicted: Label, count: int = 1) -> None:
        self.counts[_INDEX[gold]][_INDEX[predicted]] += count

    def add_pairs(self, pairs: Iterable[tuple[Label, Label]]) -> None:
        for gold, predicted in pairs:
            self.counts[_INDEX[gold]][_INDEX[predicted]] += 1

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts))


class ClassMetrics(msgspec.Struct, frozen=True):
    label: Label
    support: int  # gold rows of this class
    predicted: int  # rows predicted as this class
    precision: float | None  # None: never predicted
    recall: float | None  # None: not in the gold labels
    f1: float


class Metrics(msgspec.Struct, frozen=True):
    total: int
    accuracy: float
    macro_f1: float
    macro_recall: float
    macro_precision: float
    classes: list[ClassMetrics]
    confusion: list[list[int]]
    labels: tuple[Label, ...] = LABELS


def metrics(confusion: Confusion | Sequence[Sequence[int]]) -> Metrics:
    counts = confusion.counts if isinstance(confusion, Confusion) else [list(row) for row in confusion]
    total = sum(map(sum, counts))
    correct = sum(counts[i][i] for i in range(len(LABELS)))
    classes = []
    for i, label in enumerate(LABELS):
        support = sum(counts[i])
        predicted = sum(row[i] for row in counts)
        if not support and not predicted:
            continue
        precision = counts[i][i] / predicted if predicted else None
        recall = counts[i][i] / support if support else None
        p, r = precision or 0.0, recall or 0.0
        classes.append(
            ClassMetrics(label, support, predicted, precision, recall, 2 * p * r / (p + r) if p + r else 0.0)
        )

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return Metrics(
        total=total,
        accuracy=correct / total if total else 0.0,
        macro_f1=mean([c.f1 for c in classes]),
        macro_recall=mean([c.recall or 0.0 for c in classes]),
        macro_precision=mean([c.precision or 0.0 for c in classes]),
        classes=classes,
        confusion=counts,
    )


def missing_classes_note(model: str, model_labels: Sequence[str], confusion: Confusion) -> str | None:
    """Say so when gold rows belong to a class the model cannot answer (a binary model on 3-class gold)."""
    gold_rows = {label: sum(confusion.counts[_INDEX[label]]) for label in LABELS}
    missing = [(label, rows) for label, rows in gold_rows.items() if label not in model_labels and rows]
    if not missing or not model_labels:
        return None
    rows = ", ".join(f"{count:,} {label}" for label, count in missing)
    return (
        f"{model} answers only {'/'.join(model_labels)}: the gold rows of other classes ({rows}) "
        "can never be right, and they count as wrong in every figure."
    )


def format_report(name: str, figures: Metrics, note: str | None = None) -> str:
    """The plain-text report `sentiment eval` prints."""
    lines = [
        f"{name}: {figures.total:,} rows",
        f"  accuracy      {figures.accuracy:.4f}",
        f"  macro-F1      {figures.macro_f1:.4f}",
        f"  macro recall  {figures.macro_recall:.4f}",
        "",
        f"  {'class':<10}{'precision':>11}{'recall':>9}{'F1':>8}{'support':>9}",
    ]
    for c in figures.classes:
        precision = f"{c.precision:.4f}" if c.precision is not None else "-"
        recall = f"{c.recall:.4f}" if c.recall is not None else "-"
        lines.append(f"  {c.label:<10}{precision:>11}{recall:>9}{c.f1:>8.4f}{c.support:>9,}")
    lines += [
        "",
        "  confusion matrix (rows: gold, columns: predicted)",
        "  " + " " * 10 + "".join(f"{l:>10}" for l in LABELS),
    ]
    for label, row in zip(LABELS, figures.confusion, strict=True):
        lines.append(f"  {label:<10}" + "".join(f"{count:>10,}" for count in row))
    if note:
        lines += ["", f"  note: {note}"]
    return "\n".join(lines)


class Agreement(msgspec.Struct, frozen=True):
    """How often two models give a row the same label, and Cohen's kappa: that agreement beyond what their
    label shares alone would give by chance (1 complete, 0 chance, below 0 worse than chance)."""

    first: str
    second: str
    rows: int
    observed: float
    kappa: float | None  # None where chance agreement is already complete (both always say one label)


def agreement(first: str, second: str, table: Sequence[Sequence[int]]) -> Agreement | None:
    """From a table of (first's label, second's label) counts in LABELS order; None when it counts no row."""
    rows = sum(map(sum, table))
    if rows == 0:
        return None
    observed = sum(table[i][i] for i in range(len(LABELS))) / rows
    first_shares = [sum(table[i]) / rows for i in range(len(LABELS))]
    second_shares = [sum(row[j] for row in table) / rows for j in range(len(LABELS))]
    chance = sum(a * b for a, b in zip(first_shares, second_shares, strict=True))
    kappa = (observed - chance) / (1 - chance) if chance < 1 else None
    return Agreement(first, second, rows, observed, kappa)


class Disagreement(msgspec.Struct, frozen=True):
    """A row the models read differently: each model's label and polarity (positive minus negative
    probability, -1..1), and the spread of those polarities, the row's rank among disagreements."""

    line: int
    text: str
    labels: dict[str, str]
    polarity: dict[str, float]
    spread: float


def polarity(scores: Mapping[str, float]) -> float:
    return scores.get("positive", 0.0) - scores.get("negative", 0.0)


def most_disagreed(
    kept: Iterable[Disagreement], more: Iterable[Disagreement], keep: int
) -> list[Disagreement]:
    """The `keep` rows of both with the widest spread, widest first (earlier lines first among equals)."""
    return sorted([*kept, *more], key=lambda row: (-row.spread, row.line))[:keep]
