"""Outbox operations for the command line: list, retry, purge and deliver.

Each function takes a :class:`case_workflow.Engine` or a SQLAlchemy engine, does its work in
short transactions and returns plain data for the caller to print.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import delete, func, select, update

from case_workflow.clock import Clock, SystemClock, ensure_utc
from case_workflow.delivery.archive import archive_letters
from case_workflow.delivery.channel import Channel
from case_workflow.delivery.outbox import OutboxRelay, RelayResult, RetryPolicy
from case_workflow.errors import InvalidInput
from case_workflow.store.database import read_transaction, write_transaction
from case_workflow.store.tables import dossiers, outbox

if TYPE_CHECKING:
    from case_workflow.engine import Engine

__all__ = [
    "OutboxEntry",
    "OutboxStatus",
    "archive_pending",
    "count_outbox",
    "deliver",
    "list_outbox",
    "purge_sent",
    "retry_dead",
]

log = logging.getLogger(__name__)


class OutboxStatus(StrEnum):
    """State of an outbox message."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True)
class OutboxEntry:
    """A snapshot of an outbox row, for listings."""

    id: int
    dossier_reference: str
    channel: str
    recipient: str
    idempotency_key: str
    registry_number: str | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def _database(target: Engine | SqlEngine) -> SqlEngine:
    if isinstance(target, SqlEngine):
        return target
    return target.database


def _status(value: OutboxStatus | str | None) -> OutboxStatus | None:
    if value is None:
        return None
    try:
        return OutboxStatus(value)
    except ValueError:
        choices = ", ".join(status.value for status in OutboxStatus)
        raise InvalidInput(f"unknown outbox status {value!r}; use one of: {choices}") from None


def list_outbox(
    target: Engine | SqlEngine,
    *,
    status: OutboxStatus | str | None = None,
    channel: str | None = None,
    limit: int = 100,
) -> list[OutboxEntry]:
    """List outbox messages, oldest first, optionally of one status and channel."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    status_filter = _status(status)
    query = (
        select(outbox, dossiers.c.reference)
        .join(dossiers, dossiers.c.id == outbox.c.dossier_id)
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if status_filter is not None:
        query = query.where(outbox.c.status == status_filter.value)
    if channel is not None:
        query = query.where(outbox.c.channel == channel)
    with read_transaction(_database(target)) as connection:
        rows = connection.execute(query).all()
    return [
        OutboxEntry(
            id=row.id,
            dossier_reference=row.reference,
            channel=row.channel,
            recipient=row.recipient,
            idempotency_key=row.idempotency_key,
            registry_number=row.payload.get("registry_number"),
            status=OutboxStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            created_at=row.created_at,
            sent_at=row.sent_at,
        )
        for row in rows
    ]


def count_outbox(target: Engine | SqlEngine) -> dict[OutboxStatus, int]:
    """Count outbox messages by status (every status is present, 0 when none)."""
    counts = dict.fromkeys(OutboxStatus, 0)
    with read_transaction(_database(target)) as connection:
        for status, number in connection.execute(
            select(outbox.c.status, func.count()).group_by(outbox.c.status)
        ):
            counts[OutboxStatus(status)] = int(number)
    return counts


def retry_dead(
    target: Engine | SqlEngine, *, now: datetime, ids: Sequence[int] | None = None
) -> int:
    """Make dead messages (all, or those of ``ids``) pending again, due at ``now``.

    Their attempt count restarts at 0; their last error is kept until the next attempt.
    Returns how many messages were revived.
    """
    moment = ensure_utc(now)
    statement = (
        update(outbox)
        .where(outbox.c.status == OutboxStatus.DEAD.value)
        .values(status=OutboxStatus.PENDING.value, attempts=0, next_attempt_at=moment)
    )
    if ids is not None:
        statement = statement.where(outbox.c.id.in_(list(ids)))
    with write_transaction(_database(target)) as connection:
        revived = connection.execute(statement).rowcount
    log.info("outbox: %d dead messages made pending again", revived)
    return int(revived)


def purge_sent(target: Engine | SqlEngine, *, now: datetime, older_than_days: int) -> int:
    """Delete sent messages whose ``sent_at`` is more than ``older_than_days`` before ``now``.

    The letters and their PDF hashes stay in ``cw_letters`` and the dossier's history; only
    the delivery records go. Returns how many were deleted.
    """
    if older_than_days < 0:
        raise InvalidInput(f"older_than_days must be 0 or more, got {older_than_days}")
    cutoff = ensure_utc(now) - timedelta(days=older_than_days)
    with write_transaction(_database(target)) as connection:
        deleted = connection.execute(
            delete(outbox)
            .where(outbox.c.status == OutboxStatus.SENT.value)
            .where(outbox.c.sent_at < cutoff)
        ).rowcount
    log.info("outbox: %d sent messages older than %s purged", deleted, cutoff.isoformat())
    return int(deleted)


def deliver(
    target: Engine | SqlEngine,
    channels: Mapping[str, Channel],
    *,
    clock: Clock | None = None,
    policy: RetryPolicy | None = None,
    lease: timedelta = timedelta(minutes=15),
    batch_size: int = 20,
    loop: bool = False,
    interval: float = 30.0,
    max_rounds: int | None = None,
    stop: threading.Event | None = None,
) -> RelayResult:
    """Run the outbox relay once, or in a loop, and return the totals.

    Once: deliver batches until no message is due. Loop: keep going, waiting ``interval``
    seconds whenever nothing is due, until ``stop`` is set or ``max_rounds`` batches ran.
    The clock defaults to the engine's clock, else the system clock.
    """
    if interval <= 0:
        raise InvalidInput(f"interval must be positive seconds, got {interval}")
    if clock is None:
        clock = clock_of(target)
    relay = OutboxRelay(
        _database(target),
        channels,
        clock=clock,
        policy=policy,
        lease=lease,
        batch_size=batch_size,
    )
    stop = stop or threading.Event()
    total = RelayResult()
    rounds = 0
    while not stop.is_set() and (max_rounds is None or rounds < max_rounds):
        rounds += 1
        result = relay.run_once()
        total += result
        if result.handled:
            continue
        if not loop:
            break
        stop.wait(interval)
    log.info(
        "outbox relay: %d sent, %d to retry, %d dead in %d rounds",
        total.sent,
        total.retried,
        total.dead,
        rounds,
    )
    return total


def archive_pending(target: Engine | SqlEngine, *, now: datetime, limit: int = 100) -> int:
    """Render and archive up to ``limit`` letter versions that were never sent; return how many.

    The relay archives the version it sends; the other language versions wait for this.
    """
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    return archive_letters(_database(target), now=ensure_utc(now), limit=limit)


def clock_of(target: Engine | SqlEngine) -> Clock:
    """Return the engine's clock, or the system clock for a bare SQLAlchemy engine."""
    if isinstance(target, SqlEngine):
        return SystemClock()
    return target.clock
