"""Portable SQL for time arithmetic, and local-calendar boundaries computed in Python.

SQLite has no interval type and PostgreSQL no ``julianday``, so :func:`days_between` compiles to
each dialect's own expression. Local calendar questions ("how many local days since filing?")
never reach SQL: :func:`local_midnight` turns a local date into the UTC instant that starts it,
and queries compare the stored UTC instants with such boundaries. That keeps time zone rules
(Morocco's Ramadan offset, for one) in Python's ``zoneinfo`` and the SQL index-friendly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from case_workflow.errors import StoreError

__all__ = ["add_months", "days_between", "local_date", "local_midnight"]

_SECONDS_PER_DAY = 86_400


class days_between(FunctionElement[float]):
    """Elapsed time from ``start`` to ``end`` in days of 24 hours, as a float."""

    type = Float()
    inherit_cache = True
    name = "days_between"

    def __init__(self, start: ColumnElement[Any], end: ColumnElement[Any]) -> None:
        super().__init__(start, end)


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = list(element.clauses)
    # SQLite stores the instants as naive UTC text, which julianday() parses.
    return (
        f"(julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)}))"
    )


@compiles(days_between, "postgresql")
def _days_between_postgresql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = list(element.clauses)
    return (
        f"CAST(EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - "
        f"{compiler.process(start, **kw)})) / {_SECONDS_PER_DAY} AS DOUBLE PRECISION)"
    )


@compiles(days_between)
def _days_between_other(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    raise StoreError(
        f"escalation reports do not support the {compiler.dialect.name!r} database; "
        "use SQLite or PostgreSQL"
    )


def local_date(moment: datetime, zone: tzinfo) -> date:
    """Return the calendar date of the aware ``moment`` in ``zone``."""
    return moment.astimezone(zone).date()


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """Return the UTC instant at which the local date ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """Return the first day of the month ``months`` months after the month of ``day``."""
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)
