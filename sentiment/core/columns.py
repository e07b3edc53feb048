"""Guessing a data set's columns from its header and first rows, so the column picker opens on the obvious
choice: the texts, a column of times, a low-cardinality column to group by, a column of gold labels. Plain
logic over the values; the researcher confirms or changes every guess."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from sentiment.core.domain import LABELS
from sentiment.core.evaluation import UnreadableGold, read_gold_values
from sentiment.core.timeparse import NoTimeFormat, detect_format

TEXT_NAMES = ("text", "tweet", "review", "sentence", "content", "body", "message")
TIME_NAMES = ("created", "time", "date", "timestamp")
GOLD_NAMES = ("sentiment", "label", "gold", "polarity", "class")
# A column to group by: a few distinct values, each short (airline, country, product), seen again and again.
MAX_GROUPS = 50
MAX_GROUP_LENGTH = 40


class ColumnGuess(msgspec.Struct, frozen=True):
    text: str
    time: str = ""
    group: str = ""
    gold: str = ""
    gold_labels: tuple[str, ...] = ()  # the labels the guessed gold column holds, in LABELS order


def by_name(columns: Sequence[str], names: Sequence[str]) -> str | None:
    """The column named exactly one of `names` (case aside), else the first whose name holds one."""
    lowered = [column.lower() for column in columns]
    for name in names:
        if name in lowered:
            return columns[lowered.index(name)]
    for name in names:
        for column, low in zip(columns, lowered, strict=True):
            if name in low:
                return column
    return None


def gold_labels(values: Sequence[str]) -> tuple[str, ...] | None:
    """The labels a column's values read as (None when they are not sentiment labels, or ignore most)."""
    try:
        gold = read_gold_values(values)
    except UnreadableGold:
        return None
    if len(gold.ignored) > len(gold.mapping):
        return None
    present = {gold.mapping[v.strip().lower()] for v in values if v.strip().lower() in gold.mapping}
    return tuple(label for label in LABELS if label in present) or None


def guess_columns(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> ColumnGuess:
    """The likely role of each column from its name and its values in `rows` (the first rows of the file)."""

    def values(column: str) -> list[str]:
        index = columns.index(column)
        return [row[index] for row in rows if index < len(row)]

    def longest_average(column: str) -> float:
        found = [v for v in values(column) if v.strip()]
        return sum(map(len, found)) / len(found) if found else 0.0

    def reads_as_times(column: str) -> bool:
        found = [v for v in values(column) if v.strip()]
        if not found:
            return False
        try:
            fmt = detect_format(found)
        except NoTimeFormat:
            return False
        readable = 0
        for value in found:
            try:
                fmt.parse(value.strip())
                readable += 1
            except (ValueError, OverflowError):
                pass
        # Mostly readable, and not bare small numbers (counts and ids read as Unix times).
        return readable >= 0.9 * len(found) and any(not v.strip().isdigit() for v in found)

    times = {column for column in columns if reads_as_times(column)}
    text = by_name(columns, TEXT_NAMES) or max(
        [c for c in columns if c not in times] or columns, key=longest_average
    )
    rest = [c for c in columns if c != text]
    named_time = by_name(rest, TIME_NAMES)
    time = next((c for c in ([named_time] if named_time else []) + rest if c in times), "")

    gold = ""
    labels: tuple[str, ...] = ()
    candidates = [c for c in rest if c != time]
    named_gold = [c for c in candidates if any(n in c.lower() for n in GOLD_NAMES)]
    for column in named_gold + [c for c in candidates if c not in named_gold]:
        found = gold_labels([v for v in values(column) if v.strip()])
        if found is not None and len(found) >= 2:
            gold, labels = column, found
            break

    def groups_well(column: str) -> bool:
        found = [v.strip() for v in values(column) if v.strip()]
        distinct = set(found)
        return (
            len(found) >= 0.8 * len(rows)
            and 2 <= len(distinct) <= min(MAX_GROUPS, max(2, len(found) // 3))
            and max(map(len, distinct)) <= MAX_GROUP_LENGTH
            and not all(v.replace(".", "", 1).lstrip("-").isdigit() for v in distinct)
        )

    group = next((c for c in candidates if c != gold and groups_well(c)), "")
    return ColumnGuess(text, time, group, gold, labels)


def label_mismatch(model: str, model_labels: Sequence[str], gold: Sequence[str]) -> str | None:
    """Said before scoring: gold labels the model never gives, whose rows it can never get right."""
    if not model_labels or not gold:
        return None
    missing = [label for label in gold if label not in model_labels]
    if not missing:
        return None
    return (
        f"{model} answers {' or '.join(model_labels)} only: the gold column's {' and '.join(missing)} rows "
        f"can never be right, and its accuracy will read low for that alone. A model with "
        f"{', '.join(gold)} labels compares fairly."
    )


def covering_model(
    offered: Sequence[str], labels: Mapping[str, Sequence[str]], gold: Sequence[str], preferred: str
) -> str:
    """The model to start from: `preferred` when it gives every gold label, else the first offered that does
    (VADER gives all three), else `preferred`."""

    def covers(key: str) -> bool:
        return set(gold) <= set(labels.get(key, ()))

    if not gold or covers(preferred):
        return preferred
    return next((key for key in offered if covers(key)), preferred)
