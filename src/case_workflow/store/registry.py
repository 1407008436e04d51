"""Gap-free yearly sequences: registry (bureau d'ordre) numbers and dossier references.

A number is taken in the caller's transaction: a rollback returns it, and the counter row's
lock keeps two writers from taking the same one.
"""

from __future__ import annotations

from sqlalchemy import Connection, update
from sqlalchemy.dialects import postgresql, sqlite

from case_workflow.store.tables import registry_counters

__all__ = ["next_in_sequence"]


def next_in_sequence(connection: Connection, series: str, year: int) -> int:
    """Take the next number of ``series`` for ``year`` (1 for the year's first)."""
    taken = connection.execute(
        update(registry_counters)
        .where(registry_counters.c.series == series)
        .where(registry_counters.c.year == year)
        .values(last_seq=registry_counters.c.last_seq + 1)
        .returning(registry_counters.c.last_seq)
    ).scalar_one_or_none()
    if taken is not None:
        return int(taken)
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        dialect_insert(registry_counters)
        .values(series=series, year=year, last_seq=0)
        .on_conflict_do_nothing()
    )
    return next_in_sequence(connection, series, year)
