"""``Exchange``: one institution's side of the exchange, attached to its ``Engine``.

An exchange registers a step hook on the engine, so every step that the mapping sends writes a
signed message in the step's own transaction. It receives the peer's messages
(:meth:`Exchange.receive`, called by a transport's receiving end), relays its outbox through a
transport, and lists pending, stuck, waiting and rejected messages for monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from case_workflow.clock import Clock
from case_workflow.engine import Engine
from case_workflow.errors import InvalidInput
from case_workflow.exchange.inbox import WAITING, receive
from case_workflow.exchange.keys import KeyRing
from case_workflow.exchange.mapping import ExchangeMapping
from case_workflow.exchange.outbox import (
    DEAD,
    PENDING,
    REJECTED,
    OutgoingMessage,
    list_outgoing,
    write_outgoing,
)
from case_workflow.exchange.relay import RelayResult, RetryPolicy, relay_due
from case_workflow.exchange.transport import Receipt, Transport
from case_workflow.steps import AppliedStep, StepContext
from case_workflow.store.database import read_transaction
from case_workflow.store.exchange_tables import exchange_inbox, exchange_links, exchange_rejected
from case_workflow.store.tables import dossiers

__all__ = ["Exchange", "IncomingMessage", "LinkedDossier", "RejectedMessage"]


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A message recorded in the inbox."""

    message_id: str
    sender: str
    sender_reference: str
    seq: int
    event: str
    status: str
    note: str | None
    received_at: datetime
    applied_at: datetime | None


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A message that failed a check on receipt and was never applied."""

    received_at: datetime
    sender: str | None
    message_id: str | None
    reason: str
    detail: str
    body_sha256: str


@dataclass(frozen=True, slots=True)
class LinkedDossier:
    """A local dossier exchanged with the peer, with its state and message counters."""

    reference: str | None
    peer_reference: str | None
    state: str | None
    last_sent_seq: int
    last_applied_seq: int


class Exchange:
    """One institution's side of a signed, idempotent exchange of dossiers with its peer.

    ``keys.institution`` names this side; it must be a party of ``mapping``, and the engine
    must have loaded that party's workflow. ``clock`` times receipts and retries (the
    engine's clock by default); events applied from messages take the engine's clock.
    """

    def __init__(
        self,
        engine: Engine,
        mapping: ExchangeMapping,
        keys: KeyRing,
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if keys.institution not in mapping.parties:
            raise InvalidInput(
                f"institution {keys.institution!r} is not a party of exchange "
                f"{mapping.name!r}; parties: {', '.join(mapping.parties)}"
            )
        self.engine = engine
        self.mapping = mapping
        self.keys = keys
        self.institution = keys.institution
        self.peer = mapping.peer_of(keys.institution)
        self.clock: Clock = clock or engine.clock
        self.retry = retry or RetryPolicy()
        engine.workflow(mapping.parties[self.institution])
        engine.add_step_hook(self._write_outgoing)

    def _write_outgoing(
        self, connection: Connection, context: StepContext, step: AppliedStep
    ) -> None:
        write_outgoing(connection, context, step, mapping=self.mapping, keys=self.keys)

    # -- receiving and sending ---------------------------------------------------------

    def receive(self, body: bytes) -> Receipt:
        """Check, record and apply one message from the peer; return the sender's receipt."""
        return receive(self.engine, self.mapping, self.keys, body, now=self.clock.now())

    def relay(self, transport: Transport, *, limit: int = 100) -> RelayResult:
        """Send up to ``limit`` due outbox messages through ``transport``."""
        return relay_due(
            self.engine.database, transport, now=self.clock.now(), policy=self.retry, limit=limit
        )

    # -- monitoring ----------------------------------------------------------------------

    def pending(self, *, limit: int | None = None) -> list[OutgoingMessage]:
        """List the outbox messages not yet accepted by the peer, oldest first."""
        with read_transaction(self.engine.database) as connection:
            return list_outgoing(connection, statuses=(PENDING,), limit=limit)

    def stuck(self, *, min_attempts: int = 5) -> list[OutgoingMessage]:
        """List messages that need a person: rejected by the peer, dead, or failing repeatedly."""
        with read_transaction(self.engine.database) as connection:
            given_up = list_outgoing(connection, statuses=(REJECTED, DEAD))
            failing = list_outgoing(connection, statuses=(PENDING,), min_attempts=min_attempts)
        return sorted([*given_up, *failing], key=lambda message: message.created_at)

    def sent(self, *, limit: int | None = None) -> list[OutgoingMessage]:
        """List every outbox message, whatever its status, oldest first."""
        with read_transaction(self.engine.database) as connection:
            return list_outgoing(connection, limit=limit)

    def received(self, *, status: str | None = None) -> list[IncomingMessage]:
        """List inbox messages (``waiting``, ``applied`` or ``not_applicable``), in order."""
        query = select(exchange_inbox).order_by(exchange_inbox.c.id)
        if status is not None:
            query = query.where(exchange_inbox.c.status == status)
        with read_transaction(self.engine.database) as connection:
            return [
                IncomingMessage(
                    message_id=row.message_id,
                    sender=row.sender,
                    sender_reference=row.sender_reference,
                    seq=row.seq,
                    event=row.event,
                    status=row.status,
                    note=row.note,
                    received_at=row.received_at,
                    applied_at=row.applied_at,
                )
                for row in connection.execute(query)
            ]

    def waiting(self) -> list[IncomingMessage]:
        """List received messages that wait for a predecessor (a gap in the sequence)."""
        return self.received(status=WAITING)

    def rejected(self) -> list[RejectedMessage]:
        """List the messages rejected on receipt, oldest first."""
        with read_transaction(self.engine.database) as connection:
            return [
                RejectedMessage(
                    received_at=row.received_at,
                    sender=row.sender,
                    message_id=row.message_id,
                    reason=row.reason,
                    detail=row.detail,
                    body_sha256=row.body_sha256,
                )
                for row in connection.execute(
                    select(exchange_rejected).order_by(exchange_rejected.c.id)
                )
            ]

    def linked_dossiers(self) -> list[LinkedDossier]:
        """List the dossiers exchanged with the peer, with the reference on both sides."""
        query = (
            select(
                dossiers.c.reference,
                dossiers.c.state,
                exchange_links.c.peer_reference,
                exchange_links.c.last_sent_seq,
                exchange_links.c.last_applied_seq,
            )
            .select_from(exchange_links)
            .outerjoin(dossiers, dossiers.c.id == exchange_links.c.dossier_id)
            .where(exchange_links.c.peer == self.peer)
            .order_by(exchange_links.c.id)
        )
        with read_transaction(self.engine.database) as connection:
            return [
                LinkedDossier(
                    reference=row.reference,
                    peer_reference=row.peer_reference,
                    state=row.state,
                    last_sent_seq=row.last_sent_seq,
                    last_applied_seq=row.last_applied_seq,
                )
                for row in connection.execute(query)
            ]
