"""Texts longer than the model's window, on the reference model: its tokenizer cut each way, the flag in every
answer, and what each mode makes of a text whose ending contradicts its opening."""

from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient
from transformers import AutoTokenizer

from sentiment.inference.long_texts import LongTextEncoder, LongTexts
from sentiment.inference.transformers_backend import TransformersBackend
from tests.conftest import SST2_MODEL


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return AutoTokenizer.from_pretrained(str(SST2_MODEL), local_files_only=True)


LONG = "one two three four five six seven eight nine ten " * 10 + "the very last words"
TEXTS = ["a short text", LONG, "another short one"]


def test_head_shows_what_plain_truncation_shows_and_says_which_texts_were_cut(tokenizer: object) -> None:
    encoded = LongTextEncoder(tokenizer, 32, "head").encode(TEXTS)
    plain = tokenizer(TEXTS, padding=True, truncation=True, max_length=32, return_tensors="np")  # type: ignore[operator]
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert (encoded.inputs[name] == plain[name]).all()
    assert encoded.truncated == [False, True, False]
    assert encoded.owners.tolist() == [0, 1, 2]


def test_head_and_tail_show_the_ending_of_a_long_text_and_the_rest_unchanged(tokenizer: object) -> None:
    encoded = LongTextEncoder(tokenizer, 32, "head_tail").encode(TEXTS)
    decode = tokenizer.decode  # type: ignore[attr-defined]
    long_row = decode(encoded.inputs["input_ids"][1], skip_special_tokens=True)
    assert long_row.startswith("one two three four five six seven")
    assert long_row.endswith("the very last words")
    assert encoded.inputs["attention_mask"][1].sum() <= 32
    assert decode(encoded.inputs["input_ids"][0], skip_special_tokens=True) == "a short text"
    assert encoded.truncated == [False, True, False]


def test_windows_cover_the_whole_text_and_belong_to_it(tokenizer: object) -> None:
    encoded = LongTextEncoder(tokenizer, 32, "windows").encode(TEXTS)
    owners = encoded.owners.tolist()
    assert owners[0] == 0 and owners[-1] == 2 and owners.count(1) >= 4
    rows = [i for i, owner in enumerate(owners) if owner == 1]
    decode = tokenizer.decode  # type: ignore[attr-defined]
    assert decode(encoded.inputs["input_ids"][rows[-1]], skip_special_tokens=True).endswith(
        "the very last words"
    )
    assert encoded.weights.tolist() == encoded.inputs["attention_mask"].sum(axis=1).tolist()


# About 600 tokens of complaint, then about 2,200 of praise: the first window is all complaint.
COMPLAINT_THEN_PRAISE = "Awful, I hated it. " * 100 + "Loved it, wonderful! " * 370


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[LongTexts, TransformersBackend]]:
    yield {
        mode: TransformersBackend(str(SST2_MODEL), 2, long_texts=mode)
        for mode in ("head", "head_tail", "windows")
    }


@pytest.mark.parametrize(
    ("mode", "label"), [("head", "negative"), ("head_tail", "positive"), ("windows", "positive")]
)
def test_each_mode_shows_the_model_what_it_says(
    backends: dict[LongTexts, TransformersBackend], mode: LongTexts, label: str
) -> None:
    long, short = backends[mode].predict([COMPLAINT_THEN_PRAISE, "a lovely film"])
    assert (long.label, long.truncated) == (label, True)
    assert (short.label, short.truncated) == ("positive", False)
    assert sum(long.scores.values()) == pytest.approx(1.0)


def test_windows_weigh_each_part_by_its_length(backends: dict[LongTexts, TransformersBackend]) -> None:
    """Roughly a fifth of the text is complaint: its windows pull the positive score below praise alone's."""
    windows = backends["windows"].predict([COMPLAINT_THEN_PRAISE])[0]
    praise_only = backends["head"].predict(["Loved it, wonderful! " * 80])[0]
    assert 0.5 < windows.scores["positive"] < praise_only.scores["positive"]


async def test_every_answer_says_whether_the_model_saw_only_part_of_its_text(
    sst2_client: AsyncTestClient,
) -> None:
    one = (await sst2_client.post("/predict", json={"text": COMPLAINT_THEN_PRAISE})).json()
    batch = (
        await sst2_client.post("/predict/batch", json={"texts": ["short and sweet", COMPLAINT_THEN_PRAISE]})
    ).json()
    assert one["truncated"] is True
    assert [result["truncated"] for result in batch["results"]] == [False, True]
