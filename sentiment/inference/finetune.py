"""Fine-tuning a transformers classifier on labelled texts: plain torch, AdamW with warm-up and linear decay,
length-grouped batches, early stopping on validation macro-F1 with the best weights kept, autocast on a GPU.
Runs on the calling thread; progress and cancellation go through the callbacks it is given."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as transformers_logging

from sentiment.core.domain import Label, ModelLoadError, SentimentError, first_line
from sentiment.core.evaluation import Confusion, Metrics, metrics
from sentiment.core.training import (
    EarlyStopping,
    Hyperparameters,
    StepReport,
    learning_rate_factor,
    length_grouped_batches,
    seconds_left,
    warmup_steps,
)
from sentiment.inference.labels import UnmappableLabels, map_labels

EVAL_BATCH = 64
transformers_logging.disable_progress_bar()


class TrainingCancelled(SentimentError):
    def __init__(self) -> None:
        super().__init__("training was cancelled")


class Labelled(msgspec.Struct, frozen=True):
    texts: list[str]
    labels: list[Label]


class FineTuned(msgspec.Struct, frozen=True):
    best_epoch: int
    epochs_run: int
    steps: int
    validation: Metrics
    new_head: bool
    device: str


Progress = Callable[[StepReport], None]


def fine_tune(
    base: str,
    labels: Sequence[Label],
    train: Labelled,
    validation: Labelled,
    target: Path,
    options: Hyperparameters,
    device: str = "cpu",
    threads: int | None = None,
    on_progress: Progress = lambda _report: None,
    cancelled: threading.Event | None = None,
) -> FineTuned:
    """Train `base` (a local folder) on `train`, keep the weights with the best validation macro-F1 and
    save them with the tokenizer to `target`. A base whose labels are not `labels` gets a new head."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
    torch.manual_seed(options.seed)
    tokenizer, model, new_head = _load(base, labels)
    torch.nn.Module.to(model, device)  # PreTrainedModel.to's typing wrapper hides the module's own
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": options.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=options.learning_rate,
    )
    index = {label: i for i, label in enumerate(labels)}
    gold = torch.tensor([index[label] for label in train.labels])
    lengths = [len(text) for text in train.texts]
    batches_per_epoch = len(length_grouped_batches(lengths, options.batch_size, 0))
    total_steps = batches_per_epoch * options.epochs
    warmup = warmup_steps(total_steps, options.warmup_share)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, total_steps, warmup)
    )
    stopping = EarlyStopping(options.patience)
    best_state: dict[str, torch.Tensor] | None = None
    best: Metrics | None = None
    started, step, epoch = time.perf_counter(), 0, 0
    loss_sum, loss_count = 0.0, 0

    def report(loss: float | None, scores: Metrics | None) -> None:
        elapsed = time.perf_counter() - started
        on_progress(
            StepReport(
                step,
                total_steps,
                epoch,
                options.epochs,
                loss,
                scores.accuracy if scores else None,
                scores.macro_f1 if scores else None,
                elapsed,
                seconds_left(elapsed, step, total_steps),
            )
        )

    for epoch in range(1, options.epochs + 1):
        model.train()
        for batch in length_grouped_batches(lengths, options.batch_size, options.seed + epoch):
            if cancelled is not None and cancelled.is_set():
                raise TrainingCancelled()
            micro = options.batch_size // options.accumulation
            for start in range(0, len(batch), micro):
                rows = batch[start : start + micro]
                encoded = tokenizer(
                    [train.texts[i] for i in rows],
                    truncation=True,
                    max_length=options.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(device)
                # bf16 autocast on a GPU; float32 on a CPU, where bf16 matmuls are slow on most machines.
                with (
                    torch.autocast("cuda", dtype=torch.bfloat16)
                    if device == "cuda"
                    else contextlib.nullcontext()
                ):
                    logits = model(**encoded).logits
                loss = torch.nn.functional.cross_entropy(logits.float(), gold[rows].to(device))
                (loss * len(rows) / len(batch)).backward()
                loss_sum, loss_count = loss_sum + loss.item() * len(rows), loss_count + len(rows)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            report(loss_sum / loss_count, best)
        scores = _evaluate(model, tokenizer, validation, labels, options.max_length, device)
        if stopping.improved(scores.macro_f1, epoch):
            best = scores
            best_state = {
                name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()
            }
        report(loss_sum / max(loss_count, 1), scores)
        loss_sum, loss_count = 0.0, 0
        if stopping.should_stop:
            break
    assert best_state is not None and best is not None and stopping.best_epoch is not None
    model.load_state_dict(best_state)
    torch.nn.Module.to(model, "cpu")
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return FineTuned(stopping.best_epoch, epoch, step, best, new_head, device)


def _load(base: str, labels: Sequence[Label]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, bool]:
    """The base's tokenizer and model, with a head for `labels`: the base's own when it answers exactly
    those labels (its weights carry over), else a new one."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            base, local_files_only=True, dtype=torch.float32
        )
    except OSError as error:
        raise ModelLoadError(f"the base model {base!r} cannot be loaded: {first_line(error)}") from error
    try:
        base_labels = map_labels(model.config.id2label)
    except UnmappableLabels:
        base_labels = ()
    if tuple(base_labels) == tuple(labels):
        model.config.id2label = dict(enumerate(labels))
        model.config.label2id = {label: i for i, label in enumerate(labels)}
        return tokenizer, model, False
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        local_files_only=True,
        dtype=torch.float32,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )
    return tokenizer, model, True


@torch.inference_mode()
def _evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: Labelled,
    labels: Sequence[Label],
    max_length: int,
    device: str,
) -> Metrics:
    model.eval()
    confusion = Confusion()
    order = sorted(range(len(data.texts)), key=lambda i: len(data.texts[i]))
    for start in range(0, len(order), EVAL_BATCH):
        rows = order[start : start + EVAL_BATCH]
        encoded = tokenizer(
            [data.texts[i] for i in rows],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        predicted = model(**encoded).logits.argmax(dim=-1).tolist()
        confusion.add_pairs((data.labels[i], labels[p]) for i, p in zip(rows, predicted, strict=True))
    model.train()
    return metrics(confusion)
