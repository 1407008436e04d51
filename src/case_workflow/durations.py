"""Durations as written in workflow files, such as ``60 calendar_days`` or ``8 working_hours``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Duration", "TimeUnit"]


class TimeUnit(StrEnum):
    """Unit in which a duration is counted."""

    CALENDAR_DAYS = "calendar_days"
    WORKING_DAYS = "working_days"
    WORKING_HOURS = "working_hours"
    HOURS = "hours"


_ALIASES = {
    "day": TimeUnit.CALENDAR_DAYS,
    "days": TimeUnit.CALENDAR_DAYS,
    "calendar_day": TimeUnit.CALENDAR_DAYS,
    "calendar_days": TimeUnit.CALENDAR_DAYS,
    "working_day": TimeUnit.WORKING_DAYS,
    "working_days": TimeUnit.WORKING_DAYS,
    "working_hour": TimeUnit.WORKING_HOURS,
    "working_hours": TimeUnit.WORKING_HOURS,
    "hour": TimeUnit.HOURS,
    "hours": TimeUnit.HOURS,
}

_PATTERN = re.compile(r"^\s*(\d+)\s+([a-z_]+)\s*$")


@dataclass(frozen=True, slots=True)
class Duration:
    """A whole number of calendar days, working days, working hours or clock hours."""

    amount: int
    unit: TimeUnit

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``"N unit"``; raise ``ValueError`` naming the text and the accepted units."""
        match = _PATTERN.match(text)
        unit = _ALIASES.get(match.group(2)) if match else None
        if match is None or unit is None:
            raise ValueError(
                f"invalid duration {text!r}; write a whole number and a unit, "
                f"for example '60 calendar_days', with unit one of: {', '.join(sorted(_ALIASES))}"
            )
        return cls(int(match.group(1)), unit)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}"
