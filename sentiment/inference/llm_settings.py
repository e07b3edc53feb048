"""A language model's entry in SENTIMENT_MODELS_FILE (`kind = "openai"`), read and checked into LlmOptions:
every refusal is one line that names the field."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from sentiment.core.domain import LABELS, Label
from sentiment.core.secret import Secret
from sentiment.inference.catalogue import DEFAULT_PROMPT, DEFAULT_SYSTEM_PROMPT, Example, LlmOptions


class LlmEntryError(ValueError):
    """What is wrong with the entry, said in one line (the caller prefixes where)."""


class LlmEntry(msgspec.Struct, forbid_unknown_fields=True, rename={"timeout_s": "timeout_seconds"}):
    """The table as written in the file."""

    kind: str
    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    labels: tuple[Label, ...] = LABELS
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    prompt: str = DEFAULT_PROMPT
    examples: tuple[Example, ...] = ()
    examples_file: str | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=2.0)] = 0.0
    timeout_s: Annotated[float, msgspec.Meta(gt=0.0)] = 30.0
    max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=256)] = 4
    requests_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None
    json_schema: bool | None = None
    logprobs: bool = True


def llm_options(table: Mapping[str, Any], folder: Path, env: Mapping[str, str]) -> tuple[str, LlmOptions]:
    """The server's base URL and the options of the entry; relative example files are read from `folder`
    (the models file's own); the API key from the environment variable the entry names."""
    try:
        entry = msgspec.convert(dict(table), LlmEntry)
    except msgspec.ValidationError as error:
        raise LlmEntryError(str(error)) from None
    if not entry.base_url.startswith(("http://", "https://")):
        raise LlmEntryError(f"base_url {entry.base_url!r} is not an http(s) URL")
    if len(set(entry.labels)) != len(entry.labels) or len(entry.labels) < 2:
        raise LlmEntryError(f"labels must be two or three distinct of {', '.join(LABELS)}")
    for name in ("system_prompt", "prompt"):
        _check_template(name, getattr(entry, name))
    if "{text}" not in entry.prompt:
        raise LlmEntryError("prompt must hold {text}, where the post goes")
    examples = entry.examples
    if entry.examples_file:
        examples += read_examples(folder / entry.examples_file)
    if stray := sorted({example.label for example in examples} - set(entry.labels)):
        raise LlmEntryError(f"examples are labelled {', '.join(stray)}, which is not among labels")
    api_key = None
    if entry.api_key_env:
        value = env.get(entry.api_key_env, "").strip()
        if not value:
            raise LlmEntryError(f"api_key_env names {entry.api_key_env}, which is not set")
        api_key = Secret(value)
    options = LlmOptions(
        model=entry.model,
        api_key=api_key,
        labels=entry.labels,
        system_prompt=entry.system_prompt,
        prompt=entry.prompt,
        examples=examples,
        temperature=entry.temperature,
        timeout_s=entry.timeout_s,
        max_concurrent=entry.max_concurrent,
        requests_per_minute=entry.requests_per_minute,
        json_schema=entry.json_schema,
        logprobs=entry.logprobs,
    )
    return entry.base_url.rstrip("/"), options


def _check_template(name: str, template: str) -> None:
    try:
        template.format(text="", labels="")
    except (KeyError, IndexError, ValueError) as error:
        raise LlmEntryError(
            f"{name} is not a template of {{text}} and {{labels}} (write a literal brace twice): {error!r}"
        ) from None


def read_examples(path: Path) -> tuple[Example, ...]:
    """Few-shot examples from a CSV (or, by its suffix, TSV) file with `text` and `label` columns."""
    try:
        with path.open(encoding="utf-8", newline="") as file:
            rows = list(csv.DictReader(file, delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LlmEntryError(f"examples_file {str(path)!r} cannot be read: {error}") from None
    if rows and not {"text", "label"} <= set(rows[0]):
        raise LlmEntryError(f"examples_file {str(path)!r} needs a text and a label column")
    examples = []
    for line, row in enumerate(rows, start=2):
        label = (row["label"] or "").strip().lower()
        if label not in LABELS or not (row["text"] or "").strip():
            raise LlmEntryError(
                f"examples_file {str(path)!r} line {line}: needs a text and a label of {LABELS}"
            )
        examples.append(Example(row["text"].strip(), label))
    return tuple(examples)
