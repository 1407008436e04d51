"""Monthly rows of a report: filings, answers, overdue dossiers and escalations per month.

The months are local calendar months of the report's time zone, and their UTC limits are
computed in Python. Each count is one pass over its table: a CASE turns an instant into a month
index that the database groups by, and the overdue counts are one conditional column per month
end. A range join of the rows with a table of months is slower: on 200,000 synthetic dossiers
in SQLite 3.40 it took 17 s for the overdue counts, against under 1 s for this form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Integer, and_, case, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from case_workflow.records import ActionKind, ActionStatus
from case_workflow.reporting.model import MonthRow
from case_workflow.reporting.queries import Scope, count_by, overdue_at
from case_workflow.reporting.sqltime import add_months, local_date, local_midnight
from case_workflow.store.tables import deadline_actions, deadlines, dossiers

__all__ = ["MAX_MONTHS", "monthly_rows"]

# A CASE of one branch per month and one column per month end: keep both reasonable.
MAX_MONTHS = 120


@dataclass(frozen=True, slots=True)
class _Month:
    label: str
    start: datetime
    stop: datetime
    # The instant at which "overdue at month end" is counted: the next month's first instant,
    # or ``as_of`` for the month that contains it.
    end: datetime


def _months(scope: Scope, count: int) -> list[_Month]:
    first = local_date(scope.as_of, scope.zone).replace(day=1)
    months = []
    for offset in range(1 - count, 1):
        start = add_months(first, offset)
        stop = local_midnight(add_months(start, 1), scope.zone)
        months.append(
            _Month(
                label=f"{start:%Y-%m}",
                start=local_midnight(start, scope.zone),
                stop=stop,
                end=min(stop, scope.as_of),
            )
        )
    return months


def _month_index(moment: ColumnElement[datetime], months: Sequence[_Month]) -> ColumnElement[int]:
    """Return the index of the month that contains ``moment``; callers bound it to the range."""
    whens = [(moment < month.stop, literal(index, Integer)) for index, month in enumerate(months)]
    return case(*whens)


def _in_range(
    moment: ColumnElement[datetime], scope: Scope, months: Sequence[_Month]
) -> ColumnElement[bool]:
    return and_(moment >= months[0].start, moment <= scope.as_of)


def monthly_rows(connection: Connection, scope: Scope, count: int) -> list[MonthRow]:
    """Return one row per month for the ``count`` months that end with the ``as_of`` month."""
    months = _months(scope, count)
    filed_at = dossiers.c.filed_at
    filed = select(_month_index(filed_at, months).label("month")).where(
        *scope.dossier_conditions(), _in_range(filed_at, scope, months)
    )
    closed_at = deadlines.c.closed_at
    answered = (
        select(_month_index(closed_at, months).label("month"))
        .select_from(scope.deadline_source())
        .where(
            *scope.deadline_dossier_conditions(),
            *scope.answered(),
            _in_range(closed_at, scope, months),
        )
    )
    done_at = deadline_actions.c.done_at
    actions = deadline_actions.join(deadlines, deadlines.c.id == deadline_actions.c.deadline_id)
    if scope.filters_dossiers():
        actions = actions.join(dossiers, dossiers.c.id == deadline_actions.c.dossier_id)
    escalated = (
        select(_month_index(done_at, months).label("month"))
        .select_from(actions)
        .where(deadline_actions.c.kind == ActionKind.ESCALATION)
        .where(deadline_actions.c.status == ActionStatus.DONE)
        .where(*scope.deadline_dossier_conditions(), *scope.deadline_conditions())
        .where(_in_range(done_at, scope, months))
    )
    counts = {
        name: dict(connection.execute(count_by(query, "month")).tuples().all())
        for name, query in (("filed", filed), ("answered", answered), ("escalated", escalated))
    }
    overdue = _overdue_at_month_ends(connection, scope, months)
    return [
        MonthRow(
            month=month.label,
            filed=counts["filed"].get(index, 0),
            answered=counts["answered"].get(index, 0),
            overdue=overdue[index],
            escalated=counts["escalated"].get(index, 0),
        )
        for index, month in enumerate(months)
    ]


def _overdue_at_month_ends(
    connection: Connection, scope: Scope, months: Sequence[_Month]
) -> list[int]:
    """Count the dossiers overdue at each month end, in one pass over the deadlines.

    The inner query flags, per dossier, each month end at which one of its deadlines was
    overdue, so a dossier with two overdue deadlines counts once.
    """
    flags = [
        func.max(case((overdue_at(month.end), 1), else_=0)).label(f"month_{index}")
        for index, month in enumerate(months)
    ]
    per_dossier = (
        select(deadlines.c.dossier_id, *flags)
        .select_from(scope.deadline_source())
        .where(*scope.deadline_dossier_conditions(), *scope.deadline_conditions())
        # Only deadlines that can be overdue at some month end of the range.
        .where(deadlines.c.started_at <= months[-1].end)
        .where(deadlines.c.due_at < months[-1].end)
        .where(or_(deadlines.c.closed_at.is_(None), deadlines.c.closed_at > months[0].end))
        .group_by(deadlines.c.dossier_id)
        .subquery("overdue_months")
    )
    totals = select(
        *[
            func.coalesce(func.sum(per_dossier.c[f"month_{index}"]), 0)
            for index in range(len(months))
        ]
    )
    return [int(value) for value in connection.execute(totals).one()]
