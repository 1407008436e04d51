"""The envelope: canonical bytes, parsing with clear errors, JSON Schema export."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from case_workflow.exchange import (
    Attachment,
    DossierReferences,
    Envelope,
    EnvelopeError,
    RemoteActor,
    canonical_bytes,
    envelope_json_schema,
    parse_envelope,
)
from case_workflow.exchange.envelope import MAX_BODY_BYTES


def make_envelope(**changes: object) -> Envelope:
    values: dict[str, object] = {
        "message_id": uuid.UUID("12345678-1234-4234-8234-123456789abc"),
        "sender": "mediator",
        "recipient": "al-omrane",
        "dossier": DossierReferences(sender="MA-2024-000001"),
        "seq": 1,
        "created_at": datetime(2024, 1, 15, 8, 0, tzinfo=UTC),
        "event": "transmit",
        "actor": RemoteActor(name="Agent Alaoui", role="mediator_agent"),
        "payload": {"respondent": "al-omrane-rabat-sale-kenitra", "note": "ملف"},
        "attachments": (Attachment(name="transmission.fr.html", sha256="a" * 64),),
    }
    values.update(changes)
    return Envelope.model_validate(values)


def test_round_trip_keeps_every_field() -> None:
    envelope = make_envelope(signature="c2lnbmF0dXJl")
    assert parse_envelope(envelope.to_json()) == envelope


def test_canonical_bytes_exclude_signature() -> None:
    unsigned = make_envelope()
    signed = make_envelope(signature="c2lnbmF0dXJl")
    assert canonical_bytes(unsigned) == canonical_bytes(signed)
    assert b"signature" not in canonical_bytes(signed)


def test_canonical_bytes_sort_keys_and_keep_unicode() -> None:
    data = canonical_bytes(make_envelope())
    keys = list(json.loads(data))
    assert keys == sorted(keys)
    assert "ملف".encode() in data
    assert b" " not in data.replace(b"Agent Alaoui", b"")


def test_created_at_converted_from_utc_only() -> None:
    with pytest.raises(ValueError, match="must be in UTC"):
        make_envelope(created_at=datetime(2024, 1, 15, 9, 0, tzinfo=timezone(timedelta(hours=1))))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"version": 2}', "unsupported envelope version 2"),
        (b"[]", "invalid"),
    ],
)
def test_parse_rejects_bad_bodies(body: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        parse_envelope(body)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("seq", 0, "seq"),
        ("created_at", "2024-01-15T08:00:00", "created_at"),
        ("extra", 1, "extra"),
        ("attachments", [{"name": "x", "sha256": "not-a-hash"}], "attachments.0.sha256"),
        ("message_id", "not-a-uuid", "message_id"),
    ],
)
def test_parse_names_invalid_field(field: str, value: object, where: str) -> None:
    data = json.loads(make_envelope().to_json())
    data[field] = value
    with pytest.raises(EnvelopeError, match=f"invalid {where}"):
        parse_envelope(json.dumps(data).encode())


def test_parse_rejects_oversized_body() -> None:
    with pytest.raises(EnvelopeError, match="exceeds the limit"):
        parse_envelope(b" " * (MAX_BODY_BYTES + 1))


def test_json_schema_lists_required_fields() -> None:
    schema = envelope_json_schema()
    assert schema["$id"].endswith(":1")
    for name in ("message_id", "sender", "recipient", "dossier", "seq", "created_at", "event"):
        assert name in schema["required"]
    assert "signature" in schema["properties"]
