"""The schema. Changes go through Alembic migrations in `migrations/`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class PredictionRow(Base):
    __tablename__ = "predictions"

    # A UUIDv7 made when the answer is made, so rows can be written after the answer and still sort by time.
    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str | None] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    text_length: Mapped[int] = mapped_column(Integer)
    sentiment: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    model_requested: Mapped[str] = mapped_column(String(200))
    model_used: Mapped[str] = mapped_column(String(200))
    fallback_used: Mapped[bool] = mapped_column(Boolean)
    processing_time_ms: Mapped[float] = mapped_column(Float)
    dataset_id: Mapped[UUID | None] = mapped_column(Uuid)
    group_name: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_predictions_created_at", "created_at"),
        Index("ix_predictions_model_used_created_at", "model_used", "created_at"),
        Index("ix_predictions_dataset_id_created_at", "dataset_id", "created_at"),
    )


NO_DATASET = UUID(int=0)


class PredictionRollupRow(Base):
    """Predictions counted per UTC hour, model, label, fallback flag and data set, kept up to date in the
    transaction that inserts the predictions: analytics read whole hours here and only the edges from rows."""

    __tablename__ = "prediction_rollups"

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    model_used: Mapped[str] = mapped_column(String(200), primary_key=True)
    sentiment: Mapped[str] = mapped_column(String(16), primary_key=True)
    fallback_used: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    # NO_DATASET (the nil UUID) rather than NULL: NULLs never collide in a key, so upserts would miss the row.
    dataset_key: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    predictions: Mapped[int] = mapped_column(Integer)
    latency_sum_ms: Mapped[float] = mapped_column(Float)
    # A cumulative latency histogram (predictions at or under each bound, as Prometheus keeps one), so latency
    # percentiles can be estimated from rollups; the bounds are analytics_math.LATENCY_BOUNDS_MS.
    latency_le_1ms: Mapped[int] = mapped_column(Integer)
    latency_le_2_5ms: Mapped[int] = mapped_column(Integer)
    latency_le_5ms: Mapped[int] = mapped_column(Integer)
    latency_le_10ms: Mapped[int] = mapped_column(Integer)
    latency_le_25ms: Mapped[int] = mapped_column(Integer)
    latency_le_50ms: Mapped[int] = mapped_column(Integer)
    latency_le_100ms: Mapped[int] = mapped_column(Integer)
    latency_le_250ms: Mapped[int] = mapped_column(Integer)
    latency_le_500ms: Mapped[int] = mapped_column(Integer)
    latency_le_1000ms: Mapped[int] = mapped_column(Integer)
    latency_le_2500ms: Mapped[int] = mapped_column(Integer)
    latency_le_5000ms: Mapped[int] = mapped_column(Integer)
    latency_le_10000ms: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_prediction_rollups_model_used_hour", "model_used", "hour"),
        Index("ix_prediction_rollups_dataset_key_hour", "dataset_key", "hour"),
    )


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    # Equal to `key` while the alert is active and NULL afterwards: the unique index lets every replica
    # raise the same alert while only one active row exists (NULLs never collide).
    active_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_alerts_raised_at", "raised_at"),)


class ModelChoiceRow(Base):
    """Model choices made through the API (default model, loaded set), shared by every replica."""

    __tablename__ = "model_choices"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[object] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DatasetRow(Base):
    """An uploaded data set: the columns chosen, the model, and its scoring job's progress and outcome."""

    __tablename__ = "datasets"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[str]] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(200))
    text_column: Mapped[str | None] = mapped_column(String(200))
    time_column: Mapped[str | None] = mapped_column(String(200))
    group_column: Mapped[str | None] = mapped_column(String(200))
    gold_column: Mapped[str | None] = mapped_column(String(200))
    time_format: Mapped[str | None] = mapped_column(String(100))
    rows_total: Mapped[int | None] = mapped_column(Integer)
    rows_done: Mapped[int] = mapped_column(Integer)
    rows_scored: Mapped[int] = mapped_column(Integer)
    rows_skipped: Mapped[int] = mapped_column(Integer)
    # The first problems met ([line, reason] pairs; every one is counted in problem_count).
    problems: Mapped[list[list[int | str]]] = mapped_column(JSON)
    problem_count: Mapped[int] = mapped_column(Integer)
    # Per model scored against the gold column, its confusion matrix (rows gold, columns predicted).
    confusion: Mapped[dict[str, list[list[int]]]] = mapped_column(JSON)
    notes: Mapped[list[str]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Written with every chunk: a running job whose heartbeat stops was interrupted (its process ended).
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rate: Mapped[float | None] = mapped_column(Float)
    # What the model was when it scored (its source, how it ran; a language model's server, prompt, settings).
    model_details: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # The run of the job that holds the data set (each start or resume is a new run): a run writes only while
    # the data set is still its own, so a run taken for dead and resumed elsewhere cannot store a row twice.
    run_id: Mapped[UUID | None] = mapped_column(Uuid)
    # Stored with each chunk, for a resumed job to go on from it: the run whose export file holds the chunk's
    # rows and its size after them, and the tallies without a column of their own (rows refused, rows
    # without a time or gold label).
    export_run: Mapped[UUID | None] = mapped_column(Uuid)
    export_bytes: Mapped[int | None] = mapped_column(BigInteger)
    tally: Mapped[dict[str, int] | None] = mapped_column(JSON)
    resumes: Mapped[int] = mapped_column(Integer, server_default="0")
    # Models that scored every row beside `model` (their answers are compared, not stored as predictions).
    compare_models: Mapped[list[str] | None] = mapped_column(JSON)
    # Per pair of models 'a|b', the counts of (a's label, b's label) over the rows, in LABELS order.
    agreement: Mapped[dict[str, list[list[int]]] | None] = mapped_column(JSON)
    # The rows the models disagree on most: line, text, and each model's label and polarity.
    disagreements: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_datasets_created_at", "created_at"),)


class DatasetCountRow(Base):
    """A data set's predictions counted per label along one dimension, kept up to date as its job scores:
    `label` (key ''), `time` (key: the row's UTC hour, 'YYYY-MM-DDTHH'), `group` (key: the group value) and
    `gtime` (key: the hour, '|', the group)."""

    __tablename__ = "dataset_counts"

    dataset_id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    sentiment: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class SessionRow(Base):
    """A page session, kept on the server so that logout, expiry and an idle timeout end it on every replica.
    The cookie holds only a random id; the row is keyed by that id's SHA-256 digest."""

    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_sessions_expires_at", "expires_at"),)


class ApiKeyRow(Base):
    """An API key: only its SHA-256 digest is stored, with the first characters shown to tell keys apart, its
    own rate limit and its usage counts."""

    __tablename__ = "api_keys"

    id: Mapped[UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    # Requests per minute that score text; None: the service-wide limit only.
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    requests: Mapped[int] = mapped_column(BigInteger)
    texts: Mapped[int] = mapped_column(BigInteger)
