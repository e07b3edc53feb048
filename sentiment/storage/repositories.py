"""Repositories: take a connection, speak rows in batches, return domain objects or plain figures."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sentiment.core.clock import as_utc
from sentiment.core.domain import Alert, AlertSeverity, AlertState, Prediction
from sentiment.storage.analytics import RollupRepository
from sentiment.storage.dialects import insert_for
from sentiment.storage.tables import AlertRow, ModelChoiceRow, PredictionRow


def storable_text(text: str) -> str:
    """Postgres text cannot hold NUL (one NUL would fail its whole batch for ever): it is kept as U+FFFD, on
    SQLite too, so that both stores hold the same text. The hash and length stay those of the text as sent."""
    return text.replace("\x00", "\ufffd")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class PredictionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_many(self, predictions: Sequence[Prediction], store_text: bool) -> None:
        """Insert the rows and count them into the hourly rollups, in the caller's transaction."""
        rows = [
            {
                "id": p.id,
                # UTC: SQLite keeps the wall time and drops the offset, and rollups bucket by UTC hour.
                "created_at": as_utc(p.timestamp),
                "text": storable_text(p.text) if store_text else None,
                "text_hash": text_hash(p.text),
                "text_length": len(p.text),
                "sentiment": p.sentiment,
                "confidence": p.confidence,
                "scores": p.scores,
                "model_requested": p.model_requested,
                "model_used": p.model_used,
                "fallback_used": p.fallback_used,
                "processing_time_ms": p.processing_time_ms,
                "dataset_id": p.dataset_id,
                "group_name": p.group,
            }
            for p in predictions
        ]
        await self._connection.execute(insert(PredictionRow), rows)
        await RollupRepository(self._connection).add(predictions)

    async def count(self) -> int:
        return int(await self._connection.scalar(select(func.count()).select_from(PredictionRow)) or 0)


class AlertRepository:
    """Alerts are keyed: raising an active key again is a no-op, so replicas never duplicate one."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def raise_alert(
        self, key: str, kind: str, severity: AlertSeverity, message: str, now: datetime
    ) -> bool:
        """Insert the alert unless one with this key is active; True when this call raised it."""
        statement = (
            insert_for(self._connection, AlertRow)
            .values(
                key=key,
                active_key=key,
                kind=kind,
                severity=severity,
                message=message,
                state="active",
                raised_at=now,
            )
            .on_conflict_do_nothing(index_elements=["active_key"])
        )
        result = await self._connection.execute(statement)
        return result.rowcount == 1

    async def resolve(self, key: str, now: datetime) -> bool:
        result = await self._connection.execute(
            update(AlertRow)
            .where(AlertRow.active_key == key)
            .values(active_key=None, state="resolved", resolved_at=now)
        )
        return result.rowcount == 1

    async def acknowledge(self, alert_id: int, now: datetime) -> Alert | None:
        await self._connection.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id, AlertRow.acknowledged_at.is_(None))
            .values(acknowledged_at=now)
        )
        row = (
            await self._connection.execute(select(AlertRow.__table__).where(AlertRow.id == alert_id))
        ).first()
        return _alert(row) if row else None

    async def list(self, state: AlertState | None = None, limit: int = 100) -> list[Alert]:
        query = (
            select(AlertRow.__table__).order_by(AlertRow.raised_at.desc(), AlertRow.id.desc()).limit(limit)
        )
        if state is not None:
            query = query.where(AlertRow.state == state)
        return [_alert(row) for row in await self._connection.execute(query)]


def _alert(row: Row[*tuple[Any, ...]]) -> Alert:
    mapping = row._mapping
    values = {field: mapping[field] for field in Alert.__struct_fields__}
    for field in ("raised_at", "resolved_at", "acknowledged_at"):
        values[field] = as_utc(values[field])
    return Alert(**values)


class ModelChoices(msgspec.Struct, frozen=True):
    default_model: str | None = None
    loaded: tuple[str, ...] = ()
    updated_at: datetime | None = None
    chosen_by: str | None = None  # the replica (host name) the choice was made on


class ModelChoiceRepository:
    """The default model and the loaded set chosen through the API, one row each, upserted."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self) -> ModelChoices:
        query = select(ModelChoiceRow.name, ModelChoiceRow.value, ModelChoiceRow.updated_at)
        rows: dict[str, tuple[Any, datetime | None]] = {
            name: (value, updated_at) for name, value, updated_at in await self._connection.execute(query)
        }
        if "default_model" not in rows:
            return ModelChoices()
        return ModelChoices(
            default_model=rows["default_model"][0],
            loaded=tuple(rows.get("loaded_models", ((), None))[0] or ()),
            updated_at=as_utc(rows["default_model"][1]),
            chosen_by=rows.get("chosen_by", (None, None))[0],
        )

    async def clear(self) -> bool:
        """Forget the stored choices (the configuration rules again at the next start); False if none."""
        result = await self._connection.execute(delete(ModelChoiceRow))
        return bool(result.rowcount)

    async def save(self, choices: ModelChoices, now: datetime) -> None:
        for name, value in (
            ("default_model", choices.default_model),
            ("loaded_models", list(choices.loaded)),
            ("chosen_by", choices.chosen_by),
        ):
            statement = insert_for(self._connection, ModelChoiceRow).values(
                name=name, value=value, updated_at=now
            )
            await self._connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"], set_={"value": statement.excluded.value, "updated_at": now}
                )
            )
