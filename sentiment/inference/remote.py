"""A model served by a remote inference server, spoken to in text-embeddings-inference's protocol:
`POST {url}/predict {"inputs": [...]}` answers `[[{"label": ..., "score": ...}, ...], ...]`, one list per
input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import httpx

from sentiment.core.domain import LABELS, Label, ModelLoadError, Scored
from sentiment.inference.backend import BaseBackend
from sentiment.inference.labels import UnmappableLabels, map_labels, scored_from_probabilities


class LabelScore(TypedDict):
    """One class of one text in text-embeddings-inference's /predict answer."""

    label: str
    score: float


class RemoteBackend(BaseBackend):
    execution_path = "remote"

    def __init__(self, url: str, timeout_s: float) -> None:
        # One pooled client: the queue's worker thread is its only user.
        self._client = httpx.Client(base_url=url, timeout=timeout_s)
        self._url = url
        try:
            first = self._call(["warm-up"])[0]
        except (httpx.HTTPError, ValueError) as error:
            self._client.close()
            raise ModelLoadError(f"remote model server {url} does not answer: {error}") from error
        names = sorted(str(item["label"]) for item in first)
        try:
            mapped = map_labels(dict(enumerate(names)))
        except UnmappableLabels as error:
            self._client.close()
            raise ModelLoadError(str(error)) from error
        self._label_of: dict[str, Label] = dict(zip(names, mapped, strict=True))
        self.labels: tuple[Label, ...] = tuple(label for label in LABELS if label in mapped)

    def predict(self, texts: Sequence[str]) -> list[Scored]:
        rows = self._call(texts)
        if len(rows) != len(texts):
            raise ValueError(
                f"remote model server {self._url} answered {len(rows)} results for {len(texts)} texts"
            )
        results = []
        for row in rows:
            labels = [self._label_of[str(item["label"])] for item in row]
            results.append(scored_from_probabilities(labels, [float(item["score"]) for item in row]))
        return results

    def _call(self, texts: Sequence[str]) -> list[list[LabelScore]]:
        response = self._client.post("/predict", json={"inputs": list(texts)})
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self._client.close()
