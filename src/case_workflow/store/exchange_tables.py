"""SQLAlchemy Core tables of the exchange between two institutions' engines.

They share ``metadata`` with :mod:`case_workflow.store.tables`; migration 0002 creates them.

A link ties a local dossier to the same dossier at a peer institution and counts the messages
of that conversation in each direction. The outbox stores signed messages written in the same
transaction as the step that caused them. The inbox records each received message once, by id
and by (sender, sender's reference, sequence number). Rejected messages are kept apart and never
applied.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from case_workflow.store.tables import Key, metadata
from case_workflow.store.types import UTCDateTime

__all__ = ["exchange_inbox", "exchange_links", "exchange_outbox", "exchange_rejected"]

exchange_links = Table(
    "cw_exchange_links",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("peer", String(100), nullable=False),
    # The dossier's reference at the peer; unknown until the peer's first message names it.
    Column("peer_reference", String(100), nullable=True),
    # Empty while messages wait for the peer's message that creates the local dossier.
    Column("dossier_id", Key, ForeignKey("cw_dossiers.id"), nullable=True),
    Column("last_sent_seq", Integer, nullable=False),
    Column("last_applied_seq", Integer, nullable=False),
    UniqueConstraint("peer", "peer_reference"),
    UniqueConstraint("dossier_id", "peer"),
)

exchange_outbox = Table(
    "cw_exchange_outbox",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("dossier_id", Key, ForeignKey("cw_dossiers.id"), nullable=False),
    Column("peer", String(100), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event", String(64), nullable=False),
    # The signed envelope exactly as sent, in canonical JSON.
    Column("body", Text, nullable=False),
    # pending, sent, rejected (by the peer) or dead (attempts used up)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    # Empty means due at once; set by a claim (lease) or a retry (backoff).
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("receipt", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    UniqueConstraint("dossier_id", "peer", "seq"),
    Index(None, "status", "next_attempt_at"),
)

exchange_inbox = Table(
    "cw_exchange_inbox",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("message_id", String(36), nullable=False, unique=True),
    Column("link_id", Key, ForeignKey("cw_exchange_links.id"), nullable=False),
    Column("sender", String(100), nullable=False),
    Column("sender_reference", String(100), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event", String(64), nullable=False),
    Column("body", Text, nullable=False),
    # waiting (for an earlier sequence number), applied, or not_applicable (state moved on)
    Column("status", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("applied_at", UTCDateTime, nullable=True),
    UniqueConstraint("sender", "sender_reference", "seq"),
    Index(None, "link_id", "status"),
)

exchange_rejected = Table(
    "cw_exchange_rejected",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    # As the message claims them; empty when the message could not be parsed.
    Column("sender", String(100), nullable=True),
    Column("message_id", String(36), nullable=True),
    # unknown_sender, bad_signature, replayed, malformed, wrong_recipient or unknown_event
    Column("reason", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Index(None, "received_at"),
)
