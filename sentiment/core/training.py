"""Fine-tuning's plain parts: checking the labelled rows, the stratified split, the batch order, the
learning-rate schedule, early stopping and the time left. The training loop itself is in
`sentiment.inference.finetune`; everything here is decided before or between its steps."""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Sequence

import msgspec

from sentiment.core.domain import LABELS, InvalidInput, Label

MIN_ROWS_PER_LABEL = 20
# A new model's key is also its folder's name under SENTIMENT_MODELS_DIR.
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class Hyperparameters(msgspec.Struct, frozen=True):
    """What a strong practitioner would start with for a small BERT on a few thousand posts."""

    epochs: int = 2
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_share: float = 0.06
    max_length: int = 128
    # Epochs without a better validation macro-F1 before training stops (the best checkpoint is kept).
    patience: int = 2
    # Batches whose gradients add up before one optimiser step: the memory of `batch_size / accumulation`.
    accumulation: int = 1
    seed: int = 42
    validation_share: float = 0.1
    test_share: float = 0.1

    def checked(self) -> Hyperparameters:
        problems = [
            why
            for bad, why in (
                (self.epochs < 1, "epochs must be at least 1"),
                (self.batch_size < 1, "the batch size must be at least 1"),
                (not 0 < self.learning_rate < 1, "the learning rate must be between 0 and 1"),
                (not 8 <= self.max_length <= 512, "max length must be between 8 and 512 tokens"),
                (not 0 < self.validation_share < 0.5, "the validation share must be above 0 and below 0.5"),
                (not 0 < self.test_share < 0.5, "the test share must be above 0 and below 0.5"),
                (
                    self.validation_share + self.test_share >= 0.8,
                    "validation and test shares leave too little",
                ),
                (
                    self.accumulation < 1 or self.batch_size % self.accumulation,
                    "accumulation must divide batch",
                ),
            )
            if bad
        ]
        if problems:
            raise InvalidInput("; ".join(problems))
        return self


class StepReport(msgspec.Struct, frozen=True):
    """Where training is, reported after every optimiser step and every evaluation."""

    step: int
    total_steps: int
    epoch: int
    epochs: int
    loss: float | None
    validation_accuracy: float | None
    validation_macro_f1: float | None
    elapsed_s: float
    seconds_left: float | None


class Split(msgspec.Struct, frozen=True):
    """Row positions (in the labelled rows' order) of each part; fixed by the seed."""

    train: list[int]
    validation: list[int]
    test: list[int]

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def fingerprint(self) -> str:
        """Recorded in the model card: two models with the same fingerprint saw the same test rows."""
        digest = hashlib.sha256(msgspec.json.encode(self))
        return digest.hexdigest()[:16]


def check_name(name: str, taken: Sequence[str]) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise InvalidInput(
            f"model name {name!r}: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (it is the model's key and its folder's name)"
        )
    if name in taken:
        raise InvalidInput(f"model name {name!r} is taken: pick another --name")
    return name


def check_counts(labels: Sequence[Label]) -> list[Label]:
    """The labels the data teaches, in the service's order; refuses data too thin to learn from."""
    counts = Counter(labels)
    if len(counts) < 2:
        raise InvalidInput(
            f"the labels hold one class only ({', '.join(counts) or 'none'}): nothing to learn"
        )
    thin = [f"{label} has {counts[label]}" for label in LABELS if 0 < counts[label] < MIN_ROWS_PER_LABEL]
    if thin:
        raise InvalidInput(
            f"too few rows per label ({'; '.join(thin)}): each label needs at least {MIN_ROWS_PER_LABEL}"
        )
    return [label for label in LABELS if counts[label]]


def stratified_split(labels: Sequence[Label], validation_share: float, test_share: float, seed: int) -> Split:
    """Each label's rows are shuffled by the seed and cut in the same shares, so each part keeps the data's
    label proportions; every label has at least one row in each part."""
    rng = random.Random(seed)
    train: list[int] = []
    validation: list[int] = []
    test: list[int] = []
    for label in LABELS:
        rows = [i for i, value in enumerate(labels) if value == label]
        if not rows:
            continue
        rng.shuffle(rows)
        n_test = max(1, round(len(rows) * test_share))
        n_validation = max(1, round(len(rows) * validation_share))
        test += rows[:n_test]
        validation += rows[n_test : n_test + n_validation]
        train += rows[n_test + n_validation :]
    return Split(sorted(train), sorted(validation), sorted(test))


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of rows of similar length (little padding), in a random order: rows are shuffled, cut into
    windows of 50 batches, sorted by length within each window, and the batches shuffled again."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        part = sorted(order[start : start + window], key=lambda i: lengths[i], reverse=True)
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def learning_rate_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warm-up to the full rate, then linear decay to zero at the last step."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    remaining = total_steps - step
    return max(0.0, remaining / max(1, total_steps - warmup_steps))


def warmup_steps(total_steps: int, share: float) -> int:
    return max(1, math.ceil(total_steps * share))


class EarlyStopping:
    """Keeps the best validation macro-F1 and says when `patience` evaluations have not beaten it."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._since_best = 0

    def improved(self, score: float, epoch: int) -> bool:
        if self.best is None or score > self.best:
            self.best, self.best_epoch, self._since_best = score, epoch, 0
            return True
        self._since_best += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self._since_best >= self.patience


def seconds_left(elapsed_s: float, steps_done: int, total_steps: int) -> float | None:
    if steps_done <= 0:
        return None
    return elapsed_s / steps_done * (total_steps - steps_done)
