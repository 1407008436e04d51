"""Signed, idempotent exchange of dossiers between two institutions' engines.

Each institution attaches an :class:`Exchange` to its :class:`~case_workflow.Engine`, with an
:class:`ExchangeMapping` (which steps travel and what they do on the other side) and a
:class:`KeyRing` (its Ed25519 private key and its peers' public keys). Steps write signed
messages into an outbox in their own transaction; a relay delivers them after commit through a
:class:`Transport`; the receiving side checks, records and applies each message once, in
per-dossier order.

The HTTP transport lives in :mod:`case_workflow.exchange.http` so that importing this package
does not import Starlette or httpx.
"""

from case_workflow.exchange.envelope import (
    ENVELOPE_VERSION,
    Attachment,
    DossierReferences,
    Envelope,
    EnvelopeError,
    RemoteActor,
    canonical_bytes,
    envelope_json_schema,
    parse_envelope,
)
from case_workflow.exchange.faults import Fault, FaultyTransport
from case_workflow.exchange.folder import FolderReceiver, FolderTransport
from case_workflow.exchange.keys import (
    KeyRing,
    generate_key_pair,
    load_private_key,
    load_public_key,
    sign_envelope,
    verify_envelope,
)
from case_workflow.exchange.mapping import ExchangeMapping, MessageRule, load_mapping
from case_workflow.exchange.outbox import OutgoingMessage
from case_workflow.exchange.relay import RelayResult, RelayWorker, RetryPolicy
from case_workflow.exchange.service import (
    Exchange,
    IncomingMessage,
    LinkedDossier,
    RejectedMessage,
)
from case_workflow.exchange.transport import (
    MessageRejected,
    OutboundMessage,
    Receipt,
    ReceiptStatus,
    RejectionReason,
    Transport,
    TransportError,
)

__all__ = [
    "ENVELOPE_VERSION",
    "Attachment",
    "DossierReferences",
    "Envelope",
    "EnvelopeError",
    "Exchange",
    "ExchangeMapping",
    "Fault",
    "FaultyTransport",
    "FolderReceiver",
    "FolderTransport",
    "IncomingMessage",
    "KeyRing",
    "LinkedDossier",
    "MessageRejected",
    "MessageRule",
    "OutboundMessage",
    "OutgoingMessage",
    "Receipt",
    "ReceiptStatus",
    "RejectedMessage",
    "RejectionReason",
    "RelayResult",
    "RelayWorker",
    "RemoteActor",
    "RetryPolicy",
    "Transport",
    "TransportError",
    "canonical_bytes",
    "envelope_json_schema",
    "generate_key_pair",
    "load_mapping",
    "load_private_key",
    "load_public_key",
    "parse_envelope",
    "sign_envelope",
    "verify_envelope",
]
