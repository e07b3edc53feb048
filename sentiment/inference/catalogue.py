"""The models the service knows by key: the built-in catalogue plus what configuration adds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import msgspec

from sentiment.core.domain import LABELS, VADER_KEY, Label
from sentiment.core.secret import Secret
from sentiment.inference.paths import ExecutionPath

BackendKind = Literal["transformers", "vader", "remote", "openai"]

DEFAULT_SYSTEM_PROMPT = (
    "You annotate the sentiment of social-media posts for research. Read the post and answer with exactly "
    "one word, the post's overall sentiment: {labels}. Answer with the word only."
)
DEFAULT_PROMPT = "Post: {text}\nSentiment:"


class Example(msgspec.Struct, frozen=True):
    """A labelled text shown to a language model before the one it is asked about (few-shot)."""

    text: str
    label: Label


class LlmOptions(msgspec.Struct, frozen=True):
    """A language model served behind an OpenAI-compatible API (LocalAI, vLLM, Ollama, llama.cpp, OpenAI),
    prompted as an annotator."""

    # The served model's name; None: the first one the server's /models lists.
    model: str | None = None
    # Read from the environment variable the entry names (api_key_env), never written in the file.
    api_key: Secret | None = None
    labels: tuple[Label, ...] = LABELS
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # The user message; {text} is the post, {labels} the label words.
    prompt: str = DEFAULT_PROMPT
    examples: tuple[Example, ...] = ()
    temperature: float = 0.0
    # Seconds a text may take, 429 waits included, before the breaker counts a failure and VADER answers.
    timeout_s: float = 30.0
    max_concurrent: int = 4
    requests_per_minute: int | None = None
    # Ask for a JSON answer constrained to the labels (response_format); None: when the server takes it.
    json_schema: bool | None = None
    # Ask for token log-probabilities, the source of per-class scores when the server returns them.
    logprobs: bool = True


class ModelSpec(msgspec.Struct, frozen=True):
    key: str
    source: str
    kind: BackendKind = "transformers"
    # Labels known before loading (built-in hub models); local folders are read from their config.json.
    known_labels: tuple[Label, ...] = ()
    # How a transformers model runs: fp32, int8 (torch), onnx or onnx-int8 (ONNX Runtime).
    path: ExecutionPath = "fp32"
    llm: LlmOptions | None = None

    @property
    def is_local(self) -> bool:
        return self.kind != "transformers" or Path(self.source).is_dir()

    @property
    def missing_folder(self) -> bool:
        """A source written as a folder (a path, not an `org/name` hub id) that is not there: a volume not
        mounted, a typo. Such a model is failed, with a message naming the folder, rather than looked up on
        a hub."""
        written_as_path = self.source.startswith(("/", ".", "~")) or self.source.count("/") > 1
        return self.kind == "transformers" and written_as_path and not Path(self.source).is_dir()

    @property
    def labels(self) -> tuple[Label, ...]:
        """The service labels this model answers with, as far as they can be known without loading it."""
        if self.llm is not None:
            return self.llm.labels
        if self.known_labels or self.kind != "transformers":
            return self.known_labels
        from sentiment.inference.labels import UnmappableLabels, map_labels

        try:
            id2label = json.loads((Path(self.source) / "config.json").read_text())["id2label"]
            mapped = map_labels({int(k): v for k, v in id2label.items()})
        except (OSError, ValueError, KeyError, UnmappableLabels):
            return ()
        return tuple(label for label in LABELS if label in mapped)


def spec_from_source(key: str, source: str, path: ExecutionPath = "fp32") -> ModelSpec:
    """A configured model: a local folder, a hub id, or the URL of a remote inference server."""
    if source.startswith(("http://", "https://")):
        return ModelSpec(key, source.rstrip("/"), kind="remote")
    return ModelSpec(key, str(Path(source).resolve()) if Path(source).is_dir() else source, path=path)


# A fine-tuned model's card (sentiment train): a folder holding one under SENTIMENT_MODELS_DIR is catalogued.
TRAINING_CARD = "training.json"


def trained_models(models_dir: Path, path: ExecutionPath) -> tuple[ModelSpec, ...]:
    """The models fine-tuned here before, keyed by their folders' names, run on `path` as configured ones."""
    if not models_dir.is_dir():
        return ()
    return tuple(
        ModelSpec(folder.name, str(folder.resolve()), path=path)
        for folder in sorted(models_dir.iterdir())
        if not folder.name.startswith(".") and (folder / TRAINING_CARD).is_file()
    )


BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "distilbert-sst2",
        "distilbert-base-uncased-finetuned-sst-2-english",
        known_labels=("negative", "positive"),
    ),
    ModelSpec("twitter-roberta", "cardiffnlp/twitter-roberta-base-sentiment-latest", known_labels=LABELS),
    # Five star classes: 1-2 negative, 3 neutral, 4-5 positive.
    ModelSpec("bert-multilingual", "nlptown/bert-base-multilingual-uncased-sentiment", known_labels=LABELS),
    ModelSpec(VADER_KEY, "vaderSentiment", kind="vader", known_labels=LABELS),
)

# Keys the original system used, still accepted in configuration.
KEY_ALIASES: dict[str, str] = {"distilbert-sentiment": "distilbert-sst2"}
# The original system's single remote model server (MODEL_SERVICE_URL) is catalogued under this key; with
# USE_LOCAL_AI=true that server is a LocalAI (OpenAI API), catalogued under LOCAL_AI_KEY.
REMOTE_KEY = "remote"
LOCAL_AI_KEY = "local-ai"


def openai_base_url(url: str) -> str:
    """The OpenAI API base of a server given as `http://host:8080` or `http://host:8080/v1`."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"
