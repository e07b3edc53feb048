"""Room in a data-set count's key for a group's counts over time (dimension 'gtime', key '<UTC hour>|<group>':
13 + 1 + up to 200 characters).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_counts", schema=None) as batch_op:
        batch_op.alter_column(
            "key", existing_type=sa.String(200), type_=sa.String(255), existing_nullable=False
        )


def downgrade() -> None:
    op.execute("DELETE FROM dataset_counts WHERE dimension = 'gtime'")
    with op.batch_alter_table("dataset_counts", schema=None) as batch_op:
        batch_op.alter_column(
            "key", existing_type=sa.String(255), type_=sa.String(200), existing_nullable=False
        )
