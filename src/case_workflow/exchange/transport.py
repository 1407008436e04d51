"""The transport contract between two exchange sides, the receipt and the delivery errors.

A transport carries one signed message (an envelope's canonical JSON) to the peer institution.
:class:`Transport` states the contract that the HTTP and drop-folder transports implement and
that the relay relies on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from case_workflow.errors import CaseWorkflowError

__all__ = [
    "MessageRejected",
    "OutboundMessage",
    "Receipt",
    "ReceiptStatus",
    "RejectionReason",
    "Transport",
    "TransportError",
]


class ReceiptStatus(StrEnum):
    """Outcome of a message at the receiving side."""

    APPLIED = "applied"
    """Applied in the same transaction as the resulting state change."""
    NOT_APPLICABLE = "not_applicable"
    """Recorded and taken in sequence, but the dossier had moved on (for example, closed)."""
    WAITING = "waiting"
    """Recorded; it applies once the messages with lower sequence numbers have arrived."""
    DUPLICATE = "duplicate"
    """Already recorded under the same message id; nothing was done again."""
    STORED = "stored"
    """Handed over to be processed later (a drop folder): the receiver has not seen it yet."""
    REJECTED = "rejected"
    """Refused and recorded as rejected; never applied."""


class RejectionReason(StrEnum):
    """Reason a receiving side gives for rejecting a message."""

    MALFORMED = "malformed"
    UNKNOWN_SENDER = "unknown_sender"
    WRONG_RECIPIENT = "wrong_recipient"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_DOSSIER = "unknown_dossier"


@dataclass(frozen=True)
class Receipt:
    """The receiving side's response about one message."""

    message_id: str | None
    status: ReceiptStatus
    reason: RejectionReason | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        """True when the sender may stop sending the message."""
        return self.status is not ReceiptStatus.REJECTED


@dataclass(frozen=True)
class OutboundMessage:
    """A signed message as the relay hands it to a transport."""

    message_id: str
    recipient: str
    body: bytes


class TransportError(CaseWorkflowError):
    """The message may not have reached the peer (unreachable, timed out, server error).

    The relay sends it again later; the peer drops duplicates by message id.
    """


class MessageRejected(CaseWorkflowError):
    """The peer rejected the message for good; sending it again cannot succeed."""

    def __init__(self, message_id: str, reason: RejectionReason | None, detail: str) -> None:
        self.message_id = message_id
        self.reason = reason
        self.detail = detail
        super().__init__(
            f"message {message_id} rejected by the peer ({reason or 'no reason given'}): {detail}"
        )


class Transport(Protocol):
    """Carries signed messages to the peer institution.

    Contract for implementations:

    - ``send`` returns a :class:`Receipt` only once the peer has durably recorded the message
      (``APPLIED``, ``NOT_APPLICABLE``, ``WAITING``, ``DUPLICATE``) or durably taken it over for
      later processing (``STORED``). The relay then marks the message sent and never sends it
      again.
    - ``send`` raises :class:`TransportError` when it cannot tell whether the peer recorded the
      message (connection refused, timeout, lost response, server error). The relay retries
      with backoff, so the same body may arrive several times; the receiver acknowledges the
      copies as ``DUPLICATE`` and applies the message once.
    - ``send`` raises :class:`MessageRejected` when the peer refused the message (bad
      signature, unknown sender, malformed, replayed). The peer has recorded the rejection on
      its side; the relay stops sending.
    - The body is sent byte for byte: the signature covers it. Ordering between messages is
      not promised; the receiver orders each dossier's messages by sequence number.
    """

    def send(self, message: OutboundMessage) -> Receipt: ...
