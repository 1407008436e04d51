"""A transport wrapper that injects network faults, for resilience tests and demonstrations.

Each send draws one :class:`Fault` from a seeded random generator, or takes the next one from
a given schedule. The message goes through, is lost before or after reaching the peer, or is
sent twice. It may also fail this attempt so that it goes out later than its successors, or be
kept back and delivered later in shuffled order by :meth:`FaultyTransport.flush`. ``down`` makes the peer
unreachable until it is set back.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum

from case_workflow.exchange.transport import (
    OutboundMessage,
    Receipt,
    ReceiptStatus,
    Transport,
    TransportError,
)

__all__ = ["Fault", "FaultyTransport"]


class Fault(StrEnum):
    DELIVER = "deliver"
    LOSE_REQUEST = "lose_request"
    """The message never reaches the peer; the sender gets a timeout."""
    LOSE_RESPONSE = "lose_response"
    """The peer records the message but the sender gets a timeout and sends it again."""
    DUPLICATE = "duplicate"
    """The peer receives the message twice."""
    DELAY = "delay"
    """This attempt times out, so the message goes out after its successors."""
    HOLD = "hold"
    """The network keeps the message back and delivers it at the next flush, in shuffled order."""


class FaultyTransport:
    """Wraps ``inner`` and injects faults with ``rates`` (weights) or from ``schedule``.

    Held messages are acknowledged to the sender as ``STORED``: call :meth:`flush` before
    checking the peer, or they are lost.
    """

    def __init__(
        self,
        inner: Transport,
        *,
        seed: int = 0,
        rates: Mapping[Fault, float] | None = None,
        schedule: Iterable[Fault] | None = None,
    ) -> None:
        self.inner = inner
        self.down = False
        self.counts: Counter[Fault] = Counter()
        self.held: list[OutboundMessage] = []
        self._random = random.Random(seed)
        weights = dict(rates or {Fault.DELIVER: 1.0})
        self._faults = list(weights)
        self._weights = [weights[fault] for fault in self._faults]
        self._schedule: Iterator[Fault] | None = iter(schedule) if schedule is not None else None

    def _next_fault(self) -> Fault:
        if self._schedule is not None:
            return next(self._schedule, Fault.DELIVER)
        return self._random.choices(self._faults, self._weights)[0]

    def send(self, message: OutboundMessage) -> Receipt:
        if self.down:
            raise TransportError(f"peer {message.recipient} unreachable (simulated outage)")
        fault = self._next_fault()
        self.counts[fault] += 1
        if fault is Fault.LOSE_REQUEST:
            raise TransportError(f"request for {message.message_id} lost (simulated)")
        if fault is Fault.DELAY:
            raise TransportError(f"request for {message.message_id} timed out (simulated)")
        if fault is Fault.HOLD:
            self.held.append(message)
            return Receipt(message.message_id, ReceiptStatus.STORED)
        receipt = self.inner.send(message)
        if fault is Fault.LOSE_RESPONSE:
            raise TransportError(f"response for {message.message_id} lost (simulated)")
        if fault is Fault.DUPLICATE:
            return self.inner.send(message)
        return receipt

    def flush(self) -> list[Receipt]:
        """Deliver the held messages in shuffled order and return the peer's receipts.

        A :class:`TransportError` keeps the undelivered messages held and propagates.
        """
        held, self.held = self.held, []
        self._random.shuffle(held)
        receipts = []
        for index, message in enumerate(held):
            try:
                receipts.append(self.inner.send(message))
            except TransportError:
                self.held.extend(held[index:])
                raise
        return receipts
