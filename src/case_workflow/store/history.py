"""Dossier rows and their hash-chained, append-only event history.

Each event's hash is the SHA-256 of the previous hash and a canonical JSON form of the event,
so changing, removing or reordering a stored event breaks every later hash of the dossier.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Update, bindparam, insert, select, update

from case_workflow.errors import ConcurrencyError, DossierNotFound
from case_workflow.records import Complainant, Dossier, Event
from case_workflow.store.tables import dossiers, events

__all__ = [
    "GENESIS_HASH",
    "AppendedEvent",
    "DossierRow",
    "event_hash",
    "iter_chain_breaks",
    "load_dossier",
    "load_history",
    "load_snapshot",
    "to_dossier",
    "write_step",
]

GENESIS_HASH = "0" * 64


def _canonical(value: Mapping[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def event_hash(
    prev_hash: str,
    *,
    reference: str,
    seq: int,
    trigger: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    role: str,
    institution: str,
    occurred_at: datetime,
    payload: Mapping[str, Any],
) -> str:
    """Return the chained SHA-256 of one event (hex)."""
    body = {
        "reference": reference,
        "seq": seq,
        "trigger": trigger,
        "from": from_state,
        "to": to_state,
        "actor": actor,
        "role": role,
        "institution": institution,
        "at": occurred_at.isoformat(),
        "payload": payload,
    }
    return hashlib.sha256(prev_hash.encode() + _canonical(body)).hexdigest()


@dataclass(frozen=True, slots=True)
class DossierRow:
    """The columns of a dossier that a step needs."""

    id: int
    reference: str
    workflow: str
    workflow_version: int
    state: str
    version: int
    event_count: int
    last_hash: str
    escalation_level: int
    urgent: bool
    respondent: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppendedEvent:
    id: int
    seq: int
    hash: str
    occurred_at: datetime


_BY_REFERENCE = select(dossiers).where(dossiers.c.reference == bindparam("reference"))
_BY_ID = select(dossiers).where(dossiers.c.id == bindparam("dossier_id"))

_UPDATE_WITH_VERSION = (
    update(dossiers)
    .where(dossiers.c.id == bindparam("b_id"))
    .where(dossiers.c.version == bindparam("b_version"))
    .values(
        state=bindparam("b_state"),
        version=bindparam("b_new_version"),
        event_count=bindparam("b_seq"),
        last_hash=bindparam("b_hash"),
        updated_at=bindparam("b_at"),
    )
)
_INSERT_EVENT = insert(events)


@functools.cache
def _update_setting(columns: frozenset[str]) -> Update:
    """Return the versioned UPDATE that also sets ``columns``, built once per set of columns."""
    if not columns:
        return _UPDATE_WITH_VERSION
    return _UPDATE_WITH_VERSION.values(
        **{name: bindparam(f"b_extra_{name}") for name in sorted(columns)}
    )


def _step_row(row: Row[Any]) -> DossierRow:
    return DossierRow(
        id=row.id,
        reference=row.reference,
        workflow=row.workflow,
        workflow_version=row.workflow_version,
        state=row.state,
        version=row.version,
        event_count=row.event_count,
        last_hash=row.last_hash,
        escalation_level=row.escalation_level,
        urgent=bool(row.urgent),
        respondent=row.respondent,
        data=dict(row.data),
    )


def _load_row(connection: Connection, reference: str | None, dossier_id: int | None) -> Row[Any]:
    if reference is not None:
        row = connection.execute(_BY_REFERENCE, {"reference": reference}).first()
    else:
        row = connection.execute(_BY_ID, {"dossier_id": dossier_id}).first()
    if row is None:
        raise DossierNotFound(reference if reference is not None else f"#{dossier_id}")
    return row


def load_dossier(
    connection: Connection, reference: str | None = None, *, dossier_id: int | None = None
) -> DossierRow:
    """Read the step columns of a dossier by reference or id; raise DossierNotFound."""
    return _step_row(_load_row(connection, reference, dossier_id))


def load_snapshot(connection: Connection, reference: str) -> tuple[DossierRow, Dossier]:
    """Read a dossier once as step columns and as a snapshot; raise DossierNotFound."""
    row = _load_row(connection, reference, None)
    return _step_row(row), to_dossier(row)


def write_step(
    connection: Connection,
    dossier: DossierRow,
    *,
    trigger: str,
    to_state: str,
    actor: str,
    role: str,
    institution: str,
    occurred_at: datetime,
    payload: Mapping[str, Any],
    extra_values: Mapping[str, Any] | None = None,
    creation: bool = False,
) -> AppendedEvent:
    """Move the dossier to ``to_state`` with a version check and append the event.

    Raise ConcurrencyError, having written nothing, when another writer changed the dossier
    since ``dossier`` was read. ``creation`` records the dossier's first event, which comes
    from no state. The caller's transaction must be rolled back on any error.
    """
    seq = dossier.event_count + 1
    from_state = None if creation else dossier.state
    digest = event_hash(
        dossier.last_hash,
        reference=dossier.reference,
        seq=seq,
        trigger=trigger,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        role=role,
        institution=institution,
        occurred_at=occurred_at,
        payload=payload,
    )
    extra = dict(extra_values or {})
    result = connection.execute(
        _update_setting(frozenset(extra)),
        {
            "b_id": dossier.id,
            "b_version": dossier.version,
            "b_state": to_state,
            "b_new_version": dossier.version + 1,
            "b_seq": seq,
            "b_hash": digest,
            "b_at": occurred_at,
            **{f"b_extra_{name}": value for name, value in extra.items()},
        },
    )
    if result.rowcount != 1:
        found = connection.execute(
            select(dossiers.c.version).where(dossiers.c.id == dossier.id)
        ).scalar_one_or_none()
        raise ConcurrencyError(dossier.reference, dossier.version, found)
    inserted = connection.execute(
        _INSERT_EVENT,
        {
            "dossier_id": dossier.id,
            "seq": seq,
            "trigger": trigger,
            "from_state": from_state,
            "to_state": to_state,
            "actor": actor,
            "role": role,
            "institution": institution,
            "occurred_at": occurred_at,
            "payload": dict(payload),
            "prev_hash": dossier.last_hash,
            "hash": digest,
        },
    )
    # SQLite reports the key through lastrowid and PostgreSQL through implicit RETURNING.
    key = inserted.inserted_primary_key
    assert key is not None
    return AppendedEvent(int(key[0]), seq, digest, occurred_at)


def to_dossier(row: Row[Any]) -> Dossier:
    """Turn a full ``cw_dossiers`` row into a Dossier snapshot."""
    return Dossier(
        reference=row.reference,
        workflow=row.workflow,
        workflow_version=row.workflow_version,
        state=row.state,
        version=row.version,
        respondent=row.respondent,
        region=row.region,
        urgent=bool(row.urgent),
        escalation_level=row.escalation_level,
        outcome=row.outcome,
        subject=row.subject,
        external_reference=row.external_reference,
        complainant=Complainant.from_dict(row.complainant),
        data=dict(row.data),
        filed_at=row.filed_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
    )


def load_history(connection: Connection, dossier_id: int) -> list[Event]:
    rows = connection.execute(
        select(events).where(events.c.dossier_id == dossier_id).order_by(events.c.seq)
    )
    return [
        Event(
            seq=row.seq,
            trigger=row.trigger,
            from_state=row.from_state,
            to_state=row.to_state,
            actor=row.actor,
            role=row.role,
            institution=row.institution,
            occurred_at=row.occurred_at,
            payload=dict(row.payload),
            prev_hash=row.prev_hash,
            hash=row.hash,
        )
        for row in rows
    ]


def iter_chain_breaks(
    connection: Connection, reference: str | None = None
) -> Iterator[tuple[str, int, str] | int]:
    """Recompute hash chains, streaming events in dossier order.

    Yields ``(reference, seq, reason)`` for each break, and the number of events checked per
    dossier as a plain int once the dossier is done (so callers can count without storing).
    """
    query = (
        select(
            dossiers.c.reference,
            dossiers.c.last_hash,
            dossiers.c.event_count,
            dossiers.c.state.label("dossier_state"),
            events.c.seq,
            events.c.trigger,
            events.c.from_state,
            events.c.to_state,
            events.c.actor,
            events.c.role,
            events.c.institution,
            events.c.occurred_at,
            events.c.payload,
            events.c.prev_hash,
            events.c.hash,
        )
        .join(events, events.c.dossier_id == dossiers.c.id)
        .order_by(dossiers.c.id, events.c.seq)
    )
    if reference is not None:
        query = query.where(dossiers.c.reference == reference)
    current: str | None = None
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    last_state: str | None = None
    tail: tuple[str, str, int, str] | None = None

    def finish() -> Iterator[tuple[str, int, str] | int]:
        if tail is not None:
            ref, last_hash, event_count, state = tail
            if state != last_state:
                yield (
                    ref,
                    expected_seq - 1,
                    f"dossier's state {state!r} differs from its last event's {last_state!r}",
                )
            if event_count != expected_seq - 1:
                yield (
                    ref,
                    expected_seq,
                    f"dossier records {event_count} events, found {expected_seq - 1}",
                )
            elif last_hash != expected_prev:
                yield (ref, expected_seq - 1, "dossier's last hash differs from its last event")
            yield count

    for row in connection.execution_options(stream_results=True, yield_per=2000).execute(query):
        if row.reference != current:
            yield from finish()
            current = row.reference
            expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
            tail = (row.reference, row.last_hash, row.event_count, row.dossier_state)
        count += 1
        if row.seq != expected_seq:
            yield (row.reference, row.seq, f"expected event {expected_seq}, found {row.seq}")
            expected_seq = row.seq
        if row.prev_hash != expected_prev:
            yield (row.reference, row.seq, "previous hash does not match the chain")
        digest = event_hash(
            expected_prev,
            reference=row.reference,
            seq=row.seq,
            trigger=row.trigger,
            from_state=row.from_state,
            to_state=row.to_state,
            actor=row.actor,
            role=row.role,
            institution=row.institution,
            occurred_at=row.occurred_at,
            payload=row.payload,
        )
        if digest != row.hash:
            yield (row.reference, row.seq, "hash does not match the event's content")
        expected_prev = row.hash
        expected_seq += 1
        last_state = row.to_state
    yield from finish()
