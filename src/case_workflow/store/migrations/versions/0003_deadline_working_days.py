"""Add cw_deadlines.working_days: the working days a met or missed deadline took.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "cw_deadlines"
COLUMN = "working_days"


def upgrade() -> None:
    # NOTE: revision 0001 creates cw_deadlines from tables.py, which declares this column, so
    # a database created from scratch already has it and only older databases get it here.
    existing = {column["name"] for column in sa.inspect(op.get_bind()).get_columns(TABLE)}
    if COLUMN in existing:
        return
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column(COLUMN, sa.Integer, nullable=True))


def downgrade() -> None:
    # recreate="never" drops the column with ALTER TABLE (SQLite 3.35 or later). Batch mode's
    # copy-and-rename would drop cw_deadlines, which cw_deadline_actions references, and
    # that fails while SQLite enforces foreign keys.
    with op.batch_alter_table(TABLE, recreate="never") as batch:
        batch.drop_column(COLUMN)
