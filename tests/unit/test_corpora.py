"""Corpora scored apart from the service: chunks scored on a worker as the service scores them, and the scored
columns of a file found again for an import."""

import pytest

from sentiment.core.domain import Scored
from sentiment.inference.batching import BatchPolicy
from sentiment.inference.catalogue import BUILTIN_MODELS
from sentiment.inference.vader import VaderBackend
from sentiment.services.distributed import WorkerModel, local_threads, score_texts, worker_backend
from sentiment.services.imports import ScoredColumns, read_scored, scored_columns
from sentiment.services.tabular import Row, TableError

VADER = next(spec for spec in BUILTIN_MODELS if spec.kind == "vader")


def test_a_worker_answers_in_input_order_across_length_sorted_batches() -> None:
    texts = ["I love it, wonderful!", "bad", "The meeting is at noon.", "awful, just awful and sad", "ok"]
    model = WorkerModel(VADER, BatchPolicy(max_batch_size=2))
    answer = score_texts(model, texts)
    assert answer.labels == ("negative", "neutral", "positive")
    assert answer.scored == VaderBackend().predict(texts)


def test_a_worker_loads_each_model_once() -> None:
    model = WorkerModel(VADER, BatchPolicy())
    assert worker_backend(model) is worker_backend(WorkerModel(VADER, BatchPolicy()))


def test_a_local_cluster_shares_the_cores_out_between_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert [local_threads(f"local:{n}") for n in (1, 2, 4, 32)] == [16, 8, 4, 1]
    assert local_threads("tcp://10.0.0.1:8786") is None


def test_the_last_run_of_scored_columns_is_found_whatever_the_input_was_called() -> None:
    columns = [
        "label",
        "text",
        "confidence",
        "predicted_label",
        "predicted_confidence",
        "score_negative",
        "x",
    ]
    assert scored_columns(columns) == ScoredColumns(3, 4, {"negative": 5})
    added = ["text", "label", "confidence", "score_negative", "score_neutral", "score_positive"]
    assert scored_columns(added) == ScoredColumns(1, 2, {"negative": 3, "neutral": 4, "positive": 5})


def test_a_file_without_scored_columns_is_refused_with_what_to_do() -> None:
    with pytest.raises(TableError, match="import a file that `sentiment score` wrote"):
        scored_columns(["text", "label", "airline"])


def test_a_scored_row_is_read_back_or_says_why_not() -> None:
    columns = ScoredColumns(1, 2, {"negative": 3, "positive": 4})
    assert read_scored(Row(2, ["t", "Positive ", "0.9", "0.1", "0.9"]), columns) == Scored(
        "positive", 0.9, {"negative": 0.1, "positive": 0.9}
    )
    assert read_scored(Row(3, ["t", "joy", "0.9", "0.1", "0.9"]), columns) == (
        "label 'joy' is not one of negative, neutral, positive"
    )
    assert read_scored(Row(4, ["t", "negative", "", "0.1", "0.9"]), columns) == (
        "a confidence or a score is not a number"
    )
