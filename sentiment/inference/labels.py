"""Map a model's own class names (`LABEL_0`, `POSITIVE`, `4 stars`...) onto negative/neutral/positive,
once, at load."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import cast

from sentiment.core.domain import Label, Scored

_NAMED: dict[str, Label] = {
    "negative": "negative",
    "neg": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "positive": "positive",
    "pos": "positive",
}
# Anonymous class indices follow the common conventions: binary SST-2 heads and 3-class tweet heads.
_BY_INDEX: dict[int, tuple[Label, ...]] = {
    2: ("negative", "positive"),
    3: ("negative", "neutral", "positive"),
}
_STARS = re.compile(r"^([1-5]) stars?$")
_INDEXED = re.compile(r"^(?:label_)?(\d+)$")


class UnmappableLabels(ValueError):
    pass


def map_labels(id2label: Mapping[int, str]) -> tuple[Label, ...]:
    """Return the service label of each class index, or raise naming the labels that cannot be mapped."""
    names = [str(id2label[i]).strip().lower() for i in sorted(id2label)]
    mapped = [_map_one(name, len(names)) for name in names]
    if any(label is None for label in mapped):
        raise UnmappableLabels(
            "cannot map the model's labels "
            f"{[id2label[i] for i in sorted(id2label)]} to negative/neutral/positive; "
            "use names like NEGATIVE/NEUTRAL/POSITIVE, LABEL_0..LABEL_2 or '1 star'..'5 stars'"
        )
    return tuple(label for label in mapped if label is not None)


def _map_one(name: str, class_count: int) -> Label | None:
    if name in _NAMED:
        return _NAMED[name]
    if stars := _STARS.match(name):
        return ("negative", "negative", "neutral", "positive", "positive")[int(stars.group(1)) - 1]
    if (indexed := _INDEXED.match(name)) and class_count in _BY_INDEX:
        index = int(indexed.group(1))
        return _BY_INDEX[class_count][index] if index < class_count else None
    return None


def scored_from_probabilities(
    class_labels: Sequence[Label], probabilities: Sequence[float], truncated: bool = False
) -> Scored:
    """Sum class probabilities per service label (two star classes make one label) and pick the largest."""
    scores: dict[str, float] = {}
    for label, probability in zip(class_labels, probabilities, strict=True):
        scores[label] = scores.get(label, 0.0) + float(probability)
    best = cast(Label, max(scores, key=scores.__getitem__))  # every key is one of class_labels
    return Scored(label=best, confidence=scores[best], scores=scores, truncated=truncated)
