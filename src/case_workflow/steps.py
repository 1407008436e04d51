"""One step of a dossier, inside the caller's transaction.

A step moves the dossier with a version check, appends its event, closes, pauses, resumes or
opens deadlines, and issues the step's letters. Everything is written through one connection
so that the caller's single commit makes the whole step visible at once, or none of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from case_workflow.calendars import WorkingCalendar
from case_workflow.deadlines import extend, remaining, resume
from case_workflow.durations import Duration
from case_workflow.errors import InvalidInput
from case_workflow.notifications import DeadlineInfo, LetterRenderer
from case_workflow.outgoing import issue_letters
from case_workflow.planning import (
    DUE_FROM_RULE,
    plan_actions,
    plan_deadline,
    remaining_unit,
)
from case_workflow.records import DeadlineStatus
from case_workflow.states import Actor, CompiledWorkflow
from case_workflow.store.history import AppendedEvent, DossierRow, write_step
from case_workflow.store.schedule import (
    DeadlineRow,
    close_deadline,
    insert_deadline,
    open_deadlines,
    pause_deadline,
    reschedule_deadline,
)
from case_workflow.store.tables import deadlines

__all__ = ["AppliedStep", "StepContext", "StepHook", "apply_step", "extend_deadline"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AppliedStep:
    """Record of one written step: the dossier as read before it, its event and its inputs."""

    dossier: DossierRow
    event: AppendedEvent
    trigger: str
    from_state: str | None
    to_state: str
    actor: Actor
    payload: Mapping[str, Any]
    at: datetime


StepHook = Callable[[Connection, "StepContext", AppliedStep], None]
"""A callable run inside a step's transaction after the step is written (for example to add
an exchange outbox row). An exception it raises rolls the whole step back."""


@dataclass(frozen=True)
class StepContext:
    """Compiled workflow, calendar, zone and renderer of one workflow version, built once.

    ``hooks`` is shared with the engine that built the context, so hooks registered later
    reach contexts built earlier.
    """

    workflow: CompiledWorkflow
    calendar: WorkingCalendar
    zone: ZoneInfo
    renderer: LetterRenderer
    hooks: Sequence[StepHook] = ()


def apply_step(
    connection: Connection,
    context: StepContext,
    dossier: DossierRow,
    *,
    trigger: str,
    to_state: str,
    actor: Actor,
    payload: Mapping[str, Any],
    at: datetime,
    letters: Sequence[str] = (),
    deadline: DeadlineInfo | None = None,
    extra_values: Mapping[str, Any] | None = None,
    creation: bool = False,
) -> AppendedEvent:
    """Write one step; raise ConcurrencyError (nothing written) if the dossier moved."""
    event = write_step(
        connection,
        dossier,
        trigger=trigger,
        to_state=to_state,
        actor=actor.name,
        role=actor.role,
        institution=actor.institution,
        occurred_at=at,
        payload=payload,
        extra_values=extra_values,
        creation=creation,
    )
    entered = creation or to_state != dossier.state
    if entered:
        _update_deadlines(connection, context, dossier, to_state, payload, at, creation=creation)
    names = list(letters)
    if entered:
        names += context.workflow.definition.states[to_state].letters
    if names and deadline is None:
        deadline = _running_deadline_info(connection, context, dossier.id, to_state, at)
    if names:
        issue_letters(
            connection,
            context.workflow,
            context.renderer,
            dossier_id=dossier.id,
            event=event,
            trigger=trigger,
            actor=actor,
            payload=payload,
            names=names,
            deadline=deadline,
        )
    if context.hooks:
        applied = AppliedStep(
            dossier=dossier,
            event=event,
            trigger=trigger,
            from_state=None if creation else dossier.state,
            to_state=to_state,
            actor=actor,
            payload=payload,
            at=at,
        )
        for hook in context.hooks:
            hook(connection, context, applied)
    if entered:
        log.info(
            "dossier %s: %s -> %s by %s (%s)",
            dossier.reference,
            None if creation else dossier.state,
            to_state,
            actor.role,
            trigger,
        )
    return event


def _running_deadline_info(
    connection: Connection, context: StepContext, dossier_id: int, state: str, at: datetime
) -> DeadlineInfo | None:
    """Describe the deadline that ``state`` runs, for the letters of a step entering it."""
    rule = context.workflow.deadline_of(state)
    if rule is None:
        return None
    for row in open_deadlines(connection, dossier_id):
        if row.name == rule.name:
            zone = context.zone
            overdue = (at.astimezone(zone).date() - row.due_at.astimezone(zone).date()).days
            return DeadlineInfo(
                name=row.name,
                due_at=row.due_at,
                started_at=row.started_at,
                days_overdue=max(0, overdue),
                level=0,
                explanation_text="",
            )
    return None


def _update_deadlines(
    connection: Connection,
    context: StepContext,
    dossier: DossierRow,
    to_state: str,
    payload: Mapping[str, Any],
    at: datetime,
    *,
    creation: bool,
) -> None:
    workflow = context.workflow
    rule = workflow.deadline_of(to_state)
    paused_here = set(workflow.paused_by(to_state))
    resumed = False
    # A deadline is open only while the dossier is in the state that runs it or in a state
    # that pauses it, so a step from any other state has nothing to close.
    if creation or (
        workflow.deadline_of(dossier.state) is None and not workflow.paused_by(dossier.state)
    ):
        open_rows: list[DeadlineRow] = []
    else:
        open_rows = open_deadlines(connection, dossier.id)
    for row in open_rows:
        if row.name in paused_here:
            if row.status is DeadlineStatus.RUNNING:
                _pause(connection, context, row, at)
        elif rule is not None and rule.name == row.name and row.status is DeadlineStatus.PAUSED:
            _resume(connection, context, row, at)
            resumed = True
        elif row.status is DeadlineStatus.PAUSED:
            close_deadline(connection, row.id, at=at, status=DeadlineStatus.CANCELLED)
        else:
            status = DeadlineStatus.MET if at <= row.due_at else DeadlineStatus.MISSED
            working_days = _working_days_taken(context, row.started_at, at)
            close_deadline(connection, row.id, at=at, status=status, working_days=working_days)
    if rule is None or resumed:
        return
    planned = plan_deadline(
        rule,
        started_at=at,
        urgent=dossier.urgent,
        payload=payload,
        calendar=context.calendar,
        zone=context.zone,
    )
    insert_deadline(
        connection,
        dossier_id=dossier.id,
        name=rule.name,
        state=to_state,
        rule=planned.rule,
        started_at=at,
        due_at=planned.due_at,
        rests_on_estimate=planned.rests_on_estimate,
        explanation=planned.explanation,
        actions=plan_actions(
            rule,
            started_at=at,
            due_at=planned.due_at,
            calendar=context.calendar,
            zone=context.zone,
        ),
    )


def _working_days_taken(context: StepContext, started_at: datetime, closed_at: datetime) -> int:
    """Count the working days after the local start date, up to the local close date included.

    An "N working days" rule counts the same way, so closing on its due date gives N unless
    the deadline was paused or extended. Paused days are counted like the others.
    """
    first = started_at.astimezone(context.zone).date()
    last = closed_at.astimezone(context.zone).date()
    days = (first + timedelta(days=offset) for offset in range(1, (last - first).days + 1))
    return sum(1 for day in days if context.calendar.is_working_day(day))


def _rule_as_duration(row: DeadlineRow) -> Duration:
    if row.rule == DUE_FROM_RULE:
        hours = max(0, int((row.due_at - row.started_at).total_seconds() // 3600))
        return Duration(hours, remaining_unit(row.rule))
    return Duration.parse(row.rule)


def _pause(connection: Connection, context: StepContext, row: DeadlineRow, at: datetime) -> None:
    left = remaining(row.due_at, at, _rule_as_duration(row), context.calendar, context.zone)
    pause_deadline(connection, row.id, at=at, remaining=str(left))


def _resume(connection: Connection, context: StepContext, row: DeadlineRow, at: datetime) -> None:
    rule = context.workflow.deadline_of(row.state)
    assert rule is not None and row.remaining is not None
    due = resume(
        at,
        Duration.parse(row.remaining),
        context.calendar,
        context.zone,
        at=rule.at,
        roll_forward=rule.roll_forward,
    )
    explanation = due.explanation.to_dict()
    explanation["resumed_from_pause"] = {
        "paused_at": row.paused_at.isoformat() if row.paused_at else None,
        "resumed_at": at.isoformat(),
        "remaining": row.remaining,
        "previous_due_at": row.due_at.isoformat(),
    }
    reschedule_deadline(
        connection,
        row.id,
        due_at=due.due_at,
        rests_on_estimate=due.rests_on_estimate,
        explanation=explanation,
        actions=plan_actions(
            rule,
            started_at=row.started_at,
            due_at=due.due_at,
            calendar=context.calendar,
            zone=context.zone,
        ),
    )


def extend_deadline(
    connection: Connection,
    context: StepContext,
    dossier: DossierRow,
    *,
    name: str,
    extra: Duration,
    at: datetime,
    reason: str,
) -> datetime:
    """Move the running deadline ``name`` later by ``extra`` and reschedule its actions.

    Return the new due instant; raise InvalidInput if the dossier has no such running deadline.
    """
    row = next(
        (
            row
            for row in open_deadlines(connection, dossier.id)
            if row.name == name and row.status is DeadlineStatus.RUNNING
        ),
        None,
    )
    rule = context.workflow.deadline_of(row.state) if row is not None else None
    if row is None or rule is None:
        raise InvalidInput(
            f"dossier {dossier.reference!r} has no running deadline {name!r} to extend; "
            "extend it while its clock runs"
        )
    due_at = extend(row.due_at, extra, context.calendar, context.zone)
    stored = connection.execute(
        select(deadlines.c.explanation, deadlines.c.rests_on_estimate).where(
            deadlines.c.id == row.id
        )
    ).one()
    explanation = dict(stored.explanation)
    history = list(explanation.get("extensions_granted", []))
    history.append(
        {
            "at": at.isoformat(),
            "extra": str(extra),
            "reason": reason,
            "previous_due_at": row.due_at.isoformat(),
            "due_at": due_at.isoformat(),
        }
    )
    explanation["extensions_granted"] = history
    reschedule_deadline(
        connection,
        row.id,
        due_at=due_at,
        # NOTE: the added days are not checked for estimated holidays; only the original
        # period's flag is kept.
        rests_on_estimate=bool(stored.rests_on_estimate),
        explanation=explanation,
        actions=plan_actions(
            rule,
            started_at=row.started_at,
            due_at=due_at,
            calendar=context.calendar,
            zone=context.zone,
        ),
    )
    return due_at
