"""Pydantic models of a workflow definition file.

The model only checks the shape of each value; rules that relate several parts of a file
(known states, reachability, templates) live in :mod:`case_workflow.definition.checks`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from case_workflow.durations import Duration

__all__ = [
    "CalendarSpec",
    "DeadlineRule",
    "DueTime",
    "EscalationLevel",
    "HolidaySpec",
    "InstitutionSpec",
    "LetterSpec",
    "RegistrySpec",
    "Reminder",
    "RespondentSpec",
    "RoleSpec",
    "StateSpec",
    "TransitionSpec",
    "WorkflowDefinition",
]

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_-]*$")


def _parse_duration(value: object) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}; write it as text such as '60 calendar_days'")
    return Duration.parse(value)


DurationField = Annotated[
    Duration,
    BeforeValidator(_parse_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+\s+[a-z_]+\s*$",
            "description": "a whole number and a unit: calendar_days, working_days, "
            "working_hours or hours",
            "examples": ["60 calendar_days", "15 working_days"],
        }
    ),
]
OneOrManyStates = Annotated[
    list[str],
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
LocalizedText = dict[str, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DueTime(StrEnum):
    """Time of day at which a day-based deadline falls due."""

    END_OF_DAY = "end_of_day"
    SAME_TIME = "same_time"


class RegistrySpec(_Strict):
    """Numbering of an institution's outgoing mail (bureau d'ordre).

    ``pattern`` is a Python format string with the fields ``prefix``, ``year`` and ``seq``;
    the sequence restarts at 1 each year and has no gaps.
    """

    prefix: str
    pattern: str = "{prefix}/{year}/{seq:05d}"

    @field_validator("pattern")
    @classmethod
    def _pattern_uses_known_fields(cls, pattern: str) -> str:
        try:
            pattern.format(prefix="X", year=2024, seq=1)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(
                f"invalid registry pattern {pattern!r} ({error}); use the fields "
                "{prefix}, {year} and {seq}, for example '{prefix}/{year}/{seq:05d}'"
            ) from None
        if "{seq" not in pattern:
            raise ValueError(f"registry pattern {pattern!r} lacks {{seq}}; add it")
        return pattern


class InstitutionSpec(_Strict):
    """An institution taking part in the workflow."""

    name: LocalizedText
    place: LocalizedText = Field(default_factory=dict)
    address: LocalizedText = Field(default_factory=dict)
    signatory: LocalizedText = Field(default_factory=dict)
    registry: RegistrySpec | None = None


class RespondentSpec(_Strict):
    """An organisation that complaints are transmitted to (for example a regional subsidiary)."""

    name: LocalizedText
    institution: str
    region: str | None = None
    email: str | None = None


class RoleSpec(_Strict):
    """A role actors play, and the institution it belongs to."""

    institution: str
    description: str | None = None


class Reminder(_Strict):
    """A reminder sent some time before a deadline falls due."""

    before: DurationField
    letter: str | None = None


class EscalationLevel(_Strict):
    """One level of escalation after a deadline has passed.

    ``event`` names a transition fired by the system actor (the dossier changes state);
    without it the level only raises the dossier's escalation flag and sends the letter.
    """

    after: DurationField
    letter: str | None = None
    event: str | None = None


class DeadlineRule(_Strict):
    """A delay that starts when a dossier enters a state.

    The delay is either a rule (``within``) or an instant carried by the entering event's
    payload (``due_from`` names the field), as when a service desk sets each case's target.
    """

    name: str
    within: DurationField | None = None
    due_from: str | None = None
    urgent_within: DurationField | None = None
    at: DueTime = DueTime.END_OF_DAY
    roll_forward: bool = False
    reminders: list[Reminder] = Field(default_factory=list)
    escalation: list[EscalationLevel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way_to_fix_the_due_time(self) -> DeadlineRule:
        if (self.within is None) == (self.due_from is None):
            raise ValueError(
                f"deadline {self.name!r} needs exactly one of 'within' (a delay such as "
                "'60 calendar_days') or 'due_from' (a payload field holding the due instant)"
            )
        return self


class StateSpec(_Strict):
    """A state of the dossier."""

    initial: bool = False
    final: bool = False
    description: LocalizedText = Field(default_factory=dict)
    holder: str | None = None
    deadline: DeadlineRule | None = None
    pauses: list[str] = Field(default_factory=list)
    letters: list[str] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)


class TransitionSpec(_Strict):
    """An event that moves a dossier from one or more states to another.

    ``extends`` names a running deadline that the event extends by the duration given in the
    payload's ``extension`` field (an extension is recorded, unlike a pause).
    """

    event: str
    source: OneOrManyStates = Field(alias="from")
    dest: str = Field(alias="to")
    roles: list[str]
    letters: list[str] = Field(default_factory=list)
    requires: list[str] = Field(default_factory=list)
    guard: str | None = None
    extends: str | None = None
    description: str | None = None

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class LetterSpec(_Strict):
    """A formal letter: who sends it, who receives it, and its template."""

    template: str
    to: str
    sender: str = Field(alias="from")
    subject: LocalizedText
    attachments: list[str] = Field(default_factory=list)


class HolidaySpec(_Strict):
    """A non-working day declared in a workflow file."""

    date: str
    name: str
    kind: str = "holiday"


class CalendarSpec(_Strict):
    """A working calendar: a shipped one, one from the ``holidays`` package, or declared inline."""

    base: str | None = None
    country: str | None = None
    subdivision: str | None = None
    working_days: list[str] | None = None
    working_hours: str | None = None
    ramadan_hours: str | None = None
    holidays: list[HolidaySpec] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


class WorkflowDefinition(_Strict):
    """A whole workflow file."""

    workflow: str
    version: int = Field(ge=1)
    title: LocalizedText = Field(default_factory=dict)
    timezone: str
    calendar: str | CalendarSpec
    languages: list[str] = Field(min_length=1)
    institutions: dict[str, InstitutionSpec] = Field(default_factory=dict)
    respondents: dict[str, RespondentSpec] = Field(default_factory=dict)
    roles: dict[str, RoleSpec]
    system_role: str = "system"
    states: dict[str, StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(min_length=1)
    letters: dict[str, LetterSpec] = Field(default_factory=dict)

    @field_validator("workflow")
    @classmethod
    def _workflow_is_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(
                f"invalid workflow name {value!r}; use lower-case letters, digits, '-' and '_'"
            )
        return value

    @property
    def key(self) -> str:
        """``name@version``, the key that dossiers store."""
        return f"{self.workflow}@{self.version}"

    @property
    def initial_state(self) -> str:
        return next(name for name, spec in self.states.items() if spec.initial)

    def events_from(self, state: str) -> list[str]:
        """Return the events allowed in ``state``, in file order, without repeats."""
        events = [t.event for t in self.transitions if state in t.source]
        return list(dict.fromkeys(events))
