"""Links between a local dossier and the same dossier at the peer, with their sequence counters.

A link is one dossier's conversation with one peer: ``last_sent_seq`` counts the messages
written to the outbox, ``last_applied_seq`` the received messages taken in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from case_workflow.store.exchange_tables import exchange_links

__all__ = [
    "Link",
    "create_link",
    "link_by_dossier",
    "link_by_peer_reference",
    "set_link",
]


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    peer: str
    peer_reference: str | None
    dossier_id: int | None
    last_sent_seq: int
    last_applied_seq: int


def _link(row: Row[Any] | None) -> Link | None:
    if row is None:
        return None
    return Link(
        id=row.id,
        peer=row.peer,
        peer_reference=row.peer_reference,
        dossier_id=row.dossier_id,
        last_sent_seq=row.last_sent_seq,
        last_applied_seq=row.last_applied_seq,
    )


def _locked(connection: Connection, query: Any) -> Any:
    # PostgreSQL: hold the link row so one transaction at a time moves its counters.
    if connection.dialect.name == "postgresql":
        return query.with_for_update()
    return query


def link_by_dossier(connection: Connection, dossier_id: int, peer: str) -> Link | None:
    query = select(exchange_links).where(
        exchange_links.c.dossier_id == dossier_id, exchange_links.c.peer == peer
    )
    return _link(connection.execute(_locked(connection, query)).first())


def link_by_peer_reference(connection: Connection, peer: str, reference: str) -> Link | None:
    query = select(exchange_links).where(
        exchange_links.c.peer == peer, exchange_links.c.peer_reference == reference
    )
    return _link(connection.execute(_locked(connection, query)).first())


def create_link(
    connection: Connection, *, peer: str, peer_reference: str | None, dossier_id: int | None
) -> Link:
    new_id = connection.execute(
        insert(exchange_links).returning(exchange_links.c.id),
        {
            "peer": peer,
            "peer_reference": peer_reference,
            "dossier_id": dossier_id,
            "last_sent_seq": 0,
            "last_applied_seq": 0,
        },
    ).scalar_one()
    return Link(int(new_id), peer, peer_reference, dossier_id, 0, 0)


def set_link(connection: Connection, link_id: int, **values: object) -> None:
    connection.execute(
        update(exchange_links).where(exchange_links.c.id == link_id).values(**values)
    )
