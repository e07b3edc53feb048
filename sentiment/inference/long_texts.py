"""Texts longer than a model's window (512 tokens for the BERT family) and what the model is shown of them.

`head` (the default) keeps the first tokens, as the model's tokenizer would. `head_tail` keeps the first
quarter of the window from the start and the rest from the end: openings and conclusions carry most of a
text's sentiment (Sun et al., 2019, found 128 + 382 tokens the best cut for long reviews); it costs what
`head` costs.
`windows` scores every window (overlapping by an eighth) and averages their probabilities weighted by the
tokens each holds: the whole text counts, at the cost of one window per 448 new tokens (a 10,000-character
text is about 6 windows, so 6 times the work of a truncated one). Whatever the mode, an answer says
`truncated` when the model saw only part of its text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from sentiment.core.domain import Label, Scored
from sentiment.inference.labels import scored_from_probabilities

LongTexts = Literal["head", "head_tail", "windows"]
LONG_TEXT_MODES: tuple[LongTexts, ...] = get_args(LongTexts)
HEAD_SHARE = 0.25
WINDOW_OVERLAP_SHARE = 0.125


class Encoded(NamedTuple):
    """Model input rows for a list of texts: one row per text, or several for a text scored window by window.
    `owners[r]` is the text row r belongs to, `weights[r]` how many of the text's tokens it holds."""

    inputs: dict[str, Any]
    owners: np.ndarray
    weights: np.ndarray
    truncated: list[bool]


def first_rows(owners: np.ndarray) -> np.ndarray:
    """The first row of each text, when the tokenizer gave each its windows in order."""
    return np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])


def split_head_tail(offsets: Sequence[tuple[int, int]], room: int) -> tuple[int, int] | None:
    """Where to cut a text for `head_tail`, as character positions (end of the head, start of the tail), from
    the character offsets of its tokens; None when the text fits."""
    if len(offsets) <= room:
        return None
    head = max(1, int(room * HEAD_SHARE))
    tail = room - head
    return offsets[head - 1][1], offsets[len(offsets) - tail][0]


def pool(probabilities: np.ndarray, owners: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    """Each text's probabilities: the mean of its rows weighted by the tokens each row holds."""
    totals = np.zeros((count, probabilities.shape[1]))
    np.add.at(totals, owners, probabilities * weights[:, None])
    mass = np.zeros(count)
    np.add.at(mass, owners, weights)
    result: np.ndarray = totals / mass[:, None]
    return result


class LongTextEncoder:
    """Tokenizes a batch the way its mode asks, in one call to the (Rust) tokenizer for the common case."""

    def __init__(self, tokenizer: Any, max_length: int, mode: LongTexts) -> None:
        self._tokenizer = tokenizer
        self._max_length = max_length
        self._room = max_length - int(tokenizer.num_special_tokens_to_add(pair=False))
        self._mode = mode
        self._names = tuple(tokenizer.model_input_names)

    def encode(self, texts: Sequence[str]) -> Encoded:
        stride = max(1, int(self._room * WINDOW_OVERLAP_SHARE)) if self._mode == "windows" else 0
        encoded = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_overflowing_tokens=True,
            stride=stride,
            return_tensors="np",
        )
        owners = np.asarray(encoded["overflow_to_sample_mapping"])
        truncated = (np.bincount(owners, minlength=len(texts)) > 1).tolist()
        inputs = {name: encoded[name] for name in self._names if name in encoded}
        if self._mode != "windows":
            rows = first_rows(owners)
            inputs = {name: value[rows] for name, value in inputs.items()}
            owners = owners[rows]
            if self._mode == "head_tail" and any(truncated):
                self._cut_head_and_tail(texts, truncated, inputs)
        weights = inputs["attention_mask"].sum(axis=1).astype(np.float64)
        return Encoded(inputs, owners, weights, truncated)

    def scored(self, labels: Sequence[Label], probabilities: np.ndarray, encoded: Encoded) -> list[Scored]:
        count = len(encoded.truncated)
        if len(encoded.owners) != count:
            probabilities = pool(probabilities, encoded.owners, encoded.weights, count)
        return [
            scored_from_probabilities(labels, row, truncated)
            for row, truncated in zip(probabilities.tolist(), encoded.truncated, strict=True)
        ]

    def _cut_head_and_tail(self, texts: Sequence[str], truncated: list[bool], inputs: dict[str, Any]) -> None:
        """Replace the rows of the texts that did not fit by their head and tail (the rows are already the
        window's full width: a text that did not fit filled it)."""
        long = [index for index, cut in enumerate(truncated) if cut]
        offsets = self._tokenizer(
            [texts[index] for index in long],
            add_special_tokens=False,
            return_offsets_mapping=True,
            verbose=False,
        )["offset_mapping"]
        shortened = []
        for index, text_offsets in zip(long, offsets, strict=True):
            cut = split_head_tail(text_offsets, self._room)
            text = texts[index]
            shortened.append(text if cut is None else f"{text[: cut[0]]} {text[cut[1] :]}")
        again = self._tokenizer(
            shortened, padding="max_length", truncation=True, max_length=self._max_length, return_tensors="np"
        )
        for name, value in inputs.items():
            value[long] = again[name]
