"""Turning a deadline rule into a due instant and scheduled actions (pure; no storage).

Reminders fire ``before`` the due instant. Escalation level ``k`` fires once ``after`` has
fully passed since the due instant: one second after the shifted instant, so a deadline due
at 23:59:59 escalates at 00:00:00 the next day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from case_workflow.calendars import WorkingCalendar
from case_workflow.deadlines import DueDate, compute_due, shift
from case_workflow.definition.model import DeadlineRule
from case_workflow.durations import Duration, TimeUnit
from case_workflow.errors import InvalidInput
from case_workflow.records import ActionKind
from case_workflow.store.schedule import PlannedAction

__all__ = ["DUE_FROM_RULE", "PlannedDeadline", "plan_actions", "plan_deadline", "rule_duration"]

DUE_FROM_RULE = "due_from"
_ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class PlannedDeadline:
    rule: str
    due_at: datetime
    rests_on_estimate: bool
    explanation: dict[str, Any]


def rule_duration(rule: DeadlineRule, *, urgent: bool) -> Duration | None:
    """Return the delay that applies to a dossier, or None for a ``due_from`` rule."""
    if urgent and rule.urgent_within is not None:
        return rule.urgent_within
    return rule.within


def _parse_instant(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidInput(
                f"payload field {field!r} = {value!r} is not an ISO 8601 instant; "
                "give e.g. '2011-07-05T08:30:00-04:00'"
            ) from None
    if moment.tzinfo is None:
        raise InvalidInput(
            f"payload field {field!r} = {value!r} has no UTC offset; add one, "
            "e.g. '2011-07-05T08:30:00-04:00'"
        )
    return moment


def plan_deadline(
    rule: DeadlineRule,
    *,
    started_at: datetime,
    urgent: bool,
    payload: Mapping[str, object],
    calendar: WorkingCalendar,
    zone: ZoneInfo,
) -> PlannedDeadline:
    """Compute the due instant of a deadline that starts at ``started_at``."""
    duration = rule_duration(rule, urgent=urgent)
    if duration is None:
        field = rule.due_from or ""
        if field not in payload:
            raise InvalidInput(
                f"deadline {rule.name!r} takes its due instant from payload field {field!r}, "
                "which the event lacks; pass it in the payload"
            )
        due_at = _parse_instant(payload[field], field)
        return PlannedDeadline(
            rule=DUE_FROM_RULE,
            due_at=due_at,
            rests_on_estimate=False,
            explanation={"due_from": field, "due_at": due_at.isoformat()},
        )
    due: DueDate = compute_due(
        started_at, duration, calendar, zone, at=rule.at, roll_forward=rule.roll_forward
    )
    return PlannedDeadline(
        rule=str(duration),
        due_at=due.due_at,
        rests_on_estimate=due.rests_on_estimate,
        explanation=due.explanation.to_dict(),
    )


def plan_actions(
    rule: DeadlineRule,
    *,
    started_at: datetime,
    due_at: datetime,
    calendar: WorkingCalendar,
    zone: ZoneInfo,
) -> list[PlannedAction]:
    """Schedule the rule's reminders and escalation levels around ``due_at``.

    A reminder that would fire before the deadline started is left out.
    """
    planned: list[PlannedAction] = []
    for level, reminder in enumerate(rule.reminders, start=1):
        fire_at = shift(due_at, reminder.before, calendar, zone, backwards=True)
        if fire_at > started_at:
            planned.append(
                PlannedAction(ActionKind.REMINDER, level, fire_at, reminder.letter, None)
            )
    for level, escalation in enumerate(rule.escalation, start=1):
        fire_at = shift(due_at, escalation.after, calendar, zone) + _ONE_SECOND
        planned.append(
            PlannedAction(
                ActionKind.ESCALATION, level, fire_at, escalation.letter, escalation.event
            )
        )
    return planned


def remaining_unit(rule_text: str) -> TimeUnit:
    """Return the unit a paused deadline's remaining time is counted in."""
    if rule_text == DUE_FROM_RULE:
        return TimeUnit.HOURS
    return Duration.parse(rule_text).unit
