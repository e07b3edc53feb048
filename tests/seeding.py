"""Seed a database with a month of predictions through the service's own write path (rollups included)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from uuid_utils.compat import uuid7

from sentiment.core.domain import Prediction
from sentiment.storage.database import create_engine, upgrade
from sentiment.storage.repositories import PredictionRepository

MODELS = ("minilm-sst2", "minilm-tweets3", "vader")
WORDS = ("great", "awful", "fine", "delay", "lovely", "lost bag", "thanks", "cancelled", "on time", "rude")


async def seed_month(url: str, rows: int, now: datetime | None = None, seed: int = 3) -> None:
    await asyncio.to_thread(upgrade, url)
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    engine = create_engine(url)
    batch: list[Prediction] = []
    for i in range(rows):
        # More traffic in recent days, a daily rhythm, and labels that drift over the month.
        age = timedelta(days=30 * rng.random() ** 1.3, minutes=rng.randint(0, 59))
        drift = age.days / 30
        label = rng.choices(
            ("negative", "neutral", "positive"), weights=(0.3 + 0.3 * drift, 0.3, 0.6 - 0.3 * drift)
        )[0]
        model = rng.choices(MODELS, weights=(0.6, 0.3, 0.1))[0]
        scores = {"negative": 0.1, "neutral": 0.1, "positive": 0.1} | {label: 0.8}
        batch.append(
            Prediction(
                id=uuid7(),
                text=f"{rng.choice(WORDS)} flight #{i}",
                sentiment=label,
                confidence=0.8,
                scores=scores,
                model_requested=model,
                model_used=model,
                fallback_used=rng.random() < 0.03,
                processing_time_ms=rng.lognormvariate(2.5, 0.5),
                timestamp=now - age,
            )
        )
        if len(batch) == 2_000:
            async with engine.begin() as connection:
                await PredictionRepository(connection).add_many(batch, store_text=True)
            batch = []
    if batch:
        async with engine.begin() as connection:
            await PredictionRepository(connection).add_many(batch, store_text=True)
    await engine.dispose()
