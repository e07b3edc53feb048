"""Repositories: take a connection, speak rows in batches, return domain objects or plain figures."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from sqlalchemy import Dialect, Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sentiment.core.clock import as_utc
from sentiment.core.domain import Alert, AlertSeverity, AlertState, Prediction
from sentiment.storage.analytics import RollupRepository
from sentiment.storage.dialects import insert_for, is_postgres
from sentiment.storage.tables import AlertRow, ModelChoiceRow, PredictionRow

# Ids looked up per query: SQLite binds at most 32,766 parameters in one statement (asyncpg 32,767).
IDS_PER_QUERY = 32_766


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
        if not predictions:
            return
        statement = _prediction_insert(self._connection.dialect)
        rows = statement.rows(predictions, store_text)
        if is_postgres(self._connection):
            await self._copy(statement, rows)
        else:
            await self._connection.exec_driver_sql(statement.sql, rows)
        await RollupRepository(self._connection).add(predictions)

    async def _copy(self, statement: _PredictionInsert, rows: list[tuple[Any, ...]]) -> None:
        """Postgres takes the rows by COPY: about half its work per row, and two thirds of this process's, of
        an INSERT executed once per row (bench/write_rate.py). COPY is the driver's own call, whose errors
        SQLAlchemy does not wrap, and the writer tells refused rows from an outage by the wrapped ones: so it
        runs in a savepoint, and when it fails the rows are inserted once more by the plain statement, which
        raises the error as any statement does (or takes the rows, if only COPY failed)."""
        savepoint = await self._connection.begin_nested()
        try:
            driver: Any = (await self._connection.get_raw_connection()).driver_connection  # asyncpg's
            await driver.copy_records_to_table(
                PredictionRow.__tablename__, records=rows, columns=statement.names
            )
        except Exception:  # noqa: BLE001 - whatever it was, the plain statement meets it again and says it
            await savepoint.rollback()
            await self._connection.exec_driver_sql(statement.sql, rows)
        else:
            await savepoint.commit()

    async def existing_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of `ids` are stored already, so that rows written once (a journal replayed after a crash) are
        not inserted twice. One query per call, or per chunk of ids a statement's parameters can hold."""
        found: set[UUID] = set()
        for start in range(0, len(ids), IDS_PER_QUERY):
            query = select(PredictionRow.id).where(PredictionRow.id.in_(ids[start : start + IDS_PER_QUERY]))
            found.update(await self._connection.scalars(query))
        return found

    async def count(self) -> int:
        return int(await self._connection.scalar(select(func.count()).select_from(PredictionRow)) or 0)


class _PredictionInsert(NamedTuple):
    """The INSERT of prediction rows as one dialect's driver takes it, with the bind processors of its columns
    in parameter order.

    The rows go to the driver as they are, each value converted by its column's own processor: the values
    stored are those SQLAlchemy's `insert()` would send, without its per-row parameter handling, which cost as
    much as the database's own work (bench/write_rate.py)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def rows(self, predictions: Sequence[Prediction], store_text: bool) -> list[tuple[Any, ...]]:
        columns = _prediction_columns(predictions, store_text)
        converted = (
            _converted(name, process, columns[name])
            for name, process in zip(self.names, self.processors, strict=True)
        )
        return list(zip(*converted, strict=True))


# Columns whose values repeat along a batch (a request's rows share one time): converted once per value.
_REPEATING_COLUMNS = frozenset({"created_at", "fallback_used"})


def _converted(name: str, process: Callable[[Any], Any] | None, values: list[Any]) -> Iterable[Any]:
    if process is None:
        return values
    if name not in _REPEATING_COLUMNS:
        return map(process, values)
    done: dict[Any, Any] = {}
    return [done[value] if value in done else done.setdefault(value, process(value)) for value in values]


# Per dialect instance, not name: the JSON column's processor is its engine's serializer.
@functools.lru_cache(maxsize=8)
def _prediction_insert(dialect: Dialect) -> _PredictionInsert:
    table = PredictionRow.__table__
    compiled = insert(PredictionRow).compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    return _PredictionInsert(
        compiled.string,
        names,
        tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names),
    )


def _prediction_columns(predictions: Sequence[Prediction], store_text: bool) -> dict[str, list[Any]]:
    """The predictions' values column by column: one pass per column is cheaper than a dict per row."""
    return {
        "id": [p.id for p in predictions],
        # UTC: SQLite keeps the wall time and drops the offset, and rollups bucket by UTC hour.
        "created_at": [as_utc(p.timestamp) for p in predictions],
        "text": [storable_text(p.text) for p in predictions] if store_text else [None] * len(predictions),
        "text_hash": [text_hash(p.text) for p in predictions],
        "text_length": [len(p.text) for p in predictions],
        "sentiment": [p.sentiment for p in predictions],
        "confidence": [p.confidence for p in predictions],
        "scores": [p.scores for p in predictions],
        "model_requested": [p.model_requested for p in predictions],
        "model_used": [p.model_used for p in predictions],
        "fallback_used": [p.fallback_used for p in predictions],
        "processing_time_ms": [p.processing_time_ms for p in predictions],
        "dataset_id": [p.dataset_id for p in predictions],
        "group_name": [p.group for p in predictions],
    }


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
