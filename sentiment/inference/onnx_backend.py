"""A sequence-classification model exported once to ONNX
(optionally int8-quantised) and run by ONNX Runtime."""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import structlog

from sentiment.core.domain import Label, ModelLoadError, Scored, first_line
from sentiment.inference.backend import BaseBackend
from sentiment.inference.labels import UnmappableLabels, map_labels
from sentiment.inference.long_texts import LongTextEncoder, LongTexts
from sentiment.inference.paths import source_stamp

MAX_SEQUENCE_LENGTH = 512

log = structlog.get_logger(__name__)


def export_folder(source: str, quantize: bool, cache_dir: Path) -> Path:
    """Where this source's export lives: keyed by the model files and the library versions that made it."""
    return cache_dir / f"{source_stamp(source)}-{'int8' if quantize else 'fp32'}"


class _QuantizerAdvice(logging.Filter):
    """onnxruntime's quantizer advises pre-processing through the root logger on every run: advice for
    image models, not a problem with this export."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


@contextlib.contextmanager
def _exporter_quiet(source: str) -> Iterator[None]:
    """The exporter narrates each step on stdout and warns through torch's own log handler about optional
    operator sets (torchvision's) this model never uses: kept at debug level, so a command run at WARNING says
    nothing and its answer on stdout stays clean JSON."""
    narration = io.StringIO()
    torch_onnx_log = logging.getLogger("torch.onnx")
    level = torch_onnx_log.level
    torch_onnx_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(narration):
            # torch 2.13's exporter trips a FutureWarning of its own (LeafSpec) inside run_decompositions, and
            # says that inputs sharing the same Dim objects keep one axis name: neither is about this code.
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", category=UserWarning, message=".*axis name.*will not be used.*")
            yield
    finally:
        torch_onnx_log.setLevel(level)
        log.debug("onnx_exporter_output", source=source, output=narration.getvalue())


def export(source: str, folder: Path) -> None:
    """torch's recommended (dynamo) exporter, with dynamic
    batch and sequence axes; `model.onnx` in `folder`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, local_files_only=True, dtype=torch.float32
    ).eval()
    sample = tokenizer(
        ["a short example", "another, slightly longer example sentence"], padding=True, return_tensors="pt"
    )
    # Positional inputs must follow forward()'s own order (input_ids, attention_mask, token_type_ids for
    # BERT), not the tokenizer's: a mix-up exports a model that silently reads the mask as token types.
    names = [name for name in inspect.signature(model.forward).parameters if name in sample]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=MAX_SEQUENCE_LENGTH)
    with _exporter_quiet(source):
        program = torch.onnx.export(
            model,
            tuple(sample[n] for n in names),
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={n: {0: batch, 1: sequence} for n in names},
            dynamo=True,
            opset_version=18,
        )
    if program is None:
        raise ModelLoadError(f"torch.onnx.export gave no program for {source}")
    folder.mkdir(parents=True, exist_ok=True)
    program.save(str(folder / "model.onnx"))


def quantize(folder: Path) -> None:
    """int8 weights per channel (signed: much faster than
    unsigned on AVX-512 VNNI), activations per tensor."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    advice = _QuantizerAdvice()
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(
            folder / "model.onnx", folder / "model-int8.onnx", weight_type=QuantType.QInt8, per_channel=True
        )
    finally:
        logging.getLogger().removeFilter(advice)


class OnnxBackend(BaseBackend):
    def __init__(
        self,
        source: str,
        int8: bool,
        cache_dir: Path,
        threads: int | None = None,
        long_texts: LongTexts = "head",
    ) -> None:
        import onnxruntime
        from transformers import AutoConfig, AutoTokenizer

        self.execution_path = "onnx-int8" if int8 else "onnx"
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            id2label = AutoConfig.from_pretrained(source, local_files_only=True).id2label
        except OSError as error:
            raise ModelLoadError(f"cannot load {source!r}: {first_line(error)}") from error
        try:
            self.labels: tuple[Label, ...] = map_labels(id2label)
        except UnmappableLabels as error:
            raise ModelLoadError(str(error)) from error
        folder = export_folder(source, int8, cache_dir)
        target = folder / ("model-int8.onnx" if int8 else "model.onnx")
        if not target.exists():
            log.info("onnx_exporting", source=source, int8=int8, folder=str(folder))
            partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
            export(source, partial)
            if int8:
                quantize(partial)
            # Built aside and renamed into place, so a crash mid-export never leaves a half-written model.
            if folder.exists():
                shutil.rmtree(folder)
            partial.replace(folder)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Idle worker threads would otherwise spin, taking CPU from the event loop and the tokenizer.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._encoder = LongTextEncoder(
            self._tokenizer, min(int(self._tokenizer.model_max_length), MAX_SEQUENCE_LENGTH), long_texts
        )
        self.scores_every_window = long_texts == "windows"

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        encoded = self._encoder.encode(texts)
        feeds = {
            name: value.astype(np.int64) for name, value in encoded.inputs.items() if name in self._inputs
        }
        logits = self._session.run(["logits"], feeds)[0]
        exponent = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities = exponent / exponent.sum(axis=-1, keepdims=True)
        return self._encoder.scored(self.labels, probabilities, encoded)
