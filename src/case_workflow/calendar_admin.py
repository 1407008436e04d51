"""Administrators' calendar changes, and the recomputation of the deadlines they affect.

A change (add, confirm or remove a holiday or a day off) is stored as a row, and each engine
applies the stored changes to the calendars it loaded. Applying a change recomputes every
running deadline whose counting window contains the changed day by replaying the deadline's
history with the new calendar. A deadline that moves gets a ``calendar_changed`` event on its
dossier with the old and new due instants, and its pending actions are rescheduled. A deadline
that an action was already taken on keeps its due date, because letters already cited it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, RowMapping, insert, select

from case_workflow.calendars import HolidayChange, WorkingCalendar
from case_workflow.durations import Duration
from case_workflow.planning import DUE_FROM_RULE, plan_actions
from case_workflow.records import ActionStatus, DeadlineStatus
from case_workflow.states import Actor
from case_workflow.steps import StepContext
from case_workflow.store.history import load_dossier, load_history, write_step
from case_workflow.store.schedule import reschedule_deadline
from case_workflow.store.tables import calendar_changes, deadline_actions, deadlines, dossiers
from case_workflow.timeline import deadline_marks, replay_deadline

__all__ = [
    "CalendarChangeResult",
    "MovedDeadline",
    "apply_change",
    "recompute_all",
    "stored_changes",
]

log = logging.getLogger(__name__)

# Day arithmetic reaches this far around a changed day through roll-forward and estimates.
_WINDOW = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class MovedDeadline:
    reference: str
    deadline: str
    previous_due_at: datetime
    due_at: datetime


@dataclass
class CalendarChangeResult:
    """Outcome of one calendar change for the open deadlines."""

    calendar: str
    change: HolidayChange | None
    examined: int = 0
    moved: list[MovedDeadline] = field(default_factory=list)
    kept_acted_on: list[str] = field(default_factory=list)


def stored_changes(connection: Connection) -> dict[str, list[HolidayChange]]:
    """Return the stored calendar changes by calendar name, oldest first."""
    changes: dict[str, list[HolidayChange]] = {}
    for row in connection.execute(select(calendar_changes).order_by(calendar_changes.c.id)):
        changes.setdefault(row.calendar, []).append(
            HolidayChange(action=row.action, day=row.day, name=row.name, kind=row.kind)
        )
    return changes


def record_change(
    connection: Connection, calendar: str, change: HolidayChange, *, actor: str, at: datetime
) -> None:
    connection.execute(
        insert(calendar_changes),
        {
            "calendar": calendar,
            "action": change.action,
            "day": change.day,
            "name": change.name,
            "kind": change.kind,
            "actor": actor,
            "created_at": at,
        },
    )


def _acted_on(connection: Connection, deadline_id: int) -> bool:
    done = connection.execute(
        select(deadline_actions.c.id)
        .where(deadline_actions.c.deadline_id == deadline_id)
        .where(deadline_actions.c.status == ActionStatus.DONE)
        .limit(1)
    ).first()
    return done is not None


def apply_change(
    connection: Connection,
    contexts: Sequence[StepContext],
    calendar: WorkingCalendar,
    change: HolidayChange,
    *,
    actor_name: str,
    at: datetime,
) -> CalendarChangeResult:
    """Recompute the running deadlines of ``contexts`` (already using the changed calendar)."""
    result = CalendarChangeResult(calendar.name, change)
    for context in contexts:
        _apply_to_workflow(connection, context, change.day, actor_name, at, result)
    log.info(
        "calendar %s: %s %s; %d deadlines examined, %d moved, %d kept (already acted on)",
        calendar.name,
        change.action,
        change.day.isoformat(),
        result.examined,
        len(result.moved),
        len(result.kept_acted_on),
    )
    return result


def _candidates(connection: Connection, context: StepContext, day: date | None) -> list[RowMapping]:
    """Return the running deadlines whose counting window contains ``day`` (None: all)."""
    definition = context.workflow.definition
    zone = context.zone
    query = (
        select(deadlines, dossiers.c.reference)
        .join(dossiers, dossiers.c.id == deadlines.c.dossier_id)
        .where(dossiers.c.workflow == definition.workflow)
        .where(dossiers.c.workflow_version == definition.version)
        .where(deadlines.c.status == DeadlineStatus.RUNNING)
        .where(deadlines.c.rule != DUE_FROM_RULE)
        .order_by(deadlines.c.id)
    )
    if day is not None:
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=zone) - _WINDOW
        day_end = datetime.combine(day, datetime.max.time(), tzinfo=zone) + _WINDOW
        query = query.where(deadlines.c.started_at <= day_end).where(
            deadlines.c.due_at >= day_start
        )
    return [row._mapping for row in connection.execute(query)]


def recompute_all(
    connection: Connection,
    contexts: Sequence[StepContext],
    calendar: WorkingCalendar,
    *,
    actor_name: str,
    at: datetime,
) -> CalendarChangeResult:
    """Recompute every running deadline of ``contexts`` with their current calendar.

    Used after holidays declared in a workflow file changed: the engine cannot tell which
    days the edit touched, so every running deadline is replayed.
    """
    result = CalendarChangeResult(calendar.name, None)
    for context in contexts:
        _apply_to_workflow(connection, context, None, actor_name, at, result)
    log.info(
        "calendar %s recomputed: %d deadlines examined, %d moved, %d kept (already acted on)",
        calendar.name,
        result.examined,
        len(result.moved),
        len(result.kept_acted_on),
    )
    return result


def _apply_to_workflow(
    connection: Connection,
    context: StepContext,
    day: date | None,
    actor_name: str,
    at: datetime,
    result: CalendarChangeResult,
) -> None:
    workflow = context.workflow
    definition = workflow.definition
    system_role = definition.system_role
    actor = Actor(actor_name, system_role, definition.roles[system_role].institution)
    for row in _candidates(connection, context, day):
        result.examined += 1
        rule = workflow.deadline_of(str(row["state"]))
        if rule is None:
            continue
        deadline_id = int(row["id"])
        reference = str(row["reference"])
        if _acted_on(connection, deadline_id):
            result.kept_acted_on.append(reference)
            continue
        dossier_id = int(row["dossier_id"])
        started_at: datetime = row["started_at"]
        previous: datetime = row["due_at"]
        marks = deadline_marks(
            workflow,
            rule.name,
            str(row["state"]),
            started_at,
            load_history(connection, dossier_id),
        )
        due = replay_deadline(
            rule, Duration.parse(str(row["rule"])), marks, context.calendar, context.zone
        )
        if due.due_at == previous:
            continue
        dossier = load_dossier(connection, dossier_id=dossier_id)
        write_step(
            connection,
            dossier,
            trigger="calendar_changed",
            to_state=dossier.state,
            actor=actor.name,
            role=actor.role,
            institution=actor.institution,
            occurred_at=at,
            payload={
                "calendar": result.calendar,
                "action": result.change.action if result.change else "recompute",
                "day": day.isoformat() if day else None,
                "name": result.change.name if result.change else "",
                "deadline": rule.name,
                "previous_due_at": previous.isoformat(),
                "due_at": due.due_at.isoformat(),
            },
        )
        reschedule_deadline(
            connection,
            deadline_id,
            due_at=due.due_at,
            rests_on_estimate=due.rests_on_estimate,
            explanation=due.explanation.to_dict(),
            actions=plan_actions(
                rule,
                started_at=started_at,
                due_at=due.due_at,
                calendar=context.calendar,
                zone=context.zone,
            ),
        )
        result.moved.append(MovedDeadline(reference, rule.name, previous, due.due_at))
