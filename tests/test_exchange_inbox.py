"""Receiving: each message applied once and in per-dossier order; bad ones rejected, never applied.

The Mediator's side runs on each store of the ``database_url`` fixture (SQLite, PostgreSQL);
Al Omrane's side on a SQLite file.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from case_workflow.exchange import (
    Exchange,
    KeyRing,
    OutboundMessage,
    Receipt,
    ReceiptStatus,
    RejectionReason,
    parse_envelope,
    sign_envelope,
)
from tests.exchange_helpers import (
    ALOMRANE,
    MEDIATOR,
    MEDIATOR_AGENT,
    RESPONDENT_AGENT,
    DirectTransport,
    disagreements,
    file_and_transmit,
    make_keys,
    open_side,
)


class Recorder:
    """A transport that keeps each body for the test to deliver in any order."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def send(self, message: OutboundMessage) -> Receipt:
        self.bodies.append(message.body)
        return Receipt(message.message_id, ReceiptStatus.STORED)


@pytest.fixture
def sides(database_url: str, tmp_path: Path) -> Iterator[tuple[Exchange, Exchange]]:
    make_keys(tmp_path / "keys")
    mediator = open_side(database_url, MEDIATOR, tmp_path / "keys")
    respondent = open_side(f"sqlite:///{tmp_path}/al-omrane.db", ALOMRANE, tmp_path / "keys")
    yield mediator, respondent
    mediator.engine.close()
    respondent.engine.close()


def sent_bodies(side: Exchange) -> list[bytes]:
    recorder = Recorder()
    side.relay(recorder)
    return recorder.bodies


def test_transmit_creates_dossier_at_respondent(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    (reference,) = file_and_transmit(mediator, 1)
    (body,) = sent_bodies(mediator)
    receipt = respondent.receive(body)
    assert receipt.status is ReceiptStatus.APPLIED
    (linked,) = respondent.linked_dossiers()
    assert linked.peer_reference == reference
    assert linked.state == "received"
    dossier = respondent.engine.get(linked.reference or "")
    assert dossier.external_reference == reference
    assert dossier.subject == mediator.engine.get(reference).subject
    assert disagreements(mediator, respondent) == []


def test_attachments_carry_letter_hashes(sides: tuple[Exchange, Exchange]) -> None:
    mediator, _ = sides
    (reference,) = file_and_transmit(mediator, 1)
    envelope = parse_envelope(sent_bodies(mediator)[0])
    letters = {letter.sha256 for letter in mediator.engine.letters(reference)}
    assert envelope.attachments
    assert {attachment.sha256 for attachment in envelope.attachments} <= letters


def test_duplicate_acknowledged_and_applied_once(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 1)
    (body,) = sent_bodies(mediator)
    assert respondent.receive(body).status is ReceiptStatus.APPLIED
    assert respondent.receive(body).status is ReceiptStatus.DUPLICATE
    assert len(respondent.linked_dossiers()) == 1
    assert len(respondent.received()) == 1


def test_early_message_waits_for_predecessor(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    (reference,) = file_and_transmit(mediator, 1)
    mediator.engine.fire(reference, "request_information", actor=MEDIATOR_AGENT)
    mediator.engine.fire(reference, "resume", actor=MEDIATOR_AGENT)
    create, request, resume = sent_bodies(mediator)
    assert respondent.receive(resume).status is ReceiptStatus.WAITING
    assert respondent.receive(request).status is ReceiptStatus.WAITING
    assert len(respondent.waiting()) == 2
    assert respondent.receive(create).status is ReceiptStatus.APPLIED
    assert respondent.waiting() == []
    (linked,) = respondent.linked_dossiers()
    assert linked.state == "acknowledged"
    triggers = [event.trigger for event in respondent.engine.history(linked.reference or "")]
    assert triggers == ["file", "request_information", "provide_information"]


def test_applied_message_is_not_sent_back(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 1)
    (body,) = sent_bodies(mediator)
    respondent.receive(body)
    assert respondent.pending() == []


def test_answer_travels_back(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    (reference,) = file_and_transmit(mediator, 1)
    network = DirectTransport({MEDIATOR: mediator, ALOMRANE: respondent})
    mediator.relay(network)
    (linked,) = respondent.linked_dossiers()
    respondent.engine.fire(
        linked.reference or "", "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"}
    )
    assert respondent.relay(network).sent == 1
    assert mediator.engine.get(reference).state == "answered"
    (event,) = [e for e in mediator.engine.history(reference) if e.trigger == "answer"]
    assert event.institution == ALOMRANE
    assert event.payload["answer_summary"] == "ok"
    assert mediator.linked_dossiers()[0].peer_reference == linked.reference


def test_message_for_moved_dossier_not_applicable(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    (reference,) = file_and_transmit(mediator, 1)
    network = DirectTransport({MEDIATOR: mediator, ALOMRANE: respondent})
    mediator.relay(network)
    (linked,) = respondent.linked_dossiers()
    respondent.engine.fire(
        linked.reference or "", "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"}
    )
    mediator.engine.fire(
        reference, "withdraw", actor=MEDIATOR_AGENT, payload={"outcome": "withdrawn"}
    )
    respondent.relay(network)
    mediator.relay(network)
    (answer,) = mediator.received()
    assert answer.status == "not_applicable"
    assert "not allowed" in (answer.note or "")
    assert respondent.linked_dossiers()[0].state == "closed"
    assert disagreements(mediator, respondent) == []


def tampered(body: bytes, **changes: object) -> bytes:
    data = json.loads(body)
    data.update(changes)
    return json.dumps(data).encode()


def test_tampered_payload_rejected(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 1)
    (body,) = sent_bodies(mediator)
    data = json.loads(body)
    data["payload"]["respondent"] = "someone-else"
    receipt = respondent.receive(json.dumps(data).encode())
    assert receipt.status is ReceiptStatus.REJECTED
    assert receipt.reason is RejectionReason.BAD_SIGNATURE
    (rejected,) = respondent.rejected()
    assert rejected.reason == "bad_signature"
    assert rejected.sender == MEDIATOR
    assert rejected.message_id == data["message_id"]
    assert respondent.linked_dossiers() == []


def test_wrong_key_rejected(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 1)
    envelope = parse_envelope(sent_bodies(mediator)[0])
    forged = sign_envelope(envelope, Ed25519PrivateKey.generate())
    receipt = respondent.receive(forged.to_json())
    assert receipt.reason is RejectionReason.BAD_SIGNATURE
    assert [item.reason for item in respondent.rejected()] == ["bad_signature"]
    assert respondent.linked_dossiers() == []


def test_replayed_seq_rejected(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 1)
    (body,) = sent_bodies(mediator)
    respondent.receive(body)
    envelope = parse_envelope(body).model_copy(update={"message_id": uuid.uuid4()})
    key = mediator.keys.private_key
    receipt = respondent.receive(sign_envelope(envelope, key).to_json())
    assert receipt.reason is RejectionReason.REPLAYED
    assert len(respondent.linked_dossiers()) == 1


def test_unknown_sender_rejected(sides: tuple[Exchange, Exchange], tmp_path: Path) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 1)
    envelope = parse_envelope(sent_bodies(mediator)[0]).model_copy(update={"sender": "stranger"})
    stranger = KeyRing("stranger", Ed25519PrivateKey.generate())
    receipt = respondent.receive(stranger.sign(envelope).to_json())
    assert receipt.reason is RejectionReason.UNKNOWN_SENDER


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", RejectionReason.MALFORMED),
        (b'{"version": 1, "sender": "mediator"}', RejectionReason.MALFORMED),
    ],
)
def test_malformed_rejected(
    sides: tuple[Exchange, Exchange], body: bytes, reason: RejectionReason
) -> None:
    _, respondent = sides
    assert respondent.receive(body).reason is reason
    (rejected,) = respondent.rejected()
    assert rejected.sender is None
    assert rejected.reason == reason.value


def test_wrong_recipient_and_unknown_event_rejected(sides: tuple[Exchange, Exchange]) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 1)
    envelope = parse_envelope(sent_bodies(mediator)[0])
    key = mediator.keys.private_key
    elsewhere = sign_envelope(envelope.model_copy(update={"recipient": "other"}), key)
    unknown = sign_envelope(envelope.model_copy(update={"event": "start_review"}), key)
    assert respondent.receive(elsewhere.to_json()).reason is RejectionReason.WRONG_RECIPIENT
    assert respondent.receive(unknown.to_json()).reason is RejectionReason.UNKNOWN_EVENT
    assert len(respondent.rejected()) == 2
