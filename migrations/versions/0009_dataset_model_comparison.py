"""Data sets scored by several models at once: the models compared with the one that stores the rows, each
pair's table of labels given together (for agreement and Cohen's kappa), and the rows they disagree on most.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("compare_models", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("agreement", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("disagreements", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("disagreements")
        batch_op.drop_column("agreement")
        batch_op.drop_column("compare_models")
