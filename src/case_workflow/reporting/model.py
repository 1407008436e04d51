"""Value types of an escalation report, its age buckets, and its JSON-safe dictionary form.

A report is a frozen snapshot: counts keyed by state, respondent, region and escalation level,
age buckets, answer-time statistics, monthly rows and the top of the overdue list. It keeps no
connection and no per-dossier data beyond that list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from case_workflow.errors import InvalidInput

__all__ = [
    "AGING_BUCKETS",
    "OVERDUE_BUCKETS",
    "UNASSIGNED",
    "AgeBucket",
    "EscalatedRow",
    "EscalationReport",
    "MonthRow",
    "ReportFilter",
]

# Key of the dossiers whose respondent or region column is empty.
UNASSIGNED = ""


@dataclass(frozen=True, slots=True)
class AgeBucket:
    """A range of whole days, ``low`` to ``high`` inclusive; ``high`` None means no upper end."""

    low: int
    high: int | None

    @property
    def label(self) -> str:
        return f"{self.low}+" if self.high is None else f"{self.low}-{self.high}"


# Days since filing, for open dossiers.
AGING_BUCKETS = (
    AgeBucket(0, 30),
    AgeBucket(31, 60),
    AgeBucket(61, 90),
    AgeBucket(91, 180),
    AgeBucket(181, None),
)

# Days past the due date, for overdue dossiers.
OVERDUE_BUCKETS = (
    AgeBucket(0, 15),
    AgeBucket(16, 30),
    AgeBucket(31, 60),
    AgeBucket(61, 90),
    AgeBucket(91, 180),
    AgeBucket(181, None),
)


@dataclass(frozen=True)
class ReportFilter:
    """Scope of the dossiers a report covers, where None means no restriction.

    ``filed_from`` and ``filed_to`` are local dates in the report's time zone, both inclusive.
    """

    respondent: str | None = None
    region: str | None = None
    workflow: str | None = None
    filed_from: date | None = None
    filed_to: date | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "respondent": self.respondent,
            "region": self.region,
            "workflow": self.workflow,
            "filed_from": self.filed_from.isoformat() if self.filed_from else None,
            "filed_to": self.filed_to.isoformat() if self.filed_to else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReportFilter:
        filed_from = data.get("filed_from")
        filed_to = data.get("filed_to")
        return cls(
            respondent=data.get("respondent"),
            region=data.get("region"),
            workflow=data.get("workflow"),
            filed_from=date.fromisoformat(filed_from) if filed_from else None,
            filed_to=date.fromisoformat(filed_to) if filed_to else None,
        )


@dataclass(frozen=True, slots=True)
class MonthRow:
    """Counts for one local calendar month (``YYYY-MM``), cut at the report's ``as_of``.

    ``answered`` counts deadlines closed met or missed in the month, ``overdue`` the dossiers
    overdue at the first instant of the next month (at ``as_of`` for the month containing it),
    ``escalated`` the escalation actions done in the month.
    """

    month: str
    filed: int
    answered: int
    overdue: int
    escalated: int


@dataclass(frozen=True, slots=True)
class EscalatedRow:
    """One overdue dossier as of the report's ``as_of``.

    ``state`` is the dossier's state at ``as_of``, ``level`` the highest escalation level done by
    then (0 when none), ``due_at`` the earliest due time among its overdue deadlines, and
    ``days_overdue`` the local calendar days from that due date to the ``as_of`` date.
    """

    reference: str
    respondent: str | None
    region: str | None
    state: str
    level: int
    due_at: datetime
    days_overdue: int

    def to_dict(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "respondent": self.respondent,
            "region": self.region,
            "state": self.state,
            "level": self.level,
            "due_at": self.due_at.isoformat(),
            "days_overdue": self.days_overdue,
        }


@dataclass(frozen=True)
class EscalationReport:
    """Escalation figures as of one instant, computed from the dossiers' history.

    Overdue counts are dossiers (a dossier with two overdue deadlines counts once), and answer
    statistics are deadlines closed met or missed by ``as_of``. Answer days are the elapsed time
    from the deadline's start to its close divided by 24 hours. Answer working days are the
    counts of working days stored on the deadlines when they closed. Deadlines closed before
    schema revision 0003 have no count and are left out of those two figures. ``escalated``
    lists the overdue dossiers at every escalation level, 0 included, most overdue first, and
    ``escalated_total`` counts them all.
    """

    as_of: datetime
    generated_for: ReportFilter
    timezone: str
    open_by_state: dict[str, int]
    overdue_by_respondent: dict[str, int]
    overdue_by_region: dict[str, int]
    overdue_by_level: dict[int, int]
    aging: list[tuple[str, int]]
    overdue_aging: list[tuple[str, int]]
    answered_on_time: int
    answered_late: int
    on_time_rate: float | None
    median_answer_days: float | None
    p90_answer_days: float | None
    median_answer_working_days: float | None
    p90_answer_working_days: float | None
    monthly: list[MonthRow]
    escalated: list[EscalatedRow]
    escalated_total: int
    estimated_holiday_deadlines: int
    deadline_name: str | None = field(default=None)

    @property
    def open_total(self) -> int:
        return sum(self.open_by_state.values())

    @property
    def overdue_total(self) -> int:
        return sum(self.overdue_by_level.values())

    def to_dict(self) -> dict[str, object]:
        """Return the report as plain JSON types: ISO 8601 instants, string keys, lists."""
        return {
            "as_of": self.as_of.isoformat(),
            "timezone": self.timezone,
            "deadline_name": self.deadline_name,
            "generated_for": self.generated_for.to_dict(),
            "open_by_state": dict(self.open_by_state),
            "overdue_by_respondent": dict(self.overdue_by_respondent),
            "overdue_by_region": dict(self.overdue_by_region),
            "overdue_by_level": {
                str(level): count for level, count in self.overdue_by_level.items()
            },
            "aging": [{"bucket": label, "count": count} for label, count in self.aging],
            "overdue_aging": [
                {"bucket": label, "count": count} for label, count in self.overdue_aging
            ],
            "answered_on_time": self.answered_on_time,
            "answered_late": self.answered_late,
            "on_time_rate": self.on_time_rate,
            "median_answer_days": self.median_answer_days,
            "p90_answer_days": self.p90_answer_days,
            "median_answer_working_days": self.median_answer_working_days,
            "p90_answer_working_days": self.p90_answer_working_days,
            "monthly": [
                {
                    "month": row.month,
                    "filed": row.filed,
                    "answered": row.answered,
                    "overdue": row.overdue,
                    "escalated": row.escalated,
                }
                for row in self.monthly
            ],
            "escalated": [row.to_dict() for row in self.escalated],
            "escalated_total": self.escalated_total,
            "estimated_holiday_deadlines": self.estimated_holiday_deadlines,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationReport:
        """Rebuild a report from :meth:`to_dict` output (for example a parsed JSON report)."""
        try:
            return cls(
                as_of=datetime.fromisoformat(data["as_of"]),
                generated_for=ReportFilter.from_dict(data["generated_for"]),
                timezone=str(data["timezone"]),
                deadline_name=data.get("deadline_name"),
                open_by_state=_counts(data["open_by_state"]),
                overdue_by_respondent=_counts(data["overdue_by_respondent"]),
                overdue_by_region=_counts(data["overdue_by_region"]),
                overdue_by_level={
                    int(level): int(count) for level, count in data["overdue_by_level"].items()
                },
                aging=[(str(item["bucket"]), int(item["count"])) for item in data["aging"]],
                overdue_aging=[
                    (str(item["bucket"]), int(item["count"])) for item in data["overdue_aging"]
                ],
                answered_on_time=int(data["answered_on_time"]),
                answered_late=int(data["answered_late"]),
                on_time_rate=_optional_float(data["on_time_rate"]),
                median_answer_days=_optional_float(data["median_answer_days"]),
                p90_answer_days=_optional_float(data["p90_answer_days"]),
                # Reports written before these figures existed have no such keys.
                median_answer_working_days=_optional_float(data.get("median_answer_working_days")),
                p90_answer_working_days=_optional_float(data.get("p90_answer_working_days")),
                monthly=[MonthRow(**item) for item in data["monthly"]],
                escalated=[
                    EscalatedRow(**{**item, "due_at": datetime.fromisoformat(item["due_at"])})
                    for item in data["escalated"]
                ],
                escalated_total=int(data["escalated_total"]),
                estimated_holiday_deadlines=int(data["estimated_holiday_deadlines"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidInput(
                f"invalid escalation report data ({type(error).__name__}: {error}); "
                "pass the output of EscalationReport.to_dict() or render_json()"
            ) from error


def _counts(data: Mapping[str, Any]) -> dict[str, int]:
    return {str(key): int(value) for key, value in data.items()}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
