"""Working calendars: which days are working days, which hours count, and why.

A :class:`WorkingCalendar` combines a weekly pattern (Monday to Friday by default), fixed civil
holidays, Islamic holidays (observed first days where announced, estimates from the ``holidays``
package beyond them), exceptional days off and an administrator's changes. A holiday that falls on
a weekend gives no substitute day. During Ramadan the calendar's Ramadan hours replace the usual
working hours, when the calendar defines them.

Calendars come from :func:`load_calendar`: a shipped name (``ma-public-administration``,
``ma-private-sector``), ``holidays:CC`` or ``holidays:CC-SUB`` for any country the ``holidays``
package supports, or a :class:`~case_workflow.definition.model.CalendarSpec` from a workflow file.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from enum import StrEnum
from typing import Literal

from case_workflow.calendar_rules import (
    CalendarRules,
    DatedRule,
    named_rules,
    package_label,
    spec_rules,
)
from case_workflow.definition.model import CalendarSpec
from case_workflow.errors import InvalidInput
from case_workflow.islamic import (
    EstimatedHoliday,
    estimated_first_days,
    estimated_ramadan,
    package_holidays,
)
from case_workflow.zones import load_zone

__all__ = [
    "Holiday",
    "HolidayChange",
    "HolidayStatus",
    "WorkingCalendar",
    "load_calendar",
    "load_zone",
]

logger = logging.getLogger(__name__)

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# An estimate is matched to an observed or confirmed first day this many days away at most.
_MATCH_DAYS = 7


class HolidayStatus(StrEnum):
    """Certainty of a holiday's date, and who set it."""

    FIXED = "fixed"  # same date every year, or computed by a fixed rule
    OBSERVED = "observed"  # announced after the moon sighting, or confirmed by an administrator
    ESTIMATED = "estimated"  # computed from a lunar calendar; may move by a day or two
    EXCEPTIONAL = "exceptional"  # a day off decided for one year only
    DECLARED = "declared"  # added by a workflow file or an administrator


# Order in which holidays on the same day are reported: the most certain first.
_STATUS_RANK = {
    HolidayStatus.EXCEPTIONAL: 0,
    HolidayStatus.DECLARED: 0,
    HolidayStatus.OBSERVED: 1,
    HolidayStatus.FIXED: 1,
    HolidayStatus.ESTIMATED: 2,
}


@dataclass(frozen=True, slots=True)
class Holiday:
    """A non-working day other than a weekend, with the status and source of its date."""

    day: date
    name: str
    status: HolidayStatus
    source: str

    def describe(self) -> str:
        """Return ``"Eid al-Adha (observed)"``: the name and the status of the date."""
        return f"{self.name} ({self.status.value})"


@dataclass(frozen=True, slots=True)
class HolidayChange:
    """An administrator's change to a calendar.

    ``add`` makes ``day`` non-working (``kind`` ``holiday`` gives a declared holiday, ``day_off``
    an exceptional day off). ``confirm`` marks the date as observed: with the name of an Islamic
    holiday it moves that holiday's nearby estimate (up to 7 days away) to ``day`` as its first
    day, without a name it marks the holiday already on ``day``. ``remove`` makes ``day`` a
    working day again unless it is a weekend.
    """

    action: Literal["add", "confirm", "remove"]
    day: date
    name: str = ""
    kind: Literal["holiday", "day_off"] = "holiday"
    source: str = "administrator"
    note: str = ""

    def __post_init__(self) -> None:
        if self.action not in ("add", "confirm", "remove"):
            raise InvalidInput(
                f"invalid calendar change action {self.action!r}; use add, confirm or remove"
            )
        if self.kind not in ("holiday", "day_off"):
            raise InvalidInput(f"invalid holiday kind {self.kind!r}; use holiday or day_off")
        if not isinstance(self.day, date):
            raise InvalidInput(f"invalid day {self.day!r} in a calendar change; pass a date")


@dataclass(frozen=True, slots=True)
class _Block:
    """Consecutive days of one Islamic holiday, from its first day."""

    key: str
    first_day: date
    status: HolidayStatus
    source: str


class WorkingCalendar:
    """Working days and hours of one calendar; immutable, so it is safe to share and cache."""

    def __init__(self, rules: CalendarRules) -> None:
        self._rules = rules
        self._years: dict[int, dict[date, tuple[Holiday, ...]]] = {}
        self._blocks: dict[int, tuple[_Block, ...]] = {}

    @property
    def name(self) -> str:
        return self._rules.name

    @property
    def rules(self) -> CalendarRules:
        return self._rules

    def __repr__(self) -> str:
        return f"WorkingCalendar({self.name!r})"

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self._rules.working_weekdays and not self._year(day.year).get(day)

    def is_weekend(self, day: date) -> bool:
        """Return whether ``day`` is a weekly day off (Saturday and Sunday by default)."""
        return day.weekday() not in self._rules.working_weekdays

    def non_working_reason(self, day: date) -> str | None:
        """Return why ``day`` is not a working day, or ``None`` for a working day.

        For example ``"weekend (Saturday)"``, ``"Eid al-Adha (observed)"`` or, for a holiday on
        a weekend, ``"Eid al-Adha (observed), weekend (Saturday)"``.
        """
        reasons = [holiday.describe() for holiday in self._year(day.year).get(day, ())]
        if day.weekday() not in self._rules.working_weekdays:
            reasons.append(f"weekend ({_WEEKDAY_NAMES[day.weekday()]})")
        return ", ".join(reasons) if reasons else None

    def holiday(self, day: date) -> Holiday | None:
        """Return the holiday on ``day`` (the most certain one when several fall together)."""
        found = self._year(day.year).get(day, ())
        return found[0] if found else None

    def holidays_on(self, day: date) -> tuple[Holiday, ...]:
        """Return every holiday on ``day``, the most certain first."""
        return self._year(day.year).get(day, ())

    def holidays_between(self, start: date, end: date) -> list[Holiday]:
        """Return the holidays from ``start`` to ``end``, both included, in date order."""
        found: list[Holiday] = []
        for year in range(start.year, end.year + 1):
            for day, holidays in sorted(self._year(year).items()):
                if start <= day <= end:
                    found.extend(holidays)
        return found

    def is_ramadan(self, day: date) -> bool:
        """Return whether ``day`` falls in Ramadan (observed first days where known)."""
        return any(first <= day <= last for first, last in self._ramadan_periods(day.year))

    def working_hours(self, day: date) -> list[tuple[time, time]]:
        """Return the working-hour windows of ``day``; ``[]`` on a non-working day."""
        if not self.is_working_day(day):
            return []
        if self._rules.ramadan_hours is not None and self.is_ramadan(day):
            return list(self._rules.ramadan_hours)
        return list(self._rules.working_hours)

    def with_changes(self, changes: Sequence[HolidayChange]) -> WorkingCalendar:
        """Return a new calendar with ``changes`` applied in order; this one is unchanged.

        Raise :class:`InvalidInput` for a change that matches nothing: removing or confirming
        a day that is no holiday.
        """
        calendar = self
        for change in changes:
            calendar = WorkingCalendar(calendar._apply(change))
        return calendar

    def _apply(self, change: HolidayChange) -> CalendarRules:
        rules = self._rules
        day = change.day
        if change.action == "add":
            status = "day_off" if change.kind == "day_off" else "holiday"
            default = "Exceptional day off" if status == "day_off" else "Declared holiday"
            entry = DatedRule(day, change.name or default, change.source, status)
            return dataclasses.replace(
                rules, declared=(*rules.declared, entry), removed=rules.removed - {day}
            )
        if change.action == "remove":
            if self.holiday(day) is None:
                raise InvalidInput(
                    f"invalid removal: {day.isoformat()} is not a holiday in calendar "
                    f"{self.name!r}; holidays nearby: {self._nearby(day)}"
                )
            return dataclasses.replace(
                rules,
                declared=tuple(entry for entry in rules.declared if entry.day != day),
                removed=rules.removed | {day},
            )
        key = self._islamic_key(change.name)
        if key is not None:
            others = tuple(
                entry
                for entry in rules.observed.get(key, ())
                if abs((entry.day - day).days) > _MATCH_DAYS
            )
            observed = dict(rules.observed)
            observed[key] = (*others, DatedRule(day, rules.islamic[key].name, change.source))
            span = {day + timedelta(days=offset) for offset in range(rules.islamic[key].days)}
            return dataclasses.replace(rules, observed=observed, removed=rules.removed - span)
        if self.holiday(day) is None:
            names = ", ".join(rule.name for rule in rules.islamic.values()) or "none"
            raise InvalidInput(
                f"invalid confirmation: {day.isoformat()} is not a holiday in calendar "
                f"{self.name!r}, and {change.name!r} is not one of its Islamic holidays "
                f"({names}); holidays nearby: {self._nearby(day)}"
            )
        return dataclasses.replace(rules, confirmed=rules.confirmed | {day})

    def _nearby(self, day: date) -> str:
        window = timedelta(days=_MATCH_DAYS)
        found = self.holidays_between(day - window, day + window)
        return ", ".join(f"{h.day.isoformat()} {h.describe()}" for h in found) or "none"

    def _islamic_key(self, name: str) -> str | None:
        target = _normalise(name)
        if not target:
            return None
        for key, rule in self._rules.islamic.items():
            if target in (_normalise(key), _normalise(rule.name)):
                return key
        return None

    def _year(self, year: int) -> dict[date, tuple[Holiday, ...]]:
        cached = self._years.get(year)
        if cached is None:
            cached = self._build_year(year)
            self._years[year] = cached
        return cached

    def _build_year(self, year: int) -> dict[date, tuple[Holiday, ...]]:
        rules = self._rules
        found: list[Holiday] = []
        for rule in rules.fixed:
            if (rule.since or year) <= year <= (rule.until or year):
                found.append(
                    Holiday(
                        date(year, rule.month, rule.day),
                        rule.name,
                        HolidayStatus.FIXED,
                        rules.source,
                    )
                )
        if rules.package_country is not None:
            label = package_label(rules.package_country, rules.package_subdivision)
            for entry in package_holidays(rules.package_country, rules.package_subdivision, year):
                status = HolidayStatus.ESTIMATED if entry.estimated else HolidayStatus.FIXED
                found.append(Holiday(entry.day, entry.name, status, label))
        for block in self._blocks_near(year):
            islamic = rules.islamic[block.key]
            for offset in range(islamic.days):
                day = block.first_day + timedelta(days=offset)
                if day.year == year:
                    found.append(Holiday(day, islamic.name, block.status, block.source))
        for dated in (*rules.exceptional, *rules.declared):
            if dated.day.year == year:
                is_day_off = dated.kind == "day_off"
                kind = HolidayStatus.EXCEPTIONAL if is_day_off else HolidayStatus.DECLARED
                found.append(Holiday(dated.day, dated.name, kind, dated.source))

        by_day: dict[date, list[Holiday]] = {}
        for candidate in found:
            if candidate.day in rules.removed:
                continue
            holiday = candidate
            if holiday.day in rules.confirmed and holiday.status is HolidayStatus.ESTIMATED:
                holiday = dataclasses.replace(
                    holiday, status=HolidayStatus.OBSERVED, source="administrator confirmation"
                )
            same_day = by_day.setdefault(holiday.day, [])
            if all(other.name != holiday.name for other in same_day):
                same_day.append(holiday)
        return {
            day: tuple(sorted(holidays, key=lambda h: _STATUS_RANK[h.status]))
            for day, holidays in by_day.items()
        }

    def _blocks_near(self, year: int) -> tuple[_Block, ...]:
        """Return the Islamic holiday blocks whose first day is in ``year - 1`` or ``year``."""
        return tuple(
            block for block in self._blocks_around(year) if block.first_day.year in (year - 1, year)
        )

    def _blocks_around(self, year: int) -> tuple[_Block, ...]:
        """Return the Islamic holiday blocks estimated for ``year - 1`` to ``year + 1``.

        Each estimate gives way to the nearest observed first day of the same holiday within
        7 days. Observed days that match no estimate are kept as they are.
        """
        cached = self._blocks.get(year)
        if cached is not None:
            return cached
        rules = self._rules
        blocks: list[_Block] = []
        matched: set[tuple[str, date]] = set()
        estimates: list[tuple[str, EstimatedHoliday]] = []
        if rules.estimates is not None and rules.islamic:
            for near_year in (year - 1, year, year + 1):
                estimates.extend(estimated_first_days(rules.estimates, near_year))
        label = package_label(rules.estimates or "", None)
        for key, estimate in estimates:
            if key not in rules.islamic:
                continue
            candidates = [
                entry
                for entry in rules.observed.get(key, ())
                if abs((entry.day - estimate.day).days) <= _MATCH_DAYS
            ]
            if candidates:
                best = min(candidates, key=lambda entry: abs((entry.day - estimate.day).days))
                matched.add((key, best.day))
                blocks.append(_Block(key, best.day, HolidayStatus.OBSERVED, best.source))
            else:
                status = HolidayStatus.ESTIMATED if estimate.estimated else HolidayStatus.FIXED
                blocks.append(_Block(key, estimate.day, status, f"{label} estimate"))
        for key, entries in rules.observed.items():
            for entry in entries:
                near = year - 1 <= entry.day.year <= year + 1
                if near and (key, entry.day) not in matched and key in rules.islamic:
                    blocks.append(_Block(key, entry.day, HolidayStatus.OBSERVED, entry.source))
        result = tuple(sorted(set(blocks), key=lambda block: block.first_day))
        self._blocks[year] = result
        return result

    def _ramadan_periods(self, year: int) -> list[tuple[date, date]]:
        """Return ``(first day, last day)`` of each Ramadan that overlaps ``year``.

        The first day is the observed one where the calendar lists it, else the Umm al-Qura
        estimate. The last day is the eve of this calendar's Eid al-Fitr, or of the Umm al-Qura
        1 Shawwal when the calendar has no Eid al-Fitr.
        """
        periods: list[tuple[date, date]] = []
        window = timedelta(days=_MATCH_DAYS)
        fitr_days = [
            block.first_day
            for near_year in (year - 1, year, year + 1)
            for block in self._blocks_around(near_year)
            if block.key == "eid_al_fitr"
        ]
        for estimated_first, estimated_shawwal in estimated_ramadan(year):
            first = min(
                (d for d in self._rules.ramadan_first_days if abs(d - estimated_first) <= window),
                key=lambda d: abs(d - estimated_first),
                default=estimated_first,
            )
            shawwal = min(
                (d for d in fitr_days if abs(d - estimated_shawwal) <= window),
                key=lambda d: abs(d - estimated_shawwal),
                default=estimated_shawwal,
            )
            periods.append((first, shawwal - timedelta(days=1)))
        return periods


def _normalise(text: str) -> str:
    """Reduce a name to lower-case letters and digits: "Aïd al-Fitr" matches "eid_al_fitr"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    letters = "".join(char for char in decomposed if not unicodedata.combining(char))
    return re.sub(r"[^a-z0-9]", "", letters.replace("aid", "eid"))


def load_calendar(
    spec: str | CalendarSpec, *, changes: Sequence[HolidayChange] = ()
) -> WorkingCalendar:
    """Build the working calendar named or described by ``spec``, with ``changes`` applied.

    ``spec`` is a shipped calendar name, ``holidays:COUNTRY[-SUBDIVISION]``, or a
    :class:`CalendarSpec`. Raise :class:`InvalidInput` for an unknown name or a bad setting.
    """
    if isinstance(spec, CalendarSpec):
        rules = spec_rules(spec)
    elif isinstance(spec, str):
        rules = named_rules(spec.strip())
    else:
        raise InvalidInput(f"invalid calendar {spec!r}; pass a calendar name or a CalendarSpec")
    calendar = WorkingCalendar(rules)
    return calendar.with_changes(changes) if changes else calendar
