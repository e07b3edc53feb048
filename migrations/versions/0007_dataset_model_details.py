"""Record the model a data set was scored with (model_details), and what lets a stopped job resume with
every row scored once: the run that holds the data set, the run whose export file holds the last chunk stored
and its size after it, the tallies stored with that chunk, and how often the job was resumed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_details", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("run_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("export_run", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("export_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("tally", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("resumes", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_column("resumes")
        batch_op.drop_column("tally")
        batch_op.drop_column("export_bytes")
        batch_op.drop_column("export_run")
        batch_op.drop_column("run_id")
        batch_op.drop_column("model_details")
