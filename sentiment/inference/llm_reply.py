"""What is said to a language model annotator and what is read from its reply: the chat messages, the label
its reply names, and per-class scores from the log-probabilities of the reply's tokens. No I/O."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sentiment.core.domain import Label, Scored
from sentiment.inference.catalogue import LlmOptions


class UnreadableReply(ValueError):
    """The reply names no label (or more than one): a failure of the model, never a guess."""


def label_words(labels: Sequence[Label]) -> str:
    return ", ".join(labels[:-1]) + f" or {labels[-1]}" if len(labels) > 1 else labels[0]


def chat_messages(text: str, options: LlmOptions) -> list[dict[str, str]]:
    """System prompt, then each few-shot example as a question and its answer, then the text."""
    words = label_words(options.labels)
    messages = [{"role": "system", "content": options.system_prompt.format(labels=words)}]
    for example in options.examples:
        messages.append({"role": "user", "content": options.prompt.format(text=example.text, labels=words)})
        messages.append({"role": "assistant", "content": example.label})
    messages.append({"role": "user", "content": options.prompt.format(text=text, labels=words)})
    return messages


def label_schema(labels: Sequence[Label]) -> dict[str, Any]:
    """`response_format` that constrains the reply to `{"label": <one of the labels>}`."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "sentiment",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"label": {"type": "string", "enum": list(labels)}},
                "required": ["label"],
                "additionalProperties": False,
            },
        },
    }


_JSON_LABEL = re.compile(r'"label"\s*:\s*"')


def read_label(content: str, labels: Sequence[Label], as_json: bool) -> tuple[Label, int]:
    """The label the reply names and where its word starts in the reply.

    A JSON reply must be an object whose `label` is one of the labels (any case). A plain reply must name
    exactly one label as a whole word (any case, punctuation around it allowed): "Negative." is read,
    "not positive, rather negative" and "I cannot tell" are refused."""
    if as_json:
        try:
            value = json.loads(content).get("label")
        except (ValueError, AttributeError):
            raise UnreadableReply(f"reply is not a JSON object with a label: {content[:200]!r}") from None
        found = _JSON_LABEL.search(content)
        if not isinstance(value, str) or value.lower() not in labels or found is None:
            raise UnreadableReply(f"reply names no label of {list(labels)}: {content[:200]!r}")
        return value.lower(), found.end()  # type: ignore[return-value]  # checked against the labels
    named: dict[str, int] = {}
    for match in re.finditer(r"[a-z]+", content, re.IGNORECASE):
        if (word := match.group(0).lower()) in labels:
            named.setdefault(word, match.start())
    if len(named) != 1:
        said = "no label" if not named else f"{len(named)} labels"
        raise UnreadableReply(f"reply names {said} of {list(labels)}: {content[:200]!r}")
    label, start = next(iter(named.items()))
    return label, start  # type: ignore[return-value]  # checked against the labels


def logprob_scores(
    tokens: Sequence[Mapping[str, Any]], content: str, at: int, labels: Sequence[Label]
) -> dict[str, float] | None:
    """Per-class scores from the alternatives the server reports for the token where the label word starts:
    each alternative that begins exactly one label adds its probability to that label, and the sums are
    normalised. None when the tokens do not line up with the reply or no alternative begins a label."""
    start = 0
    for token in tokens:
        text = str(token.get("token", ""))
        if start <= at < start + len(text):
            break
        start += len(text)
    else:
        return None
    if content[start : start + len(text)] != text:
        return None  # the server's tokens do not spell the reply: its offsets cannot be trusted
    before = content[start:at]
    mass: dict[str, float] = dict.fromkeys(labels, 0.0)
    for alternative in token.get("top_logprobs") or [token]:
        candidate = str(alternative.get("token", ""))
        if not candidate.startswith(before):
            continue
        stem = candidate[len(before) :].strip().lower()
        begun = [label for label in labels if stem and (label.startswith(stem) or stem.startswith(label))]
        if len(begun) == 1:
            mass[begun[0]] += math.exp(float(alternative.get("logprob", -math.inf)))
    total = sum(mass.values())
    if total <= 0.0:
        return None
    return {label: value / total for label, value in mass.items()}


def scored_reply(reply: Mapping[str, Any], labels: Sequence[Label], as_json: bool) -> Scored:
    """A chat-completion answer as the service's Scored; UnreadableReply when it names no label."""
    try:
        choice = reply["choices"][0]
        content = str(choice["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        raise UnreadableReply(f"not a chat completion: {str(reply)[:200]!r}") from None
    label, at = read_label(content, labels, as_json)
    tokens = ((choice.get("logprobs") or {}).get("content")) or []
    scores = logprob_scores(tokens, content, at, labels) if tokens else None
    if scores is None or scores[label] <= 0.0:
        one_hot: dict[str, float] = {name: float(name == label) for name in labels}
        return Scored(label=label, confidence=1.0, scores=one_hot, scores_source="none")
    return Scored(label=label, confidence=scores[label], scores=scores, scores_source="logprobs")
