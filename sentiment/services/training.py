"""Adapting a model to a researcher's own labels: read and check the labelled rows, split them, fine-tune,
test the base model, the new one and VADER on the held-out rows, and leave a model folder with its card
under SENTIMENT_MODELS_DIR, where the catalogue finds it (now, and at every start)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import shutil
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import msgspec
import structlog

from sentiment.core.clock import WallClock, utc_now
from sentiment.core.domain import VADER_KEY, Conflict, InvalidInput, Label, first_line
from sentiment.core.evaluation import (
    Confusion,
    Metrics,
    UnreadableGold,
    format_report,
    metrics,
    read_gold_values,
)
from sentiment.core.tasks import cancel_and_wait
from sentiment.core.training import Hyperparameters, StepReport, check_counts, check_name, stratified_split
from sentiment.inference.catalogue import BUILTIN_MODELS, TRAINING_CARD, ModelSpec
from sentiment.inference.memory import peak_rss_mb
from sentiment.inference.registry import ModelEntry, load_backend
from sentiment.services.offline import ModelSettings, resolve_model
from sentiment.services.tabular import Row, open_table, read_rows

if TYPE_CHECKING:
    from sentiment.inference.finetune import Labelled

log = structlog.get_logger(__name__)

Phase = Literal["reading", "training", "testing", "saving", "done", "failed", "cancelled"]
TEST_BATCH = 64
# A run's partial folder exists from the end of its training until its card is written: minutes, not hours.
ABANDONED_AFTER_S = 3600.0


class TrainingRequest(msgspec.Struct, frozen=True):
    source: str  # a CSV, TSV or Parquet file
    text_column: str
    label_column: str
    base: str  # a configured model key or a model folder
    name: str
    options: Hyperparameters = Hyperparameters()
    data_name: str | None = None  # what the report calls the data (a data set's name); else the file's name


class ModelScores(msgspec.Struct, frozen=True):
    model: str
    role: Literal["base", "new", "vader"]
    figures: Metrics
    # The service labels the model answers with: a binary base cannot say neutral.
    labels: tuple[str, ...]


class TrainingReport(msgspec.Struct, frozen=True):
    """The model card: everything needed to know what the model is and to train it again."""

    name: str
    folder: str
    base: str
    base_source: str
    data: str
    data_sha256: str
    text_column: str
    label_column: str  # the labels came from this column (a gold column, or another model's answers)
    label_mapping: dict[str, str]  # the column's values -> service labels
    ignored_values: list[str]
    labels: list[str]
    rows_used: int
    rows_skipped: int
    split: dict[str, int]
    split_fingerprint: str
    hyperparameters: Hyperparameters
    new_head: bool
    best_epoch: int
    epochs_run: int
    steps: int
    validation: Metrics
    test: list[ModelScores]
    started_at: datetime
    duration_s: float
    peak_rss_mb: float
    machine: dict[str, str]

    def scores(self, role: str) -> ModelScores | None:
        return next((scores for scores in self.test if scores.role == role), None)


class LabelledRows(msgspec.Struct, frozen=True):
    texts: list[str]
    labels: list[Label]
    mapping: dict[str, str]
    ignored: list[str]
    skipped: int


def read_labelled(source: Path, text_column: str, label_column: str) -> LabelledRows:
    """The rows with a text and a label that reads as a sentiment; the others are counted as skipped."""
    table = open_table(source)
    text_at = table.index(text_column, "text")
    label_at = table.index(label_column, "label")
    rows = [row for row in read_rows(table) if isinstance(row, Row)]
    try:
        gold = read_gold_values(row.values[label_at] for row in rows)
    except UnreadableGold as error:
        raise InvalidInput(f"label column {label_column!r}: {error}") from None
    texts: list[str] = []
    labels: list[Label] = []
    for row in rows:
        label = gold.label(row.values[label_at])
        if label is not None and row.values[text_at].strip():
            texts.append(row.values[text_at])
            labels.append(label)
    return LabelledRows(texts, labels, dict(gold.mapping), list(gold.ignored), len(rows) - len(texts))


def base_folder(settings: ModelSettings, catalogue: Sequence[ModelSpec], base: str) -> tuple[ModelSpec, str]:
    """The base model's spec (a catalogued key, or a folder) and the folder its weights are in; refused
    before any training starts."""
    spec = next((known for known in catalogue if known.key == base), None) or resolve_model(settings, base)[1]
    if spec.kind != "transformers":
        raise InvalidInput(
            f"base model {spec.key!r} is a {spec.kind} model; fine-tuning needs a transformers one"
        )
    folder = spec.source if Path(spec.source).is_dir() else ModelEntry(spec).download_folder()
    if folder is None:
        raise InvalidInput(
            f"base model {spec.key!r} ({spec.source}) is not downloaded: "
            f"`sentiment models pull {spec.key}` first"
        )
    return spec, folder


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Trainer:
    """One training run, on the calling thread: `run` checks everything, trains, tests and saves."""

    def __init__(
        self,
        settings: ModelSettings,
        models_dir: Path,
        request: TrainingRequest,
        catalogue: Sequence[ModelSpec],
        clock: WallClock = utc_now,
        on_step: Callable[[StepReport], None] = lambda _step: None,
    ) -> None:
        self.on_step = on_step
        self.settings = settings
        self.models_dir = models_dir
        self.request = request
        self.catalogue = catalogue
        self.clock = clock
        self.phase: Phase = "reading"
        self.step: StepReport | None = None
        self.cancelled = threading.Event()

    def check(self) -> tuple[ModelSpec, str]:
        """What can be refused without reading every row: the name, the settings, the base model and the
        columns. Returns the base's spec and its weights' folder."""
        request = self.request
        check_name(request.name, [spec.key for spec in self.catalogue])
        if (self.models_dir / request.name).exists():
            raise InvalidInput(
                f"model name {request.name!r} is taken: {self.models_dir / request.name} exists; pick another"
            )
        request.options.checked()
        base = base_folder(self.settings, self.catalogue, request.base)
        table = open_table(request.source)
        table.index(request.text_column, "text")
        table.index(request.label_column, "label")
        return base

    def run(self) -> TrainingReport:
        from sentiment.inference.finetune import Labelled, fine_tune
        from sentiment.inference.paths import resolve_device

        request, options = self.request, self.request.options
        started, started_at = time.perf_counter(), self.clock()
        base, base_source = self.check()
        target = self.models_dir / request.name
        source = Path(request.source)
        rows = read_labelled(source, request.text_column, request.label_column)
        labels = check_counts(rows.labels)
        split = stratified_split(rows.labels, options.validation_share, options.test_share, options.seed)
        device = resolve_device(self.settings.device)

        def part(positions: list[int]) -> Labelled:
            return Labelled([rows.texts[i] for i in positions], [rows.labels[i] for i in positions])

        self.phase = "training"
        partial = self.models_dir / f".{request.name}.partial-{uuid.uuid4().hex[:8]}"
        try:
            tuned = fine_tune(
                base_source,
                labels,
                part(split.train),
                part(split.validation),
                partial,
                options,
                device,
                self.settings.torch_threads,
                on_progress=self._progress,
                cancelled=self.cancelled,
            )
            self.phase = "testing"
            test = part(split.test)
            scores = [
                self._score(request.name, "new", ModelSpec(request.name, str(partial)), test),
                self._score(base.key, "base", msgspec.structs.replace(base, source=base_source), test),
                self._score(VADER_KEY, "vader", next(s for s in BUILTIN_MODELS if s.key == VADER_KEY), test),
            ]
            self.phase = "saving"
            report = TrainingReport(
                name=request.name,
                folder=str(target.resolve()),
                base=base.key,
                base_source=base_source,
                data=request.data_name or source.name,
                data_sha256=file_sha256(source),
                text_column=request.text_column,
                label_column=request.label_column,
                label_mapping=rows.mapping,
                ignored_values=rows.ignored,
                labels=list(labels),
                rows_used=len(rows.texts),
                rows_skipped=rows.skipped,
                split=split.sizes,
                split_fingerprint=split.fingerprint(),
                hyperparameters=options,
                new_head=tuned.new_head,
                best_epoch=tuned.best_epoch,
                epochs_run=tuned.epochs_run,
                steps=tuned.steps,
                validation=tuned.validation,
                test=scores,
                started_at=started_at,
                duration_s=round(time.perf_counter() - started, 1),
                peak_rss_mb=round(peak_rss_mb(), 1),
                machine=machine(device, self.settings.torch_threads),
            )
            (partial / TRAINING_CARD).write_bytes(msgspec.json.format(msgspec.json.encode(report)))
            (partial / "README.md").write_text(model_card(report), encoding="utf-8")
            partial.rename(target)  # the folder appears whole or not at all
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        self.phase = "done"
        return report

    def _progress(self, step: StepReport) -> None:
        self.step = step
        self.on_step(step)

    def _score(
        self, key: str, role: Literal["base", "new", "vader"], spec: ModelSpec, data: Labelled
    ) -> ModelScores:
        """Score the held-out rows as the service would: through the model's own backend."""
        from sentiment.inference.finetune import TrainingCancelled

        backend = load_backend(
            spec,
            threads=self.settings.torch_threads,
            cache_dir=self.settings.cache_dir,
            device=self.settings.device,
        )
        confusion = Confusion()
        try:
            for start in range(0, len(data.texts), TEST_BATCH):
                if self.cancelled.is_set():
                    raise TrainingCancelled()
                scored = backend.predict(data.texts[start : start + TEST_BATCH])
                confusion.add_pairs(
                    zip(data.labels[start : start + TEST_BATCH], (s.label for s in scored), strict=True)
                )
        finally:
            backend.close()
        return ModelScores(key, role, metrics(confusion), tuple(backend.labels))


def machine(device: str, threads: int | None) -> dict[str, str]:
    import torch

    return {
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cores": str(os.cpu_count()),
        "threads": str(threads or torch.get_num_threads()),
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "torch": str(torch.__version__),
    }


def model_card(report: TrainingReport) -> str:
    """The folder's README: what a researcher opening it needs first."""
    lines = [
        f"# {report.name}",
        "",
        (
            f"Fine-tuned from `{report.base}` ({report.base_source}) on {report.data} "
            f"(sha256 {report.data_sha256[:16]}), labels from column `{report.label_column}` "
            f"mapped {', '.join(f'{k} -> {v}' for k, v in sorted(report.label_mapping.items()))}."
        ),
        "",
        (
            f"Split (seed {report.hyperparameters.seed}, stratified): {report.split['train']:,} train, "
            f"{report.split['validation']:,} validation, {report.split['test']:,} test "
            f"(fingerprint {report.split_fingerprint})."
        ),
        (
            f"Best epoch {report.best_epoch} of {report.epochs_run}; {report.steps:,} steps; "
            f"{report.duration_s:,.0f} s on {report.machine.get('device')}; "
            f"peak memory {report.peak_rss_mb:,.0f} MB."
        ),
        "",
        "| model | role | accuracy | macro-F1 |",
        "| --- | --- | --- | --- |",
        *(
            f"| {s.model} | {s.role} | {s.figures.accuracy:.3f} | {s.figures.macro_f1:.3f} |"
            for s in report.test
        ),
        "",
    ]
    return "\n".join(lines)


def report_text(report: TrainingReport) -> str:
    """What `sentiment train` prints: the three models on the held-out rows, then each in full."""
    lines = [
        (
            f"{report.name}: fine-tuned from {report.base} on {report.data} ({report.rows_used:,} rows, "
            f"labels from {report.label_column}; {report.split['train']:,} train, "
            f"{report.split['validation']:,} validation, {report.split['test']:,} test) in "
            f"{report.duration_s / 60:.1f} min, best epoch {report.best_epoch} of {report.epochs_run}, "
            f"peak memory {report.peak_rss_mb:,.0f} MB"
        ),
        f"  saved to {report.folder}",
        "",
        f"  {'on the test split':<24}{'accuracy':>10}{'macro-F1':>10}",
        *(
            f"  {f'{s.model} ({s.role})':<24}{s.figures.accuracy:>10.3f}{s.figures.macro_f1:>10.3f}"
            for s in report.test
        ),
    ]
    for scores in report.test:
        lines += ["", format_report(f"{scores.model} ({scores.role})", scores.figures)]
    return "\n".join(lines)


# -- the background job the pages and the API start ----------------------------------------------------------


class TrainingJob(msgspec.Struct):
    id: str
    name: str
    base: str
    data: str
    phase: Phase
    started_at: datetime
    step: int = 0
    total_steps: int | None = None
    epoch: int = 0
    epochs: int = 0
    loss: float | None = None
    validation_accuracy: float | None = None
    validation_macro_f1: float | None = None
    seconds_left: float | None = None
    elapsed_s: float = 0.0
    finished_at: datetime | None = None
    error: str | None = None
    report: TrainingReport | None = None

    @property
    def running(self) -> bool:
        return self.phase not in {"done", "failed", "cancelled"}

    @property
    def percent(self) -> float:
        return 100.0 * self.step / self.total_steps if self.total_steps else 0.0


class DatasetSource(msgspec.Struct, frozen=True):
    path: str
    name: str
    text_column: str
    gold_column: str


class TrainingService:
    """One training job at a time in this process, in a thread; the finished model is registered and loaded
    through `on_trained`."""

    def __init__(
        self,
        settings: ModelSettings,
        models_dir: Path,
        catalogue: Callable[[], Sequence[ModelSpec]],
        on_trained: Callable[[ModelSpec], Awaitable[object]],
        dataset_source: Callable[[UUID], Awaitable[DatasetSource | None]],
        clock: WallClock = utc_now,
    ) -> None:
        """`catalogue` gives the models known now (the base is looked up there, the new name must be new),
        `on_trained` serves a finished model, `dataset_source` finds a data set's file and columns."""
        self._settings = settings
        self._models_dir = models_dir
        self._catalogue = catalogue
        self._on_trained = on_trained
        self._dataset_source = dataset_source
        self._clock = clock
        self._trainer: Trainer | None = None
        self._job: TrainingJob | None = None
        self._task: asyncio.Task[None] | None = None

    def remove_abandoned(self, older_than_s: float = ABANDONED_AFTER_S) -> list[str]:
        """Partial folders of runs whose process died while saving or testing. A live run holds one for a few
        minutes at most; replicas may share the folder, so only old ones are taken for dead."""
        if not self._models_dir.is_dir():
            return []
        cutoff = time.time() - older_than_s
        removed = [
            folder
            for folder in self._models_dir.glob(".*.partial-*")
            if folder.is_dir() and folder.stat().st_mtime < cutoff
        ]
        for folder in removed:
            shutil.rmtree(folder, ignore_errors=True)
            log.warning("abandoned_training_folder_removed", folder=str(folder))
        return [folder.name for folder in removed]

    def bases(self) -> list[str]:
        """Models a training can start from: the catalogue's transformers models with weights here."""
        return [
            spec.key
            for spec in self._catalogue()
            if spec.kind == "transformers" and ModelEntry(spec).status == "available"
        ]

    def current(self) -> TrainingJob | None:
        """The running job (its progress read now), or the last one."""
        job, trainer = self._job, self._trainer
        if job is not None and trainer is not None and job.running:
            job.phase = trainer.phase if trainer.phase not in {"done", "failed", "cancelled"} else job.phase
            step = trainer.step
            if step is not None:
                for field in ("step", "total_steps", "epoch", "epochs", "loss", "validation_accuracy",
                              "validation_macro_f1", "seconds_left", "elapsed_s"):  # fmt: skip
                    setattr(job, field, getattr(step, field))
        return job

    def start(self, request: TrainingRequest) -> TrainingJob:
        if self._job is not None and self._job.running:
            raise Conflict(f"model {self._job.name} is being trained; one training job runs at a time")
        trainer = Trainer(self._settings, self._models_dir, request, list(self._catalogue()), self._clock)
        trainer.check()  # answered at once, as a 400, rather than as a failed job
        self._trainer = trainer
        self._job = TrainingJob(
            uuid.uuid4().hex, request.name, request.base, request.data_name or Path(request.source).name,
            "reading", self._clock(), epochs=request.options.epochs,
        )  # fmt: skip
        self._task = asyncio.get_running_loop().create_task(self._run(trainer, self._job))
        log.info("training_started", model=request.name, base=request.base, data=self._job.data)
        return self._job

    async def start_on_dataset(
        self, dataset_id: UUID, name: str, base: str, options: Hyperparameters
    ) -> TrainingJob | None:
        """Train on a data set's text and gold columns; None when there is no such data set."""
        source = await self._dataset_source(dataset_id)
        if source is None:
            return None
        request = TrainingRequest(
            source.path, source.text_column, source.gold_column, base, name, options, data_name=source.name
        )
        return self.start(request)

    def cancel(self) -> TrainingJob:
        job = self.current()
        if job is None or not job.running or self._trainer is None:
            raise Conflict("no training job is running")
        self._trainer.cancelled.set()
        return job

    async def _run(self, trainer: Trainer, job: TrainingJob) -> None:
        from sentiment.inference.finetune import TrainingCancelled

        try:
            report = await asyncio.to_thread(trainer.run)
            self.current()
            job.report = report
            await self._on_trained(ModelSpec(report.name, report.folder, path=self._settings.execution_path))
        except TrainingCancelled:
            self.current()
            job.phase = "cancelled"
            log.info("training_cancelled", model=job.name)
        except Exception as error:  # noqa: BLE001 - any failure ends the job as failed, with its message
            self.current()
            job.phase, job.error = "failed", first_line(error) or type(error).__name__
            if job.report is not None:
                job.error = f"saved in {job.report.folder} but not served: {job.error}"
            log.error("training_failed", model=job.name, error=job.error)
        else:
            job.phase = "done"
            log.info("training_finished", model=job.name, seconds=report.duration_s)
        finally:
            job.finished_at = self._clock()

    async def close(self) -> None:
        if self._trainer is not None:
            self._trainer.cancelled.set()
        if self._task is not None:
            await cancel_and_wait(self._task)
