"""Building an :class:`EscalationReport` from the store with aggregate SQL queries.

Each figure is one GROUP BY or COUNT query run by the database. Python receives at most one row
per state, respondent, region, level, bucket or month, plus the ``top`` rows of the overdue
list, so memory does not grow with the number of dossiers. All queries run in one read
transaction (REPEATABLE READ on PostgreSQL) so that they see the same snapshot.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    case,
    func,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from case_workflow.calendars import load_zone
from case_workflow.errors import InvalidInput
from case_workflow.records import DeadlineStatus
from case_workflow.reporting.model import (
    AGING_BUCKETS,
    OVERDUE_BUCKETS,
    UNASSIGNED,
    AgeBucket,
    EscalatedRow,
    EscalationReport,
    ReportFilter,
)
from case_workflow.reporting.monthly import MAX_MONTHS, monthly_rows
from case_workflow.reporting.queries import Scope, open_deadline_at
from case_workflow.reporting.sqltime import days_between, local_date
from case_workflow.store.database import read_transaction
from case_workflow.store.tables import deadlines, dossiers

__all__ = ["build_report"]

log = logging.getLogger(__name__)


def build_report(
    connection_or_engine: Engine | Connection,
    *,
    as_of: datetime,
    timezone: str = "Africa/Casablanca",
    deadline_name: str | None = None,
    filters: ReportFilter = ReportFilter(),  # noqa: B008 (a frozen, immutable default)
    top: int = 200,
    months: int = 12,
) -> EscalationReport:
    """Compute the escalation report as of ``as_of`` from the dossiers' history.

    ``timezone`` sets the local dates used for ages, filing-date filters and months.
    ``deadline_name`` restricts deadline figures (overdue, answers, escalation levels) to the
    deadlines of that name; None counts every deadline. ``top`` caps the overdue list (its full
    size is ``escalated_total``) and ``months`` sets how many months ``monthly`` covers, ending
    with the month that contains ``as_of``. Raises :class:`InvalidInput` for a naive ``as_of``,
    an unknown time zone, a negative ``top``, ``months`` outside 1 to 120, or ``filed_from`` after
    ``filed_to``.

    With an Engine, the queries run in a read transaction of their own; a Connection is used as
    it is, inside its current transaction.
    """
    scope = _scope(as_of, timezone, deadline_name, filters)
    if top < 0:
        raise InvalidInput(f"invalid top {top}; pass 0 or a positive number of overdue dossiers")
    if not 1 <= months <= MAX_MONTHS:
        raise InvalidInput(f"invalid months {months}; pass 1 to {MAX_MONTHS} months to report")
    if isinstance(connection_or_engine, Connection):
        report = _build(connection_or_engine, scope, timezone, top, months)
    else:
        with _snapshot(connection_or_engine) as connection:
            report = _build(connection, scope, timezone, top, months)
    log.info(
        "escalation report as of %s: %d open, %d overdue dossiers",
        report.as_of.isoformat(),
        report.open_total,
        report.escalated_total,
    )
    return report


def _scope(
    as_of: datetime, timezone: str, deadline_name: str | None, filters: ReportFilter
) -> Scope:
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise InvalidInput(
            f"invalid as_of {as_of.isoformat()}: it is naive; pass an aware datetime "
            "such as datetime(2025, 6, 30, tzinfo=UTC)"
        )
    if (
        filters.filed_from is not None
        and filters.filed_to is not None
        and filters.filed_from > filters.filed_to
    ):
        raise InvalidInput(
            f"invalid filing dates: filed_from {filters.filed_from} is after filed_to "
            f"{filters.filed_to}; swap them or drop one"
        )
    return Scope(
        as_of=as_of.astimezone(UTC),
        zone=load_zone(timezone),
        filters=filters,
        deadline_name=deadline_name,
    )


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    if engine.dialect.name != "postgresql":
        with read_transaction(engine) as connection:
            yield connection
        return
    with engine.connect() as plain:
        connection = plain.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        with connection.begin():
            yield connection


def _build(
    connection: Connection, scope: Scope, timezone: str, top: int, months: int
) -> EscalationReport:
    on_time, late, with_working_days = _answered(connection, scope)
    answered = on_time + late
    open_by_state, aging = _open_figures(connection, scope)
    overdue = _overdue_figures(connection, scope)
    elapsed_days = days_between(deadlines.c.started_at, deadlines.c.closed_at)
    median, p90 = _percentiles(connection, scope, elapsed_days, answered)
    median_working, p90_working = _percentiles(
        connection,
        scope,
        deadlines.c.working_days,
        with_working_days,
        deadlines.c.working_days.is_not(None),
    )
    return EscalationReport(
        as_of=scope.as_of,
        generated_for=scope.filters,
        timezone=timezone,
        deadline_name=scope.deadline_name,
        open_by_state=open_by_state,
        overdue_by_respondent=overdue.by_respondent,
        overdue_by_region=overdue.by_region,
        overdue_by_level=overdue.by_level,
        aging=aging,
        overdue_aging=overdue.aging,
        answered_on_time=on_time,
        answered_late=late,
        on_time_rate=on_time / answered if answered else None,
        median_answer_days=median,
        p90_answer_days=p90,
        median_answer_working_days=median_working,
        p90_answer_working_days=p90_working,
        monthly=monthly_rows(connection, scope, months),
        escalated=_overdue_list(connection, scope, top) if overdue.total else [],
        escalated_total=overdue.total,
        estimated_holiday_deadlines=_estimated(connection, scope),
    )


def _open_figures(
    connection: Connection, scope: Scope
) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Count open dossiers per state and per age bucket in one grouped query."""
    inner = (
        select(
            scope.state_at_as_of().label("state"),
            scope.bucket_index(dossiers.c.filed_at, AGING_BUCKETS).label("bucket"),
        )
        .where(*scope.dossier_conditions(), scope.open_dossier())
        .subquery("open_dossiers")
    )
    query = select(inner.c.state, inner.c.bucket, func.count()).group_by(
        inner.c.state, inner.c.bucket
    )
    by_state: Counter[str] = Counter()
    by_bucket: Counter[int] = Counter()
    for state_name, bucket, count in connection.execute(query):
        if state_name is None:
            # No event by as_of, which a dossier filed by then cannot lack: not counted.
            continue
        by_state[state_name] += count
        by_bucket[bucket] += count
    return dict(sorted(by_state.items())), _bucket_counts(by_bucket, AGING_BUCKETS)


@dataclass(frozen=True, slots=True)
class _OverdueFigures:
    by_respondent: dict[str, int]
    by_region: dict[str, int]
    by_level: dict[int, int]
    aging: list[tuple[str, int]]
    total: int


def _overdue_figures(connection: Connection, scope: Scope) -> _OverdueFigures:
    """Count overdue dossiers per respondent, region, level and bucket in one grouped query.

    The query returns one row per combination that occurs, which is bounded by the number of
    respondents, regions, levels and buckets, not by the number of dossiers.
    """
    overdue = scope.overdue()
    inner = (
        select(
            dossiers.c.respondent,
            dossiers.c.region,
            scope.escalation_level_of(overdue.c.dossier_id).label("level"),
            scope.bucket_index(overdue.c.due_at, OVERDUE_BUCKETS).label("bucket"),
        )
        .select_from(overdue.join(dossiers, dossiers.c.id == overdue.c.dossier_id))
        .subquery("overdue_dossiers")
    )
    keys = (inner.c.respondent, inner.c.region, inner.c.level, inner.c.bucket)
    query = select(*keys, func.count()).group_by(*keys)
    by_respondent: Counter[str] = Counter()
    by_region: Counter[str] = Counter()
    by_level: Counter[int] = Counter()
    by_bucket: Counter[int] = Counter()
    for respondent, region, level_reached, bucket, count in connection.execute(query):
        by_respondent[UNASSIGNED if respondent is None else respondent] += count
        by_region[UNASSIGNED if region is None else region] += count
        by_level[level_reached] += count
        by_bucket[bucket] += count
    return _OverdueFigures(
        by_respondent=_largest_first(by_respondent),
        by_region=_largest_first(by_region),
        by_level=dict(sorted(by_level.items())),
        aging=_bucket_counts(by_bucket, OVERDUE_BUCKETS),
        total=sum(by_level.values()),
    )


def _largest_first(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _bucket_counts(counts: Counter[int], buckets: tuple[AgeBucket, ...]) -> list[tuple[str, int]]:
    return [(bucket.label, counts[index]) for index, bucket in enumerate(buckets)]


def _overdue_list(connection: Connection, scope: Scope, top: int) -> list[EscalatedRow]:
    """Return the ``top`` most overdue dossiers, the earliest due first."""
    if top == 0:
        return []
    overdue = scope.overdue()
    query = (
        select(
            dossiers.c.reference,
            dossiers.c.respondent,
            dossiers.c.region,
            func.coalesce(scope.state_at_as_of(), "").label("state"),
            scope.escalation_level_of(overdue.c.dossier_id).label("level"),
            overdue.c.due_at,
        )
        .select_from(overdue.join(dossiers, dossiers.c.id == overdue.c.dossier_id))
        # The earliest due time is the most days overdue.
        .order_by(overdue.c.due_at, dossiers.c.reference)
        .limit(top)
    )
    today = local_date(scope.as_of, scope.zone)
    return [
        EscalatedRow(
            reference=row.reference,
            respondent=row.respondent,
            region=row.region,
            state=row.state,
            level=row.level,
            due_at=row.due_at,
            days_overdue=(today - local_date(row.due_at, scope.zone)).days,
        )
        for row in connection.execute(query)
    ]


def _answered(connection: Connection, scope: Scope) -> tuple[int, int, int]:
    """Count the answered deadlines met, missed, and with a stored working-day count."""

    def tally(status: DeadlineStatus) -> Any:
        return func.coalesce(func.sum(case((deadlines.c.status == status, 1), else_=0)), 0)

    query = (
        select(
            tally(DeadlineStatus.MET),
            tally(DeadlineStatus.MISSED),
            # COUNT of a column skips its NULLs.
            func.count(deadlines.c.working_days),
        )
        .select_from(scope.deadline_source())
        .where(*scope.deadline_dossier_conditions(), *scope.answered())
    )
    on_time, late, with_working_days = connection.execute(query).one()
    return int(on_time), int(late), int(with_working_days)


def _percentiles(
    connection: Connection,
    scope: Scope,
    days: ColumnElement[Any],
    count: int,
    *conditions: ColumnElement[bool],
) -> tuple[float | None, float | None]:
    """Return the median and 90th percentile of ``days`` over the answered deadlines.

    Percentiles interpolate linearly, as PostgreSQL's percentile_cont does. ``count`` is the
    number of answered deadlines that ``conditions`` keep. SQLite has no percentile
    aggregate, so the database numbers the sorted values once (row_number) and returns only
    the one or two rows around each position ``fraction * (count - 1)``.
    """
    fractions = (Fraction(1, 2), Fraction(9, 10))
    if count == 0:
        return None, None
    ranked = (
        select(
            days.label("days"),
            func.row_number().over(order_by=days).label("position"),
        )
        .select_from(scope.deadline_source())
        .where(*scope.deadline_dossier_conditions(), *scope.answered(), *conditions)
        .subquery("ranked")
    )
    positions: set[int] = set()
    for fraction in fractions:
        position = fraction * (count - 1)
        # row_number counts from 1.
        positions.update({int(position) + 1, min(int(position) + 2, count)})
    values = dict(
        connection.execute(
            select(ranked.c.position, ranked.c.days).where(ranked.c.position.in_(sorted(positions)))
        )
        .tuples()
        .all()
    )
    results: list[float] = []
    for fraction in fractions:
        position = fraction * (count - 1)
        below = int(position)
        weight = position - below
        low = float(values[below + 1])
        if not weight:
            results.append(_round_days(low))
            continue
        high = float(values[below + 2])
        results.append(_round_days(low + float(weight) * (high - low)))
    median, p90 = results
    return median, p90


def _round_days(days: float) -> float:
    # SQLite's julianday() keeps milliseconds, and a difference of two Julian day numbers near
    # 2.46e6 carries about 5e-10 days of float noise. Rounding to 1e-8 days (0.86 ms) drops it.
    return round(days, 8)


def _estimated(connection: Connection, scope: Scope) -> int:
    query = (
        select(func.count())
        .select_from(scope.deadline_source())
        .where(*scope.deadline_dossier_conditions(), *scope.deadline_conditions())
        .where(open_deadline_at(scope.as_of))
        .where(deadlines.c.rests_on_estimate.is_(True))
    )
    return int(connection.execute(query).scalar_one())
