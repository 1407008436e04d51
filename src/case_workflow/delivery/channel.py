"""The delivery channel contract, the message a channel receives, and delivery errors.

A channel (SMTP, drop folder, webhook) carries one outbox message to its recipient. The relay
in :mod:`case_workflow.delivery.outbox` decides when to call it and what to do with its result.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from case_workflow.errors import CaseWorkflowError

__all__ = [
    "Channel",
    "DeliveryError",
    "LetterDocument",
    "OutgoingMessage",
    "PermanentDeliveryError",
    "RetryableDeliveryError",
    "safe_file_stem",
]

_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")


class DeliveryError(CaseWorkflowError):
    """A channel failed to deliver a message."""


class RetryableDeliveryError(DeliveryError):
    """The delivery failed for a reason that may pass (server down, timeout, 4xx SMTP reply).

    The relay tries again later, with exponential backoff, until the message runs out of
    attempts.
    """


class PermanentDeliveryError(DeliveryError):
    """The message can never be delivered as it is (invalid address, 5xx SMTP reply, HTTP 4xx).

    The relay moves the message to the dead-letter state at once.
    """


@dataclass(frozen=True)
class LetterDocument:
    """A letter version as it leaves the system: its HTML, its PDF and their SHA-256 hashes."""

    letter: str
    language: str
    registry_number: str
    subject: str
    sender: str
    recipient_code: str
    issued_at: datetime
    html: str = field(repr=False)
    html_sha256: str
    pdf: bytes = field(repr=False)
    pdf_sha256: str

    @property
    def filename(self) -> str:
        """Return the PDF's file name: ``IMR-2024-00042-reminder.fr.pdf``."""
        number = _UNSAFE_FILE_CHARACTERS.sub("-", self.registry_number)
        return f"{number}-{self.letter}.{self.language}.pdf"


@dataclass(frozen=True)
class OutgoingMessage:
    """One outbox message handed to a channel.

    ``recipient`` is the stored address (an e-mail address, or an institution code for the
    registry channel). ``letter`` is absent for messages that carry only ``payload``.
    ``attempted_at`` is the relay's clock reading for this attempt.
    """

    outbox_id: int
    idempotency_key: str
    channel: str
    recipient: str
    dossier_reference: str
    attempt: int
    attempted_at: datetime
    payload: Mapping[str, Any]
    letter: LetterDocument | None = None

    def describe(self) -> dict[str, Any]:
        """Return the JSON-safe metadata of the message, without the PDF or HTML."""
        data: dict[str, Any] = {
            "idempotency_key": self.idempotency_key,
            "channel": self.channel,
            "recipient": self.recipient,
            "dossier": self.dossier_reference,
            "payload": dict(self.payload),
        }
        if self.letter is not None:
            letter = self.letter
            data["letter"] = {
                "name": letter.letter,
                "language": letter.language,
                "registry_number": letter.registry_number,
                "subject": letter.subject,
                "sender": letter.sender,
                "recipient": letter.recipient_code,
                "issued_at": letter.issued_at.isoformat(),
                "html_sha256": letter.html_sha256,
                "pdf_sha256": letter.pdf_sha256,
                "filename": letter.filename,
            }
        return data


class Channel(Protocol):
    """A way to reach recipients: e-mail, a drop folder, an HTTP webhook.

    Contract of :meth:`deliver`:

    - It delivers ``message`` once from the receiver's point of view: the message carries its
      idempotency key (``OutgoingMessage.idempotency_key``) to the receiver (a header, a file
      name, a body field), and delivering the same key again either overwrites the same
      object or reaches the receiver as a duplicate that it can recognise by that key. The
      relay may call ``deliver`` again for a message that was delivered, when it stopped
      between the delivery and recording it.
    - It returns only when the receiver has accepted the message (SMTP server accepted the
      DATA, file renamed into place, HTTP 2xx).
    - It raises :class:`RetryableDeliveryError` when a later attempt may succeed and
      :class:`PermanentDeliveryError` when none can; any other exception is treated as
      retryable.
    - It keeps no state between calls that the relay relies on, and it never logs the
      recipient's address or the letter's content (personal data).
    """

    def deliver(self, message: OutgoingMessage) -> None: ...


def safe_file_stem(text: str) -> str:
    """Return ``text`` usable as a file name, made unique by a hash when characters changed.

    Characters other than ASCII letters, digits, ``.``, ``_`` and ``-`` become ``_``; if any
    did, the first 10 hex digits of the text's SHA-256 are appended so that two different
    texts never share a file name.
    """
    cleaned = _UNSAFE_FILE_CHARACTERS.sub("_", text).lstrip(".") or "_"
    if cleaned == text:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"{cleaned}.{digest}"
