"""The exchange inbox: checking, recording and applying received messages, once and in order.

:func:`receive` checks a message's form, recipient, sender, signature and event before it
touches a dossier. A message failing any check is recorded in the rejected table and never
applied. A message that passes is recorded by id in the same transaction that applies it.
Each dossier's messages apply in sequence-number order: one that arrives before its
predecessor waits in the inbox and applies, in order, when the gap is filled. A copy of a
recorded message is acknowledged as a duplicate and ignored.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from case_workflow.engine import Engine
from case_workflow.errors import CaseWorkflowError, ConcurrencyError
from case_workflow.exchange.envelope import Envelope, EnvelopeError, parse_envelope
from case_workflow.exchange.keys import KeyRing
from case_workflow.exchange.links import (
    Link,
    create_link,
    link_by_dossier,
    link_by_peer_reference,
    set_link,
)
from case_workflow.exchange.mapping import ExchangeMapping, MessageRule
from case_workflow.exchange.outbox import RECEIVED_MESSAGE
from case_workflow.exchange.transport import Receipt, ReceiptStatus, RejectionReason
from case_workflow.records import Complainant
from case_workflow.states import Actor
from case_workflow.steps import apply_step
from case_workflow.store.database import retry_when_locked, write_transaction
from case_workflow.store.exchange_tables import exchange_inbox, exchange_rejected
from case_workflow.store.history import load_dossier
from case_workflow.store.tables import dossiers

__all__ = ["APPLIED", "NOT_APPLICABLE", "WAITING", "Rejection", "receive"]

log = logging.getLogger(__name__)

WAITING = "waiting"
APPLIED = "applied"
NOT_APPLICABLE = "not_applicable"

_MAX_STORED_BODY = 65_536
_ATTEMPTS = 5


class Rejection(Exception):
    """A message failed a check; it is recorded as rejected with this reason."""

    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class _Side:
    engine: Engine
    mapping: ExchangeMapping
    keys: KeyRing
    now: datetime


def receive(
    engine: Engine, mapping: ExchangeMapping, keys: KeyRing, body: bytes, *, now: datetime
) -> Receipt:
    """Check, record and apply one received message body; return the receipt for the sender."""
    side = _Side(engine, mapping, keys, now)
    try:
        envelope = parse_envelope(body)
    except EnvelopeError as error:
        return _reject(side, body, None, Rejection(RejectionReason.MALFORMED, str(error)))
    try:
        _check(side, envelope)
        return _record_and_apply(side, envelope)
    except Rejection as rejection:
        return _reject(side, body, envelope, rejection)


def _check(side: _Side, envelope: Envelope) -> None:
    if envelope.recipient != side.keys.institution:
        raise Rejection(
            RejectionReason.WRONG_RECIPIENT,
            f"message is addressed to {envelope.recipient!r}, this side is "
            f"{side.keys.institution!r}",
        )
    if envelope.sender not in side.mapping.parties or not side.keys.knows(envelope.sender):
        raise Rejection(
            RejectionReason.UNKNOWN_SENDER,
            f"sender {envelope.sender!r} is not a configured peer with a public key",
        )
    if not side.keys.verify(envelope):
        raise Rejection(
            RejectionReason.BAD_SIGNATURE,
            f"signature does not verify with the public key(s) of {envelope.sender!r}; the "
            "content was changed or signed with another key",
        )
    rule = side.mapping.rule(envelope.sender, envelope.event)
    if rule is None or rule.receiver != side.keys.institution:
        raise Rejection(
            RejectionReason.UNKNOWN_EVENT,
            f"mapping {side.mapping.name!r} has no message {envelope.sender}:{envelope.event}",
        )
    if rule.create and envelope.seq != 1:
        raise Rejection(
            RejectionReason.MALFORMED,
            f"message {envelope.event!r} creates the dossier, so its seq must be 1, "
            f"got {envelope.seq}",
        )


def _record_and_apply(side: _Side, envelope: Envelope) -> Receipt:
    def attempt() -> Receipt:
        with write_transaction(side.engine.database) as connection:
            return _store(connection, side, envelope)

    for remaining in range(_ATTEMPTS - 1, -1, -1):
        try:
            return retry_when_locked(attempt)
        except (ConcurrencyError, IntegrityError):
            # A local step or another receipt for the same dossier won the race; start over.
            # NOTE: this path (two receipts creating one link at once on PostgreSQL) has no
            # concurrent test; SQLite serializes receipts with its write lock.
            if remaining == 0:
                raise
            log.warning("message %s lost a race; retrying", envelope.message_id)
    raise AssertionError("unreachable")


def _store(connection: Connection, side: _Side, envelope: Envelope) -> Receipt:
    message_id = str(envelope.message_id)
    body = envelope.to_json().decode()
    known = connection.execute(
        select(exchange_inbox.c.body, exchange_inbox.c.status).where(
            exchange_inbox.c.message_id == message_id
        )
    ).first()
    if known is not None:
        if known.body != body:
            raise Rejection(
                RejectionReason.REPLAYED, f"message id {message_id} was recorded with other content"
            )
        return Receipt(message_id, ReceiptStatus.DUPLICATE, detail=f"recorded as {known.status}")
    link = _find_link(connection, envelope)
    taken = connection.execute(
        select(exchange_inbox.c.message_id).where(
            exchange_inbox.c.sender == envelope.sender,
            exchange_inbox.c.sender_reference == envelope.dossier.sender,
            exchange_inbox.c.seq == envelope.seq,
        )
    ).first()
    if taken is not None or envelope.seq <= link.last_applied_seq:
        raise Rejection(
            RejectionReason.REPLAYED,
            f"seq {envelope.seq} of {envelope.sender} dossier {envelope.dossier.sender} was "
            "already received under another message id",
        )
    connection.execute(
        insert(exchange_inbox),
        {
            "message_id": message_id,
            "link_id": link.id,
            "sender": envelope.sender,
            "sender_reference": envelope.dossier.sender,
            "seq": envelope.seq,
            "event": envelope.event,
            "body": body,
            "status": WAITING,
            "received_at": side.now,
        },
    )
    statuses = _drain(connection, side, link)
    status = statuses.get(message_id, WAITING)
    if status == WAITING:
        log.info(
            "message %s (seq %d) waits for seq %d of dossier %s",
            message_id,
            envelope.seq,
            link.last_applied_seq + 1,
            envelope.dossier.sender,
        )
    return Receipt(message_id, ReceiptStatus(status))


def _find_link(connection: Connection, envelope: Envelope) -> Link:
    sender = envelope.sender
    if envelope.dossier.recipient is None:
        link = link_by_peer_reference(connection, sender, envelope.dossier.sender)
        if link is None:
            # Messages may arrive before the one that creates the dossier here.
            link = create_link(
                connection, peer=sender, peer_reference=envelope.dossier.sender, dossier_id=None
            )
        return link
    dossier_id = connection.execute(
        select(dossiers.c.id).where(dossiers.c.reference == envelope.dossier.recipient)
    ).scalar_one_or_none()
    link = None if dossier_id is None else link_by_dossier(connection, dossier_id, sender)
    if link is None:
        raise Rejection(
            RejectionReason.UNKNOWN_DOSSIER,
            f"no dossier {envelope.dossier.recipient!r} exchanged with {sender!r}",
        )
    if link.peer_reference is None:
        set_link(connection, link.id, peer_reference=envelope.dossier.sender)
    elif link.peer_reference != envelope.dossier.sender:
        raise Rejection(
            RejectionReason.UNKNOWN_DOSSIER,
            f"dossier {envelope.dossier.recipient!r} is linked to {sender} dossier "
            f"{link.peer_reference!r}, not {envelope.dossier.sender!r}",
        )
    return link


def _drain(connection: Connection, side: _Side, link: Link) -> dict[str, str]:
    """Apply the link's waiting messages that are next in sequence; return their statuses."""
    statuses: dict[str, str] = {}
    applied_seq = link.last_applied_seq
    dossier_id = link.dossier_id
    while True:
        row = connection.execute(
            select(exchange_inbox.c.id, exchange_inbox.c.message_id, exchange_inbox.c.body).where(
                exchange_inbox.c.link_id == link.id,
                exchange_inbox.c.seq == applied_seq + 1,
                exchange_inbox.c.status == WAITING,
            )
        ).first()
        if row is None:
            break
        envelope = Envelope.model_validate_json(row.body)
        rule = side.mapping.rule(envelope.sender, envelope.event)
        assert rule is not None  # checked on receipt
        note: str | None = None
        savepoint = connection.begin_nested()
        try:
            dossier_id = _apply(connection, side, rule, envelope, dossier_id)
        except ConcurrencyError:
            savepoint.rollback()
            raise
        except CaseWorkflowError as error:
            savepoint.rollback()
            status, note = NOT_APPLICABLE, f"{type(error).__name__}: {error}"
            log.warning("message %s not applicable: %s", row.message_id, error)
        else:
            savepoint.commit()
            status = APPLIED
        connection.execute(
            update(exchange_inbox)
            .where(exchange_inbox.c.id == row.id)
            .values(status=status, note=note, applied_at=side.now)
        )
        applied_seq += 1
        statuses[row.message_id] = status
    if applied_seq != link.last_applied_seq or dossier_id != link.dossier_id:
        set_link(connection, link.id, last_applied_seq=applied_seq, dossier_id=dossier_id)
    return statuses


def _apply(
    connection: Connection,
    side: _Side,
    rule: MessageRule,
    envelope: Envelope,
    dossier_id: int | None,
) -> int | None:
    """Apply one message's action; return the local dossier's id (new for a create)."""
    engine = side.engine
    receiver = side.mapping.workflow_of(rule.receiver).definition
    actor = Actor(
        name=f"{envelope.actor.name} ({envelope.sender})",
        role=rule.role,
        institution=receiver.roles[rule.role].institution,
    )
    payload: dict[str, Any] = {
        key: value for key, value in envelope.payload.items() if key != "dossier"
    }
    payload[RECEIVED_MESSAGE] = {
        "id": str(envelope.message_id),
        "sender": envelope.sender,
        "seq": envelope.seq,
        "reference": envelope.dossier.sender,
        "event": envelope.event,
    }
    at = engine.clock.now()
    if rule.create:
        described = envelope.payload.get("dossier")
        if not isinstance(described, dict):
            raise _not_applicable("a create message needs a 'dossier' object in its payload")
        complainant = described.get("complainant")
        reference = engine.file_within(
            connection,
            receiver.workflow,
            actor=actor,
            complainant=Complainant.from_dict(complainant if isinstance(complainant, dict) else {}),
            subject=str(described.get("subject", "")),
            respondent=_text(described.get("respondent")),
            region=_text(described.get("region")),
            urgent=bool(described.get("urgent", False)),
            external_reference=envelope.dossier.sender,
            payload=payload,
            at=at,
        )
        return load_dossier(connection, reference).id
    if dossier_id is None:
        raise _not_applicable(f"no local dossier for {envelope.sender} {envelope.dossier.sender}")
    row = load_dossier(connection, dossier_id=dossier_id)
    if rule.fire is not None:
        engine.fire_within(
            connection, row.reference, rule.fire, actor=actor, payload=payload, at=at
        )
    elif rule.record is not None:
        context = engine.step_context(row.workflow, row.workflow_version)
        apply_step(
            connection,
            context,
            row,
            trigger=rule.record,
            to_state=row.state,
            actor=actor,
            payload=payload,
            at=at,
        )
    return dossier_id


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _not_applicable(detail: str) -> CaseWorkflowError:
    return CaseWorkflowError(detail)


def _reject(side: _Side, body: bytes, envelope: Envelope | None, rejection: Rejection) -> Receipt:
    message_id = str(envelope.message_id) if envelope is not None else None
    sender = envelope.sender if envelope is not None else None
    text = body.decode("utf-8", errors="replace")

    def attempt() -> None:
        with write_transaction(side.engine.database) as connection:
            connection.execute(
                insert(exchange_rejected),
                {
                    "received_at": side.now,
                    "sender": sender[:100] if sender else None,
                    "message_id": message_id,
                    "reason": rejection.reason.value,
                    "detail": rejection.detail,
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                    "body": text[:_MAX_STORED_BODY],
                },
            )

    retry_when_locked(attempt)
    log.warning(
        "rejected message %s from %s: %s (%s)",
        message_id or "<unparsed>",
        sender or "<unknown>",
        rejection.reason.value,
        rejection.detail,
    )
    return Receipt(message_id, ReceiptStatus.REJECTED, rejection.reason, rejection.detail)
