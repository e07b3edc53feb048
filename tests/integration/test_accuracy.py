"""minilm-sst2 through the HTTP API scores like the bare model on SST-2 dev (plain transformers: 0.901)."""

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import DATA


def read_tsv(name: str) -> list[tuple[str, str]]:
    """The shared TSVs have no quoting: split each line on its last tab."""
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()[1:]
    return [tuple(line.rsplit("\t", 1)) for line in lines if line]  # type: ignore[misc]


@pytest.mark.slow
async def test_sst2_dev_accuracy_through_the_api_is_at_least_0_89(sst2_client: AsyncTestClient) -> None:
    rows = read_tsv("sst2_dev.tsv")
    assert len(rows) == 872
    predicted: list[str] = []
    for start in range(0, len(rows), 64):
        texts = [text for text, _ in rows[start : start + 64]]
        response = await sst2_client.post("/predict/batch", json={"texts": texts})
        assert response.status_code == 200
        results = response.json()["results"]
        assert all(not r["fallback_used"] for r in results)
        predicted += [r["sentiment"] for r in results]
    accuracy = sum(p == gold for p, (_, gold) in zip(predicted, rows, strict=True)) / len(rows)
    print(f"minilm-sst2 SST-2 dev accuracy through the API: {accuracy:.4f}")
    assert accuracy >= 0.89
