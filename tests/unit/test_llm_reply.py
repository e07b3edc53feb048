"""Reading a language model's reply: the label it names, strictly, and per-class scores from its
log-probabilities."""

from __future__ import annotations

import math

import pytest

from sentiment.core.domain import LABELS
from sentiment.inference.catalogue import Example, LlmOptions
from sentiment.inference.llm_reply import (
    UnreadableReply,
    chat_messages,
    label_schema,
    logprob_scores,
    read_label,
    scored_reply,
)


def token(text: str, alternatives: dict[str, float] | None = None) -> dict[str, object]:
    """A token of the reply; `alternatives` maps token texts to probabilities at its position."""
    top = [{"token": t, "logprob": math.log(p)} for t, p in (alternatives or {text: 1.0}).items()]
    return {"token": text, "logprob": top[0]["logprob"], "top_logprobs": top}


def reply(content: str, tokens: list[dict[str, object]] | None = None) -> dict[str, object]:
    choice: dict[str, object] = {"message": {"role": "assistant", "content": content}}
    if tokens is not None:
        choice["logprobs"] = {"content": tokens}
    return {"choices": [choice]}


@pytest.mark.parametrize(
    ("content", "label", "at"),
    [
        ("negative", "negative", 0),
        (" Positive.", "positive", 1),
        ("**Neutral**", "neutral", 2),
        ("Sentiment: negative", "negative", 11),
        ("negative - clearly negative", "negative", 0),
    ],
)
def test_a_plain_reply_is_read_when_it_names_exactly_one_label(content: str, label: str, at: int) -> None:
    assert read_label(content, LABELS, as_json=False) == (label, at)


@pytest.mark.parametrize(
    "content",
    ["I cannot tell.", "not positive, rather negative", "", "negatively", "positivity"],
)
def test_a_plain_reply_naming_no_label_or_two_is_refused_not_guessed(content: str) -> None:
    with pytest.raises(UnreadableReply):
        read_label(content, LABELS, as_json=False)


def test_a_label_outside_the_models_labels_is_no_label() -> None:
    with pytest.raises(UnreadableReply):
        read_label("neutral", ("negative", "positive"), as_json=False)


def test_a_json_reply_is_read_from_its_label_field_and_the_label_word_located() -> None:
    content = '{"label": "Negative"}'
    assert read_label(content, LABELS, as_json=True) == ("negative", 11)
    for refused in ('{"answer": "negative"}', '{"label": "unsure"}', "negative", '["negative"]'):
        with pytest.raises(UnreadableReply):
            read_label(refused, LABELS, as_json=True)


def test_scores_sum_the_alternatives_that_begin_each_label_and_are_normalised() -> None:
    tokens = [token("neg", {"neg": 0.6, "pos": 0.2, "neut": 0.1, "I": 0.05}), token("ative")]
    scores = logprob_scores(tokens, "negative", 0, LABELS)
    assert scores is not None
    assert scores == pytest.approx({"negative": 0.6 / 0.9, "neutral": 0.1 / 0.9, "positive": 0.2 / 0.9})


def test_alternatives_that_share_the_labels_token_prefix_are_matched_after_it() -> None:
    # The token that holds the label word's start also holds the JSON quote before it.
    content = '{"label": "positive"}'
    tokens = [
        token('{"'),
        token("label"),
        token('":'),
        token(' "pos', {' "pos': 0.7, ' "neg': 0.2, ' "n': 0.1}),
        token("itive"),
        token('"}'),
    ]
    scores = logprob_scores(tokens, content, 11, LABELS)
    # ' "n' begins two labels: it says nothing about either.
    assert scores == pytest.approx({"negative": 0.2 / 0.9, "neutral": 0.0, "positive": 0.7 / 0.9})


def test_tokens_that_do_not_spell_the_reply_give_no_scores() -> None:
    assert logprob_scores([token("pos"), token("itive")], "negative", 0, LABELS) is None
    assert logprob_scores([token("neg")], "negative", 5, LABELS) is None  # the tokens end before the label


def test_a_reply_with_log_probabilities_is_scored_from_them() -> None:
    tokens = [token("neut", {"neut": 0.5, "neg": 0.3, "pos": 0.2}), token("ral")]
    scored = scored_reply(reply("neutral", tokens), LABELS, as_json=False)
    assert scored.label == "neutral"
    assert scored.scores_source == "logprobs"
    assert scored.confidence == pytest.approx(0.5)
    assert scored.scores == pytest.approx({"negative": 0.3, "neutral": 0.5, "positive": 0.2})


def test_a_reply_without_log_probabilities_says_its_scores_come_from_nowhere() -> None:
    scored = scored_reply(reply("positive"), ("negative", "positive"), as_json=False)
    assert (scored.label, scored.confidence, scored.scores_source) == ("positive", 1.0, "none")
    assert scored.scores == {"negative": 0.0, "positive": 1.0}


def test_a_reply_that_is_not_a_chat_completion_is_unreadable() -> None:
    with pytest.raises(UnreadableReply):
        scored_reply({"error": "boom"}, LABELS, as_json=False)


def test_few_shot_examples_come_as_questions_and_answers_before_the_text() -> None:
    options = LlmOptions(
        labels=("negative", "positive"),
        system_prompt="Answer {labels}.",
        prompt="Text: {text}",
        examples=(Example("great trip", "positive"),),
    )
    assert chat_messages("late again", options) == [
        {"role": "system", "content": "Answer negative or positive."},
        {"role": "user", "content": "Text: great trip"},
        {"role": "assistant", "content": "positive"},
        {"role": "user", "content": "Text: late again"},
    ]


def test_the_json_schema_allows_only_the_models_labels() -> None:
    schema = label_schema(("negative", "positive"))["json_schema"]["schema"]
    assert schema["properties"]["label"]["enum"] == ["negative", "positive"]
    assert schema["required"] == ["label"]
