"""A Hugging Face sequence-classification model run in-process with torch on the CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as transformers_logging

from sentiment.core.domain import Label, ModelLoadError, Scored, first_line
from sentiment.inference.backend import BaseBackend
from sentiment.inference.labels import UnmappableLabels, map_labels
from sentiment.inference.long_texts import LongTextEncoder, LongTexts

MAX_SEQUENCE_LENGTH = 512

# A progress bar per load is noise in a service log.
transformers_logging.disable_progress_bar()


class TransformersBackend(BaseBackend):
    def __init__(
        self,
        source: str,
        threads: int | None = None,
        int8: bool = False,
        device: str = "cpu",
        long_texts: LongTexts = "head",
        half: bool = True,
    ) -> None:
        """Load from a local folder or the local hub cache; never reaches a hub (downloads are a separate
        step). On a GPU the model runs in half precision unless `half` is False."""
        torch.set_num_threads(threads or os.cpu_count() or 1)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            # float16 checkpoints are upcast: float16 matmuls on a CPU are slow.
            self._model = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=True, dtype=torch.float32
            ).eval()
        except OSError as error:
            raise ModelLoadError(
                f"cannot load {source!r}: not a model folder and not in the local hub cache "
                f"({first_line(error)}); "
                "download it first or point SENTIMENT_MODELS at a local folder"
            ) from error
        try:
            self.labels: tuple[Label, ...] = map_labels(self._model.config.id2label)
        except UnmappableLabels as error:
            raise ModelLoadError(str(error)) from error
        self.device = device
        self.execution_path = "int8" if int8 else "fp32"
        if device == "cuda":
            # On a GPU the same engine runs in half precision (and with larger batches, see the registry).
            self._model = self._model.to(device="cuda", dtype=torch.float16 if half else torch.float32)
            self.execution_path = "cuda-fp16" if half else "cuda-fp32"
        if int8:
            # Dynamic int8 on the linear layers through torchao, the API torch recommends in place of the
            # deprecated torch.ao.quantization.quantize_dynamic.
            from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

            quantize_(self._model, Int8DynamicActivationInt8WeightConfig())
        self._encoder = LongTextEncoder(
            self._tokenizer, min(int(self._tokenizer.model_max_length), MAX_SEQUENCE_LENGTH), long_texts
        )
        self.scores_every_window = long_texts == "windows"
        # One pass at load pays for lazy initialisation, so the first user request is not the slow one.
        self.predict(["warm-up pass"] * 2)

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        encoded = self._encoder.encode(texts)
        inputs = {name: torch.from_numpy(value).to(self.device) for name, value in encoded.inputs.items()}
        with torch.inference_mode():
            logits = self._model(**inputs).logits.float()
            probabilities = torch.softmax(logits, dim=-1).cpu().numpy()
        return self._encoder.scored(self.labels, probabilities, encoded)
