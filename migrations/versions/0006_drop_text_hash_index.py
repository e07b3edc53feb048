"""Drop the index on predictions.text_hash: nothing queries by it, and on SQLite it cost a random page write
per inserted row, which halved the write rate of a table with a million rows (bench/write_rate.py --prefill).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:30:00.000000
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_predictions_text_hash", table_name="predictions")


def downgrade() -> None:
    op.create_index("ix_predictions_text_hash", "predictions", ["text_hash"], unique=False)
