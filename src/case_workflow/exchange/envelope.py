"""The envelope: one signed message between two institutions' engines, and its wire format.

An envelope names its sender and recipient institutions and the dossier's reference on both
sides. It carries its sequence number within that dossier's conversation, the event it reports,
the event's payload and the SHA-256 of its attachments, because letters and documents travel by
hash, not by content. The signature is Ed25519 over :func:`canonical_bytes`: the UTF-8 JSON of every field
but ``signature``, with sorted keys and no spaces, so both sides compute the same bytes from
the same values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
)

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_BODY_BYTES",
    "Attachment",
    "DossierReferences",
    "Envelope",
    "EnvelopeError",
    "RemoteActor",
    "canonical_bytes",
    "envelope_json_schema",
    "parse_envelope",
]

ENVELOPE_VERSION: Literal[1] = 1
"""The envelope format version this module writes and reads."""

MAX_BODY_BYTES = 1_000_000
"""Largest serialized envelope accepted; documents travel by hash, so bodies stay small."""

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DossierReferences(_Frozen):
    """The dossier's reference at the sender, and at the recipient once the sender has learnt it."""

    sender: Name
    recipient: Name | None = None


class RemoteActor(_Frozen):
    """The person or process at the sender who caused the message, and their role there."""

    name: Annotated[str, Field(max_length=200)]
    role: Name


class Attachment(_Frozen):
    """A letter or document that goes with the message, identified by its SHA-256."""

    name: Name
    sha256: Sha256Hex
    media_type: Name = "text/html"
    registry_number: str | None = None


class Envelope(_Frozen):
    """A message between two institutions' engines about one dossier."""

    version: Literal[1] = ENVELOPE_VERSION
    message_id: UUID
    sender: Name
    recipient: Name
    dossier: DossierReferences
    seq: int = Field(ge=1, description="sequence number within the dossier's conversation")
    created_at: AwareDatetime
    event: Name
    actor: RemoteActor
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    signature: str | None = Field(
        default=None, description="base64 Ed25519 signature of the canonical bytes"
    )

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        if value.utcoffset() != UTC.utcoffset(None):
            raise ValueError(f"created_at {value.isoformat()} must be in UTC (offset +00:00)")
        return value.astimezone(UTC)

    def to_json(self) -> bytes:
        """Serialize the whole envelope, signature included, as canonical JSON."""
        return _dump(self.model_dump(mode="json"))


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_bytes(envelope: Envelope) -> bytes:
    """Return the bytes that the signature covers: every field but ``signature``."""
    return _dump(envelope.model_dump(mode="json", exclude={"signature"}))


class EnvelopeError(ValueError):
    """A received body is not a valid envelope; ``str()`` names the invalid field."""


def parse_envelope(body: bytes) -> Envelope:
    """Parse a received body; raise EnvelopeError naming the first invalid field."""
    if len(body) > MAX_BODY_BYTES:
        raise EnvelopeError(f"body of {len(body)} bytes exceeds the limit of {MAX_BODY_BYTES}")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EnvelopeError(f"body is not JSON: {error}") from None
    if isinstance(data, dict) and data.get("version") != ENVELOPE_VERSION:
        raise EnvelopeError(
            f"unsupported envelope version {data.get('version')!r}; this engine reads "
            f"version {ENVELOPE_VERSION}"
        )
    try:
        return Envelope.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(step) for step in first["loc"]) or "the envelope"
        raise EnvelopeError(f"invalid {where}: {first['msg']}") from None


def envelope_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of the envelope, for the peer institution's developers."""
    schema: dict[str, Any] = Envelope.model_json_schema()
    schema["$id"] = f"urn:case-workflow:exchange:envelope:{ENVELOPE_VERSION}"
    return schema
