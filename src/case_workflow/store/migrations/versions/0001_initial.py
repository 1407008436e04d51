"""Create the dossier, event, deadline, letter, registry and outbox tables.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

from case_workflow.store import tables

# The tables this revision creates, named so that tables added to the shared metadata by
# later revisions are not created here too.
TABLES = (
    tables.dossiers,
    tables.events,
    tables.deadlines,
    tables.deadline_actions,
    tables.registry_counters,
    tables.letters,
    tables.outbox,
    tables.calendar_changes,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first revision creates its tables exactly as tables.py declares them; later
    # revisions must spell out their operations instead of reading tables.py.
    tables.metadata.create_all(op.get_bind(), tables=list(TABLES))


def downgrade() -> None:
    tables.metadata.drop_all(op.get_bind(), tables=list(TABLES))
