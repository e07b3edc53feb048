"""The schema. Changes go through Alembic migrations in `migrations/`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, Uuid
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
        Index("ix_predictions_dataset_id", "dataset_id"),
        Index("ix_predictions_text_hash", "text_hash"),
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
