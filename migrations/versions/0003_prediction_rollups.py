"""Hourly prediction rollups (filled from the rows already stored) and a data-set index ordered by time,
so /analytics reads aggregates instead of scanning every prediction.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copy of analytics_math.LATENCY_BOUNDS_MS as it was when this revision was written.
LATENCY_BOUNDS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
LATENCY_COLUMNS = [f"latency_le_{bound:g}ms".replace(".", "_") for bound in LATENCY_BOUNDS_MS]


def upgrade() -> None:
    op.create_table(
        "prediction_rollups",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_used", sa.String(length=200), nullable=False),
        sa.Column("sentiment", sa.String(length=16), nullable=False),
        sa.Column("fallback_used", sa.Boolean(), nullable=False),
        sa.Column("dataset_key", sa.Uuid(), nullable=False),
        sa.Column("predictions", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in LATENCY_COLUMNS],
        sa.PrimaryKeyConstraint("hour", "model_used", "sentiment", "fallback_used", "dataset_key"),
    )
    with op.batch_alter_table("prediction_rollups", schema=None) as batch_op:
        batch_op.create_index("ix_prediction_rollups_model_used_hour", ["model_used", "hour"], unique=False)
        batch_op.create_index("ix_prediction_rollups_dataset_key_hour", ["dataset_key", "hour"], unique=False)

    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_dataset_id")
        batch_op.create_index(
            "ix_predictions_dataset_id_created_at", ["dataset_id", "created_at"], unique=False
        )

    _backfill()


def _backfill() -> None:
    """Roll up the predictions stored before this revision; later ones are added as they are inserted."""
    if op.get_bind().dialect.name == "postgresql":
        hour = "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        dataset = "coalesce(dataset_id, '00000000-0000-0000-0000-000000000000'::uuid)"
    else:
        # SQLite keeps UTC times as text 'YYYY-MM-DD HH:MM:SS.ffffff' and UUIDs as 32 hex digits.
        hour = "substr(created_at, 1, 13) || ':00:00.000000'"
        dataset = "coalesce(dataset_id, '00000000000000000000000000000000')"
    histogram = ", ".join(
        f"sum(CASE WHEN processing_time_ms <= {bound} THEN 1 ELSE 0 END)" for bound in LATENCY_BOUNDS_MS
    )
    op.execute(
        "INSERT INTO prediction_rollups (hour, model_used, sentiment, fallback_used, dataset_key, "
        f"predictions, latency_sum_ms, {', '.join(LATENCY_COLUMNS)}) "
        f"SELECT {hour}, model_used, sentiment, fallback_used, {dataset}, count(*), sum(processing_time_ms), "
        f"{histogram} FROM predictions GROUP BY {hour}, model_used, sentiment, fallback_used, {dataset}"
    )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_dataset_id_created_at")
        batch_op.create_index("ix_predictions_dataset_id", ["dataset_id"], unique=False)

    with op.batch_alter_table("prediction_rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_rollups_dataset_key_hour")
        batch_op.drop_index("ix_prediction_rollups_model_used_hour")

    op.drop_table("prediction_rollups")
