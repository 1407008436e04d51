"""SMTP delivery to a real SMTP server (aiosmtpd) on 127.0.0.1, with the PDF read back."""

# ruff: noqa: RUF001 - Arabic letters beside Latin ones are intended in the expected texts.

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from case_workflow import Complainant, Engine, InvalidInput, SimulatedClock
from case_workflow.delivery import (
    OutboxStatus,
    PermanentDeliveryError,
    SmtpChannel,
    deliver,
    list_outbox,
)
from case_workflow.delivery.smtp import message_id_for
from tests.conftest import MEDIATOR_AGENT

pytest.importorskip("weasyprint")
pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) is not installed"
)

RESPONDENT = "al-omrane-rabat-sale-kenitra"
SENDER = "Bureau d'ordre <bureau-ordre@mediateur.example>"
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ARABIC_INDIC_DIGITS = re.compile("[\u0660-\u0669\u06f0-\u06f9]")
HOSTILE_SUBJECT = "<b>gras</b> {{ 7 * 7 }} {% if true %}oui{% endif %}"


class Mailbox:
    """aiosmtpd handler: keeps each accepted message; refuses addresses listed in ``refuse``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted for delivery"


class LoopbackController(Controller):
    """An aiosmtpd controller on 127.0.0.1 and a port the system picks."""

    def _trigger_server(self) -> None:
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    controller = LoopbackController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def smtp(port: int) -> SmtpChannel:
    return SmtpChannel("127.0.0.1", port, sender=SENDER, timeout=30.0)


def file_dossier(
    engine: Engine, name: str, language: str, subject: str = "Lot non attribué"
) -> str:
    return engine.file(
        "mediator-alomrane",
        actor=MEDIATOR_AGENT,
        complainant=Complainant(name, email="plaignant@example.org", language=language),
        subject=subject,
        respondent=RESPONDENT,
    ).reference


def pdf_attachment(mail: EmailMessage) -> tuple[str, bytes]:
    (part,) = [part for part in mail.iter_attachments()]
    assert part.get_content_type() == "application/pdf"
    payload = part.get_content()
    assert isinstance(payload, bytes)
    return part.get_filename() or "", payload


def pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "attachment.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    )
    return BIDI_CONTROLS.sub("", result.stdout)


def compact(text: str) -> str:
    """Remove all white space: pdftotext spaces Arabic words and digits unevenly."""
    return re.sub(r"\s+", "", text)


def test_french_letter_by_email(
    engine: Engine, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    handler, port = mailbox
    reference = file_dossier(engine, "Fatima Zahra El Amrani", "fr")

    result = deliver(engine, {"email": smtp(port)})

    assert result.sent == 1
    (mail,) = handler.messages
    key = f"{reference}:1:acknowledgement"
    assert mail["X-Idempotency-Key"] == key
    # A long Message-ID is folded onto a second line; unfolding leaves the leading space.
    assert mail["Message-ID"].strip() == message_id_for(key, "mediateur.example")
    assert mail["To"] == "plaignant@example.org"
    assert mail["Subject"] == "Accusé de réception de votre plainte (IMR/2024/00001)"
    assert mail["X-Case-Workflow-Registry-Number"] == "IMR/2024/00001"
    body = mail.get_body(("plain",))
    assert body is not None
    assert "IMR/2024/00001" in body.get_content()
    filename, pdf = pdf_attachment(mail)
    assert filename == "IMR-2024-00001-acknowledgement.fr.pdf"
    text = pdf_text(pdf, tmp_path)
    assert "IMR/2024/00001" in text
    assert "Rabat, le 15 janvier 2024" in text
    assert "Nous accusons réception de votre plainte" in text
    assert reference in text


def test_arabic_letter_by_email(
    engine: Engine, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    handler, port = mailbox
    reference = file_dossier(engine, "عائشة بنعلي", "ar", subject="تأخر تسليم البقعة")

    deliver(engine, {"email": smtp(port)})

    (mail,) = handler.messages
    filename, pdf = pdf_attachment(mail)
    assert filename == "IMR-2024-00001-acknowledgement.ar.pdf"
    assert mail["X-Case-Workflow-PDF-SHA256"] is not None
    text = pdf_text(pdf, tmp_path)
    assert "IMR/2024/00001" in text
    # Logical order: pdftotext returns the words in reading order (right to left), so they
    # match the source text. It splits some words at ligatures, so those go through compact().
    assert "الرقم الترتيبي" in text
    assert "عائشة بنعلي" in text
    assert "يشرفناأننخبركمبأنهقدتمتسجيلشكايتكم" in compact(text)
    assert "تأخرتسليمالبقعة" in compact(text)
    # Gregorian date with the Moroccan month name, then the Hijri date.
    assert "الرباطفي15يناير2024" in compact(text)
    assert "الموافق3رجب1445هـ" in compact(text)
    assert reference in text
    assert not ARABIC_INDIC_DIGITS.search(text)


def test_hostile_input_printed_as_text(
    engine: Engine, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    handler, port = mailbox
    file_dossier(engine, "Ali \u202eevil", "fr", subject=HOSTILE_SUBJECT)

    deliver(engine, {"email": smtp(port)})

    (mail,) = handler.messages
    text = pdf_text(pdf_attachment(mail)[1], tmp_path)
    assert "<b>gras</b>" in text
    assert "{{ 7 * 7 }}" in text
    assert "{% if true %}oui{% endif %}" in text
    assert "49" not in text
    # The override reverses the name itself and nothing printed after it.
    assert "Ali live" in text
    assert "Nous accusons réception de votre plainte" in text
    assert "IMR/2024/00001" in text


def test_refused_recipient_is_dead(engine: Engine, mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    handler.refuse["plaignant@example.org"] = "550 5.1.1 mailbox unavailable"
    file_dossier(engine, "Citoyen", "fr")

    result = deliver(engine, {"email": smtp(port)})

    assert result.dead == 1
    (entry,) = list_outbox(engine)
    assert entry.status is OutboxStatus.DEAD
    assert entry.last_error is not None
    assert "550" in entry.last_error
    assert "plaignant@example.org" not in entry.last_error


def test_greylisted_recipient_retries(
    engine: Engine, mailbox: tuple[Mailbox, int], clock: SimulatedClock
) -> None:
    handler, port = mailbox
    handler.refuse["plaignant@example.org"] = "451 4.7.1 greylisted, try again later"
    file_dossier(engine, "Citoyen", "fr")

    assert deliver(engine, {"email": smtp(port)}).retried == 1
    del handler.refuse["plaignant@example.org"]
    (entry,) = list_outbox(engine)
    clock.set(entry.next_attempt_at)

    assert deliver(engine, {"email": smtp(port)}).sent == 1
    assert len(handler.messages) == 1


def test_server_down_retries(engine: Engine) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    file_dossier(engine, "Citoyen", "fr")

    result = deliver(engine, {"email": smtp(closed_port)})

    assert result.retried == 1
    (entry,) = list_outbox(engine)
    assert entry.status is OutboxStatus.PENDING
    assert entry.last_error is not None
    assert "unreachable" in entry.last_error


def test_duplicate_carries_same_ids(engine: Engine, mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    file_dossier(engine, "Citoyen", "fr")
    channel = smtp(port)
    captured: list[Any] = []

    class Capture:
        def deliver(self, message: Any) -> None:
            captured.append(message)

    deliver(engine, {"email": Capture()})
    channel.deliver(captured[0])
    channel.deliver(captured[0])

    first, second = handler.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first["X-Idempotency-Key"] == second["X-Idempotency-Key"]
    assert pdf_attachment(first)[1] == pdf_attachment(second)[1]


def test_non_address_recipient_rejected(engine: Engine, mailbox: tuple[Mailbox, int]) -> None:
    _handler, port = mailbox
    file_dossier(engine, "Citoyen", "fr")
    captured: list[Any] = []

    class Capture:
        def deliver(self, message: Any) -> None:
            captured.append(message)

    deliver(engine, {"email": Capture()})

    with pytest.raises(PermanentDeliveryError, match="not an e-mail address"):
        smtp(port).deliver(replace(captured[0], recipient="al-omrane"))


def test_message_id_stable_and_distinct() -> None:
    first = message_id_for("MA-2024-000001:1:acknowledgement", "example.org")

    assert first == message_id_for("MA-2024-000001:1:acknowledgement", "example.org")
    assert first != message_id_for("MA-2024-000001:2:acknowledgement", "example.org")
    assert first.startswith("<MA-2024-000001-1-acknowledgement.")
    assert first.endswith("@example.org>")


def test_invalid_security_rejected() -> None:
    with pytest.raises(InvalidInput, match="invalid SMTP security 'tls'"):
        SmtpChannel("127.0.0.1", 25, security="tls")  # type: ignore[arg-type]
