"""Recomputing a deadline from the dossier's history: start, pauses, resumptions, extensions.

The due instant of a deadline is a function of its history and of the calendar. Replaying the
history with the current calendar gives both the full explanation of a stored due date
(``explain``) and the new due date after an administrator changes a holiday.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from case_workflow.calendars import Holiday, WorkingCalendar
from case_workflow.deadlines import DueDate, compute_due, extend_due, remaining, resume
from case_workflow.definition.model import DeadlineRule
from case_workflow.durations import Duration
from case_workflow.errors import InvalidInput
from case_workflow.planning import DUE_FROM_RULE
from case_workflow.records import Deadline, Event
from case_workflow.states import CompiledWorkflow

if TYPE_CHECKING:
    from case_workflow.steps import StepContext

__all__ = ["Mark", "MarkKind", "deadline_marks", "explain_deadline", "replay_deadline"]


class MarkKind(StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    EXTEND = "extend"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Mark:
    """One moment of a deadline's life, read from the dossier's events."""

    kind: MarkKind
    at: datetime
    extra: Duration | None = None


def deadline_marks(
    workflow: CompiledWorkflow,
    name: str,
    state: str,
    started_at: datetime,
    history: Iterable[Event],
) -> list[Mark]:
    """Read the marks of deadline ``name``, started in ``state`` at ``started_at``, from events."""
    pausing = {
        state_name for state_name, spec in workflow.definition.states.items() if name in spec.pauses
    }
    events = list(history)
    # The deadline starts with the event entering ``state`` at ``started_at``; only the
    # events after it can pause, resume, extend or stop it.
    first = next(
        (
            index + 1
            for index, event in enumerate(events)
            if event.occurred_at == started_at and event.to_state == state
        ),
        next(
            (index for index, event in enumerate(events) if event.occurred_at > started_at),
            len(events),
        ),
    )
    marks = [Mark(MarkKind.START, started_at)]
    running = True
    for event in events[first:]:
        transition = workflow.transition(event.from_state or "", event.trigger)
        if transition is not None and transition.extends == name and running:
            extra = Duration.parse(str(event.payload.get("extension")))
            marks.append(Mark(MarkKind.EXTEND, event.occurred_at, extra))
            continue
        if event.from_state == event.to_state:
            continue
        if running and event.to_state in pausing:
            marks.append(Mark(MarkKind.PAUSE, event.occurred_at))
            running = False
        elif not running and event.to_state == state:
            marks.append(Mark(MarkKind.RESUME, event.occurred_at))
            running = True
        elif not running and event.to_state in pausing:
            continue
        else:
            marks.append(Mark(MarkKind.STOP, event.occurred_at))
            break
    return marks


def _merge_estimates(*groups: Sequence[Holiday]) -> tuple[Holiday, ...]:
    merged: dict[tuple[object, str], Holiday] = {}
    for group in groups:
        for holiday in group:
            merged[(holiday.day, holiday.name)] = holiday
    return tuple(sorted(merged.values(), key=lambda holiday: holiday.day))


def replay_deadline(
    rule: DeadlineRule,
    duration: Duration,
    marks: Sequence[Mark],
    calendar: WorkingCalendar,
    zone: ZoneInfo,
) -> DueDate:
    """Recompute a deadline from its marks, with an explanation that covers its whole life.

    Days counted before a pause stay in the explanation. The clock restarts at each
    resumption with what was left, counted the same way. Extensions move the due date.
    """
    first = marks[0]
    due = compute_due(
        first.at, duration, calendar, zone, at=rule.at, roll_forward=rule.roll_forward
    )
    origin = due.explanation
    steps = list(origin.steps)
    pauses = []
    extensions = []
    left: Duration | None = None
    paused_at: datetime | None = None
    for mark in marks[1:]:
        if mark.kind is MarkKind.PAUSE:
            left = remaining(due.due_at, mark.at, duration, calendar, zone)
            paused_at = mark.at
            pause_day = mark.at.astimezone(zone).date()
            steps = [step for step in steps if step.day <= pause_day]
        elif mark.kind is MarkKind.RESUME and left is not None:
            due = resume(
                mark.at,
                left,
                calendar,
                zone,
                at=rule.at,
                roll_forward=rule.roll_forward,
                paused_at=paused_at,
            )
            steps += due.explanation.steps
            pauses += list(due.explanation.pauses)
            left = None
        elif mark.kind is MarkKind.EXTEND and mark.extra is not None:
            before = len(due.explanation.steps)
            due = extend_due(due, mark.extra, calendar, zone)
            steps += due.explanation.steps[before:]
            extensions.append(due.explanation.extensions[-1])
        elif mark.kind is MarkKind.STOP:
            break
    explanation = dataclasses.replace(
        due.explanation,
        start=origin.start,
        start_local=origin.start_local,
        duration=duration,
        utc_offset_at_start=origin.utc_offset_at_start,
        steps=tuple(steps),
        pauses=tuple(pauses),
        extensions=tuple(extensions),
        estimated_holidays=_merge_estimates(
            origin.estimated_holidays, due.explanation.estimated_holidays
        ),
    )
    estimated = bool(explanation.estimated_holidays)
    return DueDate(due.due_at, explanation, due.rests_on_estimate or estimated)


_HEADINGS = {
    "en": {
        "title": "Deadline {name!r} ({status}), started in state {state!r}",
        "due_from": "Due instant given by the event that started it: {due}",
        "kept": (
            "Note: with the current calendar the due instant would be {computed}; the stored "
            "{stored} was kept because an action was already taken on it."
        ),
    },
    "fr": {
        "title": "Délai « {name} » ({status}), ouvert dans l'état « {state} »",
        "due_from": "Échéance fixée par l'événement qui l'a ouvert : {due}",
        "kept": (
            "Note : avec le calendrier actuel l'échéance serait {computed} ; l'échéance "
            "enregistrée {stored} est conservée car une action a déjà été prise."
        ),
    },
}


_STATUS_WORDS = {
    "fr": {
        "running": "en cours",
        "paused": "suspendu",
        "met": "respecté",
        "missed": "dépassé",
        "cancelled": "annulé",
    },
}


def explain_deadline(
    context: StepContext, deadline: Deadline, history: Sequence[Event], language: str = "en"
) -> str:
    """Return the text explaining one stored deadline, replayed from the dossier's history."""
    if language not in _HEADINGS:
        raise InvalidInput(
            f"unknown explanation language {language!r}; use one of: {', '.join(_HEADINGS)}"
        )
    headings = _HEADINGS[language]
    status = _STATUS_WORDS.get(language, {}).get(deadline.status.value, deadline.status.value)
    lines = [headings["title"].format(name=deadline.name, status=status, state=deadline.state)]
    rule = context.workflow.deadline_of(deadline.state)
    if rule is None or deadline.rule == DUE_FROM_RULE:
        lines.append(headings["due_from"].format(due=deadline.due_at.isoformat()))
        return "\n".join(lines)
    marks = deadline_marks(
        context.workflow, rule.name, deadline.state, deadline.started_at, history
    )
    due = replay_deadline(
        rule, Duration.parse(deadline.rule), marks, context.calendar, context.zone
    )
    lines.append(due.explanation.to_text(language))
    if due.due_at != deadline.due_at:
        lines.append(
            headings["kept"].format(
                computed=due.due_at.isoformat(), stored=deadline.due_at.isoformat()
            )
        )
    return "\n".join(lines)
