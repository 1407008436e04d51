"""Value types that the engine returns: snapshots of rows, never live objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ActionKind",
    "ActionStatus",
    "Complainant",
    "Deadline",
    "DeadlineStatus",
    "Dossier",
    "Event",
    "Letter",
    "SweepResult",
    "VerifyResult",
]


class DeadlineStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"


class ActionKind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"


class ActionStatus(StrEnum):
    PENDING = "pending"
    SUSPENDED = "suspended"
    DONE = "done"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Complainant:
    """The person or organisation who filed the complaint (personal data: never logged)."""

    name: str
    address: str = ""
    email: str = ""
    language: str = "fr"

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "email": self.email,
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Complainant:
        return cls(
            name=str(data.get("name", "")),
            address=str(data.get("address", "")),
            email=str(data.get("email", "")),
            language=str(data.get("language", "fr")),
        )


@dataclass(frozen=True, slots=True)
class Dossier:
    """A snapshot of a dossier row."""

    reference: str
    workflow: str
    workflow_version: int
    state: str
    version: int
    respondent: str | None
    region: str | None
    urgent: bool
    escalation_level: int
    outcome: str | None
    subject: str
    external_reference: str | None
    complainant: Complainant
    data: dict[str, Any]
    filed_at: datetime
    updated_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a dossier's append-only history."""

    seq: int
    trigger: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    institution: str
    occurred_at: datetime
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Deadline:
    """A deadline row with its scheduled actions' fire times."""

    name: str
    state: str
    status: DeadlineStatus
    rule: str
    started_at: datetime
    due_at: datetime
    paused_at: datetime | None
    remaining: str | None
    closed_at: datetime | None
    rests_on_estimate: bool
    explanation: dict[str, Any]
    actions: tuple[tuple[ActionKind, int, datetime, ActionStatus], ...] = ()


@dataclass(frozen=True, slots=True)
class Letter:
    """A letter stored with its dossier and the event that caused it."""

    letter: str
    language: str
    registry_number: str
    sender: str
    recipient: str
    issued_at: datetime
    subject: str
    template: str
    html: str
    sha256: str
    event_seq: int
    context: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass(frozen=True, slots=True)
class SweepResult:
    """Counts of what one sweep did."""

    now: datetime
    reminders: int = 0
    escalations: int = 0
    skipped: int = 0
    retried: int = 0
    letters: int = 0
    failed: int = 0

    @property
    def actions(self) -> int:
        return self.reminders + self.escalations + self.skipped


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of recomputing event hash chains."""

    dossiers: int
    events: int
    broken: tuple[tuple[str, int, str], ...]

    @property
    def ok(self) -> bool:
        return not self.broken
