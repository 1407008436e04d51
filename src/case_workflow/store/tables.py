"""SQLAlchemy Core tables of the store.

The database is the source of truth: a dossier is a row and its state a column. Migrations in
``store/migrations`` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from case_workflow.store.types import UTCDateTime

__all__ = [
    "calendar_changes",
    "deadline_actions",
    "deadlines",
    "dossiers",
    "events",
    "letters",
    "metadata",
    "outbox",
    "registry_counters",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only gives an auto-incrementing key to INTEGER PRIMARY KEY columns.
Key = BigInteger().with_variant(Integer(), "sqlite")

dossiers = Table(
    "cw_dossiers",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("reference", String(64), nullable=False, unique=True),
    Column("workflow", String(100), nullable=False),
    Column("workflow_version", Integer, nullable=False),
    Column("state", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("respondent", String(100), nullable=True),
    Column("region", String(100), nullable=True),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("escalation_level", Integer, nullable=False, default=0),
    Column("outcome", String(64), nullable=True),
    Column("subject", Text, nullable=False, default=""),
    Column("external_reference", String(100), nullable=True),
    Column("complainant", JSON, nullable=False),
    Column("data", JSON, nullable=False),
    Column("filed_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("event_count", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Index(None, "state"),
    Index(None, "respondent", "state"),
    Index(None, "filed_at"),
)

events = Table(
    "cw_events",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("dossier_id", Key, ForeignKey("cw_dossiers.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("from_state", String(64), nullable=True),
    Column("to_state", String(64), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(64), nullable=False),
    Column("institution", String(100), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("dossier_id", "seq"),
)

deadlines = Table(
    "cw_deadlines",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("dossier_id", Key, ForeignKey("cw_dossiers.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("state", String(64), nullable=False),
    # running, paused, met, missed or cancelled (see deadlines.DeadlineStatus)
    Column("status", String(16), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("paused_at", UTCDateTime, nullable=True),
    Column("remaining", String(64), nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    # Working days from the start's local date (excluded) to the close's local date (included),
    # counted with the engine's calendar when the deadline was met or missed. NULL for other
    # statuses and for deadlines closed before revision 0003 added the column.
    Column("working_days", Integer, nullable=True),
    Column("rests_on_estimate", Boolean, nullable=False, default=False),
    Column("explanation", JSON, nullable=False),
    Index(None, "dossier_id", "status"),
    Index(None, "status", "due_at"),
)

deadline_actions = Table(
    "cw_deadline_actions",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("deadline_id", Key, ForeignKey("cw_deadlines.id"), nullable=False),
    Column("dossier_id", Key, ForeignKey("cw_dossiers.id"), nullable=False),
    # reminder or escalation; level counts from 1 within its kind
    Column("kind", String(16), nullable=False),
    Column("level", Integer, nullable=False),
    Column("fire_at", UTCDateTime, nullable=False),
    # pending, suspended (deadline paused), done, skipped or cancelled
    Column("status", String(16), nullable=False),
    Column("letter", String(64), nullable=True),
    Column("event", String(64), nullable=True),
    Column("done_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    UniqueConstraint("deadline_id", "kind", "level"),
    # The sweep's cost follows the number of due actions, not of open dossiers.
    Index(
        "ix_cw_deadline_actions_pending_fire_at",
        "fire_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    Index(None, "dossier_id", "status"),
)

registry_counters = Table(
    "cw_registry_counters",
    metadata,
    Column("series", String(100), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

letters = Table(
    "cw_letters",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("dossier_id", Key, ForeignKey("cw_dossiers.id"), nullable=False),
    Column("event_id", Key, ForeignKey("cw_events.id"), nullable=False),
    Column("letter", String(64), nullable=False),
    Column("language", String(8), nullable=False),
    Column("registry_number", String(64), nullable=False),
    Column("sender", String(100), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("subject", Text, nullable=False),
    Column("template", String(200), nullable=False),
    Column("html", Text, nullable=False),
    Column("context", JSON, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("pdf_sha256", String(64), nullable=True),
    UniqueConstraint("event_id", "letter", "language"),
    Index(None, "dossier_id"),
    Index(None, "registry_number"),
)

outbox = Table(
    "cw_outbox",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("dossier_id", Key, ForeignKey("cw_dossiers.id"), nullable=False),
    Column("letter_id", Key, ForeignKey("cw_letters.id"), nullable=True),
    Column("channel", String(32), nullable=False),
    Column("recipient", String(200), nullable=False),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("payload", JSON, nullable=False),
    # pending, sent or dead
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index(None, "status", "next_attempt_at"),
)

calendar_changes = Table(
    "cw_calendar_changes",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("calendar", String(100), nullable=False),
    # add, confirm or remove
    Column("action", String(16), nullable=False),
    Column("day", Date, nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
