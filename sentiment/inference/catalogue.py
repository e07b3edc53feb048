"""The models the service knows by key: the built-in catalogue plus what configuration adds."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from sentiment.domain import VADER_KEY

BackendKind = Literal["transformers", "vader"]


class ModelSpec(msgspec.Struct, frozen=True):
    key: str
    source: str
    kind: BackendKind = "transformers"

    @property
    def is_local(self) -> bool:
        return self.kind == "vader" or Path(self.source).is_dir()


BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("distilbert-sst2", "distilbert-base-uncased-finetuned-sst-2-english"),
    ModelSpec("twitter-roberta", "cardiffnlp/twitter-roberta-base-sentiment-latest"),
    ModelSpec("bert-multilingual", "nlptown/bert-base-multilingual-uncased-sentiment"),
    ModelSpec(VADER_KEY, "vaderSentiment", kind="vader"),
)

# Keys the original system used, still accepted in configuration.
KEY_ALIASES: dict[str, str] = {"distilbert-sentiment": "distilbert-sst2"}
