"""The exchange outbox: signed messages written in the step's transaction, and their delivery state.

:func:`write_outgoing` runs as a step hook, inside the transaction of the step that causes the
message, so a message exists if and only if its step committed. The relay later claims due
messages (:func:`claim_due`), sends them and records the result.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from case_workflow.exchange.envelope import (
    Attachment,
    DossierReferences,
    Envelope,
    RemoteActor,
)
from case_workflow.exchange.keys import KeyRing
from case_workflow.exchange.links import create_link, link_by_dossier, set_link
from case_workflow.exchange.mapping import ExchangeMapping
from case_workflow.steps import AppliedStep, StepContext
from case_workflow.store.exchange_tables import exchange_outbox
from case_workflow.store.tables import dossiers, letters

__all__ = [
    "DEAD",
    "PENDING",
    "RECEIVED_MESSAGE",
    "REJECTED",
    "SENT",
    "ClaimedMessage",
    "OutgoingMessage",
    "claim_due",
    "list_outgoing",
    "record_attempt",
    "write_outgoing",
]

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
REJECTED = "rejected"
DEAD = "dead"

RECEIVED_MESSAGE = "received_message"
"""Payload field that marks a step applied from a peer's message; such steps are not sent back."""

_MAX_ERROR_LENGTH = 2000


def write_outgoing(
    connection: Connection,
    context: StepContext,
    step: AppliedStep,
    *,
    mapping: ExchangeMapping,
    keys: KeyRing,
) -> None:
    """Write the signed message that ``step`` sends to the peer, if the mapping sends one."""
    institution = keys.institution
    if context.workflow.definition.workflow != mapping.parties[institution]:
        return
    if RECEIVED_MESSAGE in step.payload:
        return
    rule = mapping.rule(institution, step.trigger)
    if rule is None or not rule.sends_from(step.from_state):
        return
    peer = rule.receiver
    link = link_by_dossier(connection, step.dossier.id, peer)
    payload: dict[str, Any] = dict(step.payload)
    if rule.create:
        if link is not None:
            log.warning(
                "dossier %s was already sent to %s; %r creates nothing there",
                step.dossier.reference,
                peer,
                step.trigger,
            )
            return
        described = _describe_dossier(connection, context, step.dossier.id, peer)
        if described is None:
            return
        payload["dossier"] = described
        link = create_link(connection, peer=peer, peer_reference=None, dossier_id=step.dossier.id)
    elif link is None:
        return
    seq = link.last_sent_seq + 1
    set_link(connection, link.id, last_sent_seq=seq)
    envelope = Envelope(
        message_id=uuid.uuid4(),
        sender=institution,
        recipient=peer,
        dossier=DossierReferences(sender=step.dossier.reference, recipient=link.peer_reference),
        seq=seq,
        created_at=step.at,
        event=step.trigger,
        actor=RemoteActor(name=step.actor.name, role=step.actor.role),
        payload=payload,
        attachments=_attachments(connection, step.event.id),
    )
    signed = keys.sign(envelope)
    connection.execute(
        insert(exchange_outbox),
        {
            "message_id": str(signed.message_id),
            "dossier_id": step.dossier.id,
            "peer": peer,
            "seq": seq,
            "event": step.trigger,
            "body": signed.to_json().decode(),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": None,
            "created_at": step.at,
        },
    )


def _describe_dossier(
    connection: Connection, context: StepContext, dossier_id: int, peer: str
) -> dict[str, Any] | None:
    """Return what the peer needs to file the dossier; None if its respondent is not ``peer``."""
    row = connection.execute(select(dossiers).where(dossiers.c.id == dossier_id)).one()
    respondent = context.workflow.definition.respondents.get(row.respondent or "")
    if respondent is not None and respondent.institution != peer:
        return None
    return {
        "subject": row.subject,
        "complainant": dict(row.complainant),
        "respondent": row.respondent,
        "region": row.region,
        "urgent": bool(row.urgent),
        "filed_at": row.filed_at.isoformat(),
    }


def _attachments(connection: Connection, event_id: int) -> tuple[Attachment, ...]:
    rows = connection.execute(
        select(letters.c.letter, letters.c.language, letters.c.sha256, letters.c.registry_number)
        .where(letters.c.event_id == event_id)
        .order_by(letters.c.id)
    )
    return tuple(
        Attachment(
            name=f"{row.letter}.{row.language}.html",
            sha256=row.sha256,
            registry_number=row.registry_number,
        )
        for row in rows
    )


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    id: int
    message_id: str
    peer: str
    body: bytes
    attempts: int


def claim_due(
    connection: Connection, *, now: datetime, limit: int, lease: timedelta
) -> list[ClaimedMessage]:
    """Claim up to ``limit`` due pending messages for ``lease``, oldest first.

    Each claim counts as an attempt. PostgreSQL skips rows another relay holds; on SQLite the
    caller's write lock keeps relays apart.
    """
    query = (
        select(
            exchange_outbox.c.id,
            exchange_outbox.c.message_id,
            exchange_outbox.c.peer,
            exchange_outbox.c.body,
            exchange_outbox.c.attempts,
        )
        .where(exchange_outbox.c.status == PENDING)
        .where(
            or_(
                exchange_outbox.c.next_attempt_at.is_(None),
                exchange_outbox.c.next_attempt_at <= now,
            )
        )
        .order_by(exchange_outbox.c.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = [
        ClaimedMessage(row.id, row.message_id, row.peer, row.body.encode(), row.attempts + 1)
        for row in connection.execute(query)
    ]
    if claimed:
        connection.execute(
            update(exchange_outbox)
            .where(exchange_outbox.c.id.in_([message.id for message in claimed]))
            .values(attempts=exchange_outbox.c.attempts + 1, next_attempt_at=now + lease)
        )
    return claimed


def record_attempt(
    connection: Connection,
    message_id: int,
    *,
    status: str,
    now: datetime,
    receipt: str | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Record the outcome of one attempt: sent, rejected, dead, or pending until ``retry_at``."""
    values: dict[str, Any] = {"status": status, "receipt": receipt}
    if status == SENT:
        values["sent_at"] = now
        values["next_attempt_at"] = None
    if error is not None:
        values["last_error"] = error[:_MAX_ERROR_LENGTH]
    if status == PENDING:
        values["next_attempt_at"] = retry_at
    connection.execute(
        update(exchange_outbox).where(exchange_outbox.c.id == message_id).values(**values)
    )


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message in the outbox, as listed for monitoring."""

    message_id: str
    reference: str
    peer: str
    seq: int
    event: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    receipt: str | None
    created_at: datetime
    sent_at: datetime | None


def list_outgoing(
    connection: Connection,
    *,
    statuses: tuple[str, ...] | None = None,
    min_attempts: int = 0,
    limit: int | None = None,
) -> list[OutgoingMessage]:
    """List outbox messages with the given statuses and at least ``min_attempts`` attempts."""
    query = (
        select(exchange_outbox, dossiers.c.reference)
        .join(dossiers, dossiers.c.id == exchange_outbox.c.dossier_id)
        .order_by(exchange_outbox.c.id)
    )
    if statuses is not None:
        query = query.where(exchange_outbox.c.status.in_(statuses))
    if min_attempts:
        query = query.where(exchange_outbox.c.attempts >= min_attempts)
    if limit is not None:
        query = query.limit(limit)
    return [
        OutgoingMessage(
            message_id=row.message_id,
            reference=row.reference,
            peer=row.peer,
            seq=row.seq,
            event=row.event,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            receipt=row.receipt,
            created_at=row.created_at,
            sent_at=row.sent_at,
        )
        for row in connection.execute(query)
    ]
