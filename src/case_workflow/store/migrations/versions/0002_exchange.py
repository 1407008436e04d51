"""Create the exchange tables: links, outbox, inbox and rejected messages.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from case_workflow.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite only gives an auto-incrementing key to INTEGER PRIMARY KEY columns.
Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

TABLES = ("cw_exchange_links", "cw_exchange_outbox", "cw_exchange_inbox", "cw_exchange_rejected")


def upgrade() -> None:
    op.create_table(
        "cw_exchange_links",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("peer", sa.String(100), nullable=False),
        sa.Column("peer_reference", sa.String(100), nullable=True),
        sa.Column("dossier_id", Key, nullable=True),
        sa.Column("last_sent_seq", sa.Integer, nullable=False),
        sa.Column("last_applied_seq", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cw_exchange_links"),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["cw_dossiers.id"],
            name="fk_cw_exchange_links_dossier_id_cw_dossiers",
        ),
        sa.UniqueConstraint(
            "peer", "peer_reference", name="uq_cw_exchange_links_peer_peer_reference"
        ),
        sa.UniqueConstraint("dossier_id", "peer", name="uq_cw_exchange_links_dossier_id_peer"),
    )
    op.create_table(
        "cw_exchange_outbox",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("dossier_id", Key, nullable=False),
        sa.Column("peer", sa.String(100), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("receipt", sa.String(32), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cw_exchange_outbox"),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["cw_dossiers.id"],
            name="fk_cw_exchange_outbox_dossier_id_cw_dossiers",
        ),
        sa.UniqueConstraint("message_id", name="uq_cw_exchange_outbox_message_id"),
        sa.UniqueConstraint(
            "dossier_id", "peer", "seq", name="uq_cw_exchange_outbox_dossier_id_peer_seq"
        ),
    )
    op.create_index(
        "ix_cw_exchange_outbox_status_next_attempt_at",
        "cw_exchange_outbox",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "cw_exchange_inbox",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("link_id", Key, nullable=False),
        sa.Column("sender", sa.String(100), nullable=False),
        sa.Column("sender_reference", sa.String(100), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("applied_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cw_exchange_inbox"),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["cw_exchange_links.id"],
            name="fk_cw_exchange_inbox_link_id_cw_exchange_links",
        ),
        sa.UniqueConstraint("message_id", name="uq_cw_exchange_inbox_message_id"),
        sa.UniqueConstraint(
            "sender",
            "sender_reference",
            "seq",
            name="uq_cw_exchange_inbox_sender_sender_reference_seq",
        ),
    )
    op.create_index(
        "ix_cw_exchange_inbox_link_id_status", "cw_exchange_inbox", ["link_id", "status"]
    )
    op.create_table(
        "cw_exchange_rejected",
        sa.Column("id", Key, primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("sender", sa.String(100), nullable=True),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cw_exchange_rejected"),
    )
    op.create_index("ix_cw_exchange_rejected_received_at", "cw_exchange_rejected", ["received_at"])


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
