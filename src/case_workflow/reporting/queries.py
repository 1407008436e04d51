"""SQL expressions that reconstruct the store as of an instant.

Every figure of a report is read from the history, not from the current columns:

- the state of a dossier at T is the ``to_state`` of its last event (highest ``seq``) that
  occurred at or before T;
- a dossier is open at T unless it was closed (entered a final state) at or before T. Final
  states have no exits, so ``closed_at`` is written once, by the event that closes the dossier;
- a deadline is open at T when it started at or before T and was not closed by T; it is overdue
  when it is also due before T and not paused at T;
- the escalation level of a dossier at T is the highest level of its escalation actions done at
  or before T (0 when none).

NOTE: a deadline row keeps only its latest ``due_at``, ``paused_at`` and ``rests_on_estimate``.
A report as of an earlier instant therefore uses due dates moved later by a pause or a calendar
change, and ignores pauses that had ended before the deadline's current one began.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Subquery,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from case_workflow.records import ActionKind, ActionStatus, DeadlineStatus
from case_workflow.reporting.model import AgeBucket, ReportFilter
from case_workflow.reporting.sqltime import local_date, local_midnight
from case_workflow.store.tables import deadline_actions, deadlines, dossiers, events

__all__ = ["Scope"]

ANSWERED = (DeadlineStatus.MET, DeadlineStatus.MISSED)


@dataclass(frozen=True)
class Scope:
    """The instant, time zone, dossier filter and deadline name that a report covers."""

    as_of: datetime
    zone: tzinfo
    filters: ReportFilter
    deadline_name: str | None

    def dossier_conditions(self) -> list[ColumnElement[bool]]:
        """Conditions on ``cw_dossiers``: filed at or before ``as_of`` and matching the filter."""
        conditions: list[ColumnElement[bool]] = [dossiers.c.filed_at <= self.as_of]
        if self.filters.respondent is not None:
            conditions.append(dossiers.c.respondent == self.filters.respondent)
        if self.filters.region is not None:
            conditions.append(dossiers.c.region == self.filters.region)
        if self.filters.workflow is not None:
            conditions.append(dossiers.c.workflow == self.filters.workflow)
        if self.filters.filed_from is not None:
            start = local_midnight(self.filters.filed_from, self.zone)
            conditions.append(dossiers.c.filed_at >= start)
        if self.filters.filed_to is not None:
            stop = local_midnight(self.filters.filed_to + timedelta(days=1), self.zone)
            conditions.append(dossiers.c.filed_at < stop)
        return conditions

    def deadline_conditions(self) -> list[ColumnElement[bool]]:
        """Conditions on ``cw_deadlines``: the deadline name, when the report names one."""
        if self.deadline_name is None:
            return []
        return [deadlines.c.name == self.deadline_name]

    def open_dossier(self) -> ColumnElement[bool]:
        return or_(dossiers.c.closed_at.is_(None), dossiers.c.closed_at > self.as_of)

    def state_at(self) -> Subquery:
        """Return ``(dossier_id, state)`` rows: each dossier's state at ``as_of``."""
        last = (
            select(events.c.dossier_id, func.max(events.c.seq).label("seq"))
            .where(events.c.occurred_at <= self.as_of)
            .group_by(events.c.dossier_id)
            .subquery("last_event")
        )
        return (
            select(events.c.dossier_id, events.c.to_state.label("state"))
            .join(
                last,
                and_(events.c.dossier_id == last.c.dossier_id, events.c.seq == last.c.seq),
            )
            .subquery("state_at")
        )

    def state_of_dossier(self) -> ColumnElement[Any]:
        """Return a correlated subquery: the state at ``as_of`` of the outer query's dossier."""
        return (
            select(events.c.to_state)
            .where(events.c.dossier_id == dossiers.c.id)
            .where(events.c.occurred_at <= self.as_of)
            .order_by(events.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )

    def overdue(self) -> Subquery:
        """Return ``(dossier_id, due_at)`` rows: dossiers overdue at ``as_of``.

        ``due_at`` is the earliest due time among the dossier's overdue deadlines.
        """
        return (
            select(deadlines.c.dossier_id, func.min(deadlines.c.due_at).label("due_at"))
            .select_from(deadlines.join(dossiers, dossiers.c.id == deadlines.c.dossier_id))
            .where(*self.dossier_conditions(), *self.deadline_conditions())
            .where(overdue_at(self.as_of))
            .group_by(deadlines.c.dossier_id)
            .subquery("overdue")
        )

    def escalation_level(self) -> Subquery:
        """Return ``(dossier_id, level)`` rows: the highest escalation level done by ``as_of``."""
        return (
            select(deadline_actions.c.dossier_id, func.max(deadline_actions.c.level).label("level"))
            .select_from(
                deadline_actions.join(deadlines, deadlines.c.id == deadline_actions.c.deadline_id)
            )
            .where(deadline_actions.c.kind == ActionKind.ESCALATION)
            .where(deadline_actions.c.status == ActionStatus.DONE)
            .where(deadline_actions.c.done_at <= self.as_of)
            .where(*self.deadline_conditions())
            .group_by(deadline_actions.c.dossier_id)
            .subquery("escalation_level")
        )

    def answered(self) -> list[ColumnElement[bool]]:
        """Conditions on ``cw_deadlines``: closed met or missed at or before ``as_of``."""
        return [
            deadlines.c.status.in_(ANSWERED),
            deadlines.c.closed_at <= self.as_of,
            *self.deadline_conditions(),
        ]

    def bucket_index(
        self, moment: ColumnElement[datetime], buckets: Sequence[AgeBucket]
    ) -> ColumnElement[int]:
        """Return the index in ``buckets`` of the local days from ``moment`` to ``as_of``.

        Days are counted between local dates, so the CASE compares ``moment`` with the UTC
        instants at which the bucket limits' local dates begin.
        """
        today = local_date(self.as_of, self.zone)
        whens: list[tuple[ColumnElement[bool], ColumnElement[int]]] = []
        for index, bucket in enumerate(buckets):
            if bucket.high is None:
                break
            start = local_midnight(today - timedelta(days=bucket.high), self.zone)
            whens.append((moment >= start, literal(index, Integer)))
        return case(*whens, else_=literal(len(buckets) - 1, Integer))


def open_deadline_at(moment: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Return the condition that a ``cw_deadlines`` row is open at ``moment``."""
    return and_(
        deadlines.c.started_at <= moment,
        or_(deadlines.c.closed_at.is_(None), deadlines.c.closed_at > moment),
    )


def overdue_at(moment: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Return the condition that a ``cw_deadlines`` row is overdue at ``moment``.

    A deadline paused at ``moment`` is not overdue: its clock is stopped.
    """
    return and_(
        open_deadline_at(moment),
        deadlines.c.due_at < moment,
        or_(deadlines.c.paused_at.is_(None), deadlines.c.paused_at > moment),
    )


def count_by(inner: Select[Any], key: str) -> Select[Any]:
    """Wrap ``inner`` and count its rows per value of its column ``key``.

    Grouping in an outer query keeps GROUP BY on a plain column: PostgreSQL would not match a
    CASE expression in GROUP BY with the same CASE in the select list once each has its own
    bound parameters.
    """
    subquery = inner.subquery("grouped")
    column = subquery.c[key]
    return select(column, func.count().label("count")).group_by(column)
