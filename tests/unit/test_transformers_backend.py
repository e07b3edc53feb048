"""The transformers backend on tiny, randomly initialised
models saved to temp folders, one per label style."""

import shutil
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from sentiment.core.domain import ModelLoadError
from sentiment.inference.transformers_backend import TransformersBackend
from tests.conftest import SST2_MODEL

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def tiny_model(folder: Path, id2label: dict[int, str], dtype: torch.dtype = torch.float32) -> Path:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(config).to(dtype).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        shutil.copy(SST2_MODEL / name, folder / name)
    return folder


@pytest.mark.parametrize(
    ("id2label", "labels"),
    [
        ({0: "LABEL_0", 1: "LABEL_1"}, ("negative", "positive")),
        ({0: "NEGATIVE", 1: "POSITIVE"}, ("negative", "positive")),
        ({0: "negative", 1: "neutral", 2: "positive"}, ("negative", "neutral", "positive")),
        ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, ("negative", "neutral", "positive")),
        (
            {0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"},
            ("negative", "neutral", "positive"),
        ),
    ],
)
def test_loads_each_label_style_and_scores_every_service_label(
    tmp_path: Path, id2label: dict[int, str], labels: tuple[str, ...]
) -> None:
    backend = TransformersBackend(str(tiny_model(tmp_path, id2label)))
    results = backend.predict(["a fine day", "an awful, long and boring film about nothing at all"])
    assert len(results) == 2
    for scored in results:
        assert tuple(sorted(scored.scores)) == tuple(sorted(labels))
        assert sum(scored.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert scored.confidence == max(scored.scores.values())
        assert scored.scores[scored.label] == scored.confidence


def test_float16_checkpoint_runs_as_float32(tmp_path: Path) -> None:
    backend = TransformersBackend(str(tiny_model(tmp_path, {0: "NEGATIVE", 1: "POSITIVE"}, torch.float16)))
    assert next(backend._model.parameters()).dtype == torch.float32


def test_model_with_unmappable_labels_is_refused_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="joy"):
        TransformersBackend(str(tiny_model(tmp_path, {0: "joy", 1: "anger"})))


def test_hub_id_missing_from_the_cache_fails_fast_with_advice() -> None:
    with pytest.raises(ModelLoadError, match="local folder"):
        TransformersBackend("no-such-org/no-such-model")
