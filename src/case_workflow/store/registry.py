"""Gap-free yearly sequences: registry (bureau d'ordre) numbers and dossier references.

A number is taken in the caller's transaction by incrementing a counter row, so a rollback
returns it and the year's numbers stay contiguous. The counter row's lock keeps two writers,
in one process or several, from taking the same number: a second writer waits until the first
commits or rolls back. On SQLite every write transaction holds the database lock anyway
(``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from case_workflow.store.tables import registry_counters

__all__ = ["last_in_sequence", "next_in_sequence"]


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
    # The year's first number. Two writers may both get here. On PostgreSQL the second
    # INSERT waits for the first writer's transaction and then does nothing. The UPDATE of
    # the second call then reads the committed row, because READ COMMITTED takes a new
    # snapshot per statement, so the second writer gets 2.
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        dialect_insert(registry_counters)
        .values(series=series, year=year, last_seq=0)
        .on_conflict_do_nothing()
    )
    return next_in_sequence(connection, series, year)


def last_in_sequence(connection: Connection, series: str, year: int) -> int:
    """Return the last number taken of ``series`` in ``year``, 0 if none."""
    found = connection.execute(
        select(registry_counters.c.last_seq)
        .where(registry_counters.c.series == series)
        .where(registry_counters.c.year == year)
    ).scalar_one_or_none()
    return int(found) if found is not None else 0
