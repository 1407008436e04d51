"""E-mail delivery over SMTP: a short cover note with the letter's PDF attached.

Duplicates are recognisable: the ``Message-ID`` is derived from the idempotency key, so a
message sent twice carries the same ``Message-ID`` and the same ``X-Idempotency-Key`` header,
and mail clients and archives show it once.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Literal

from case_workflow.delivery.channel import (
    OutgoingMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from case_workflow.errors import InvalidInput

__all__ = ["SmtpChannel", "message_id_for"]

Security = Literal["none", "starttls", "ssl"]

_ATOM_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")

# Cover notes: the letter itself is the attachment. ``{number}``, ``{reference}`` and
# ``{subject}`` are filled in; unknown languages get the English note.
COVER_NOTES: dict[str, str] = {
    "fr": (
        "Madame, Monsieur,\n\nVeuillez trouver ci-joint le courrier n° {number} relatif au "
        "dossier {reference} : {subject}.\n\nCe message est envoyé automatiquement ; merci de "
        "rappeler la référence {reference} dans toute réponse.\n"
    ),
    "ar": (
        "السلام عليكم،\n\nتجدون رفقته المراسلة رقم {number} المتعلقة بالملف {reference}: "
        "{subject}.\n\nهذه رسالة آلية، المرجو ذكر المرجع {reference} في كل جواب.\n"  # noqa: RUF001
    ),
    "en": (
        "Please find attached letter no. {number} about file {reference}: {subject}.\n\n"
        "This message was sent automatically; please quote reference {reference} in any "
        "reply.\n"
    ),
}


def message_id_for(idempotency_key: str, domain: str) -> str:
    """Return the ``Message-ID`` of the message with ``idempotency_key``: always the same one.

    The key's characters that a Message-ID may not contain become ``-``, and a hash of the
    exact key keeps two keys from sharing an ID.
    """
    readable = _ATOM_UNSAFE.sub("-", idempotency_key).strip(".-")[:64] or "letter"
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:16]
    return f"<{readable}.{digest}@{domain}>"


def _domain_of(address: str) -> str:
    _name, email = parseaddr(address)
    return email.rpartition("@")[2] or "localhost"


def _smtp_error(error: smtplib.SMTPResponseException, stage: str) -> Exception:
    detail = (
        error.smtp_error.decode("utf-8", "replace")
        if isinstance(error.smtp_error, bytes)
        else str(error.smtp_error)
    )
    text = f"SMTP server refused the {stage}: {error.smtp_code} {detail}"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        # A wrong password is a configuration problem, not a property of this message.
        return RetryableDeliveryError(text + "; check the SMTP user name and password")
    if 500 <= error.smtp_code < 600:
        return PermanentDeliveryError(text)
    return RetryableDeliveryError(text)


@dataclass
class SmtpChannel:
    """Sends messages through an SMTP server.

    ``sender`` is the default ``From`` address; ``senders`` maps a sending institution's code
    to its own address. ``security`` is ``"none"``, ``"starttls"`` or ``"ssl"`` (implicit
    TLS, usually port 465). ``timeout`` is in seconds.
    """

    host: str
    port: int = 25
    sender: str = "case-workflow@localhost"
    senders: Mapping[str, str] = field(default_factory=dict)
    security: Security = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    message_id_domain: str | None = None

    def __post_init__(self) -> None:
        if self.security not in ("none", "starttls", "ssl"):
            raise InvalidInput(
                f"invalid SMTP security {self.security!r}; use 'none', 'starttls' or 'ssl'"
            )
        if not 0 < self.port < 65536:
            raise InvalidInput(f"invalid SMTP port {self.port}; use 1 to 65535")

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """Build the e-mail for ``message``: cover note, PDF attachment, idempotency headers."""
        letter = message.letter
        sender = self.sender
        if letter is not None:
            sender = self.senders.get(letter.sender, self.sender)

        mail = EmailMessage()
        mail["From"] = sender
        mail["To"] = message.recipient
        mail["Date"] = format_datetime(message.attempted_at)
        mail["Message-ID"] = message_id_for(
            message.idempotency_key, self.message_id_domain or _domain_of(sender)
        )
        mail["X-Idempotency-Key"] = message.idempotency_key
        mail["X-Case-Workflow-Dossier"] = message.dossier_reference

        if letter is None:
            mail["Subject"] = message.dossier_reference
            mail.set_content(_payload_text(message))
            return mail

        mail["Subject"] = f"{letter.subject} ({letter.registry_number})"
        mail["X-Case-Workflow-Registry-Number"] = letter.registry_number
        mail["X-Case-Workflow-PDF-SHA256"] = letter.pdf_sha256
        note = COVER_NOTES.get(letter.language, COVER_NOTES["en"])
        mail.set_content(
            note.format(
                number=letter.registry_number,
                reference=message.dossier_reference,
                subject=letter.subject,
            )
        )

        mail.add_attachment(
            letter.pdf, maintype="application", subtype="pdf", filename=letter.filename
        )
        return mail

    def deliver(self, message: OutgoingMessage) -> None:
        """Send ``message``; see :class:`~case_workflow.delivery.channel.Channel`."""
        _name, address = parseaddr(message.recipient)
        if "@" not in address:
            raise PermanentDeliveryError(
                f"outbox message {message.outbox_id}: recipient is not an e-mail address; "
                "route it to another channel"
            )
        mail = self.build(message)
        try:
            with self._connect() as client:
                client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            codes = sorted({code for code, _reply in error.recipients.values()})
            # The server's reply text quotes the address, so only the codes are kept.
            text = f"SMTP server refused the recipient: {', '.join(map(str, codes))}"
            if codes and all(500 <= code < 600 for code in codes):
                raise PermanentDeliveryError(text) from None
            raise RetryableDeliveryError(text) from None
        except smtplib.SMTPSenderRefused as error:
            raise _smtp_error(error, "sender") from None
        except smtplib.SMTPDataError as error:
            raise _smtp_error(error, "message") from None
        except smtplib.SMTPResponseException as error:
            raise _smtp_error(error, "session") from None
        except (smtplib.SMTPException, OSError) as error:
            raise RetryableDeliveryError(
                f"SMTP server {self.host}:{self.port} unreachable or disconnected: {error}"
            ) from None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if self.security == "ssl":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.username is not None:
                client.login(self.username, self.password or "")
        except BaseException:
            client.close()
            raise
        return client


def _payload_text(message: OutgoingMessage) -> str:
    lines = [f"{key}: {value}" for key, value in sorted(message.payload.items())]
    return "\n".join(lines) + "\n"
