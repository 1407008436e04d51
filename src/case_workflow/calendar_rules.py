"""The rules behind a working calendar, read from shipped YAML files or a workflow's settings.

A :class:`CalendarRules` value lists what makes a day non-working (weekdays off, fixed civil
holidays, Islamic holidays with their observed first days, exceptional days off, declared and
removed days) and the working hours. :mod:`case_workflow.calendars` turns it into dated holidays.
Shipped calendars live in ``case_workflow/data/calendars/NAME.yaml``; a file may ``extends``
another and replace its top-level keys.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import importlib.resources.abc
import re
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import yaml

from case_workflow.definition.model import CalendarSpec
from case_workflow.errors import InvalidInput
from case_workflow.islamic import ISLAMIC_HOLIDAY_KEYS, holidays_version, package_holidays

__all__ = [
    "DEFAULT_WORKING_HOURS",
    "CalendarRules",
    "DatedRule",
    "FixedRule",
    "IslamicRule",
    "Window",
    "load_shipped_rules",
    "named_rules",
    "package_label",
    "parse_date",
    "parse_hours",
    "parse_weekdays",
    "shipped_calendar_names",
    "spec_rules",
]

Window = tuple[time, time]

DEFAULT_WORKING_HOURS = "08:30-16:30"
_PACKAGE_PREFIX = "holidays:"
_PACKAGE_NAME = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z0-9]+))?$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_FILE_KEYS = {
    "name",
    "title",
    "extends",
    "working_days",
    "working_hours",
    "ramadan_hours",
    "estimates",
    "fixed",
    "islamic",
    "observed",
    "ramadan_first_days",
    "exceptional",
}


@dataclass(frozen=True, slots=True)
class FixedRule:
    """A holiday on the same month and day every year from ``since`` to ``until``."""

    month: int
    day: int
    name: str
    since: int | None = None
    until: int | None = None


@dataclass(frozen=True, slots=True)
class IslamicRule:
    """An Islamic holiday and the number of consecutive days off it gives."""

    key: str
    name: str
    days: int


@dataclass(frozen=True, slots=True)
class DatedRule:
    """One dated day off: exceptional, declared, or an observed first day of a holiday."""

    day: date
    name: str
    source: str
    kind: str = "holiday"


@dataclass(frozen=True)
class CalendarRules:
    """Everything needed to tell working days and hours apart; never mutated after creation."""

    name: str
    source: str
    working_weekdays: frozenset[int] = frozenset(range(5))
    working_hours: tuple[Window, ...] = ((time(8, 30), time(16, 30)),)
    ramadan_hours: tuple[Window, ...] | None = None
    fixed: tuple[FixedRule, ...] = ()
    islamic: dict[str, IslamicRule] = field(default_factory=dict)
    observed: dict[str, tuple[DatedRule, ...]] = field(default_factory=dict)
    ramadan_first_days: tuple[date, ...] = ()
    estimates: str | None = None
    package_country: str | None = None
    package_subdivision: str | None = None
    exceptional: tuple[DatedRule, ...] = ()
    declared: tuple[DatedRule, ...] = ()
    removed: frozenset[date] = frozenset()
    confirmed: frozenset[date] = frozenset()


def parse_date(value: object, where: str) -> date:
    """Parse an ISO date (``2024-06-17``) or pass a ``date`` through."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(
            f"invalid date {value!r} in {where}; write it as YYYY-MM-DD, for example 2024-06-17"
        ) from None


def parse_weekdays(names: list[str], where: str) -> frozenset[int]:
    """Parse weekday names (``monday`` or ``mon``, any case) into ``date.weekday()`` numbers."""
    numbers: set[int] = set()
    for name in names:
        text = str(name).strip().lower()
        matches = [
            index for index, day in enumerate(_WEEKDAYS) if len(text) >= 3 and day.startswith(text)
        ]
        if len(matches) != 1:
            raise InvalidInput(
                f"invalid weekday {name!r} in {where}; use one of: {', '.join(_WEEKDAYS)}"
            )
        numbers.add(matches[0])
    if not numbers:
        raise InvalidInput(
            f"no working days in {where}; list at least one, for example "
            "[monday, tuesday, wednesday, thursday, friday]"
        )
    return frozenset(numbers)


def parse_hours(text: str, where: str) -> tuple[Window, ...]:
    """Parse ``"08:30-16:30"`` or ``"08:30-12:00, 14:00-18:00"`` into ordered windows."""
    windows: list[Window] = []
    for part in str(text).split(","):
        match = _HOURS.match(part)
        try:
            if match is None:
                raise ValueError(part)
            hour1, minute1, hour2, minute2 = (int(group) for group in match.groups())
            window = (time(hour1, minute1), time(hour2, minute2))
        except ValueError:
            raise InvalidInput(
                f"invalid working hours {text!r} in {where}; write HH:MM-HH:MM windows separated "
                "by commas, for example '08:30-16:30' or '08:30-12:00, 14:00-18:00'"
            ) from None
        if window[0] >= window[1] or (windows and window[0] < windows[-1][1]):
            raise InvalidInput(
                f"invalid working hours {text!r} in {where}: each window must end after it "
                "starts, and windows must be in order without overlapping"
            )
        windows.append(window)
    return tuple(windows)


def _calendar_folder() -> importlib.resources.abc.Traversable:
    return importlib.resources.files("case_workflow").joinpath("data").joinpath("calendars")


def shipped_calendar_names() -> list[str]:
    """Return the names of the calendars shipped in ``case_workflow/data/calendars``."""
    folder = _calendar_folder()
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def _read_file(name: str) -> dict[str, Any]:
    resource = _calendar_folder().joinpath(f"{name}.yaml")
    if not resource.is_file():
        raise InvalidInput(
            f"unknown calendar {name!r}; shipped calendars: {', '.join(shipped_calendar_names())}"
        )
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise InvalidInput(f"calendar file {name}.yaml must contain a mapping")
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise InvalidInput(
            f"unknown keys {sorted(unknown)} in calendar file {name}.yaml; "
            f"allowed keys: {', '.join(sorted(_FILE_KEYS))}"
        )
    parent = data.get("extends")
    if parent is None:
        return data
    merged = dict(_read_file(str(parent)))
    merged.update(data)
    del merged["extends"]
    return merged


def _defining_file(name: str, key: str) -> str:
    """Return the calendar file, ``name`` or one it extends, that sets ``key``."""
    data = yaml.safe_load(_calendar_folder().joinpath(f"{name}.yaml").read_text(encoding="utf-8"))
    parent = data.get("extends")
    if key in data or parent is None:
        return name
    return _defining_file(str(parent), key)


@functools.cache
def load_shipped_rules(name: str) -> CalendarRules:
    """Read the shipped calendar ``name``; raise :class:`InvalidInput` if there is none."""
    data = _read_file(name)
    where = f"calendar file {name}.yaml"
    source = f"{name}.yaml"
    fixed = tuple(
        FixedRule(
            month=int(str(entry["date"]).split("-")[0]),
            day=int(str(entry["date"]).split("-")[1]),
            name=str(entry["name"]),
            since=entry.get("since"),
            until=entry.get("until"),
        )
        for entry in data.get("fixed", [])
    )
    islamic: dict[str, IslamicRule] = {}
    for key, entry in data.get("islamic", {}).items():
        if key not in ISLAMIC_HOLIDAY_KEYS:
            raise InvalidInput(
                f"unknown Islamic holiday {key!r} in {where}; "
                f"use one of: {', '.join(ISLAMIC_HOLIDAY_KEYS)}"
            )
        islamic[key] = IslamicRule(key, str(entry["name"]), int(entry["days"]))
    observed_source = f"{_defining_file(name, 'observed')}.yaml observed dates"
    observed = {
        key: tuple(
            DatedRule(parse_date(day, where), islamic[key].name, observed_source) for day in days
        )
        for key, days in data.get("observed", {}).items()
    }
    ramadan = data.get("ramadan_hours")
    return CalendarRules(
        name=name,
        source=source,
        working_weekdays=parse_weekdays(data.get("working_days", _WEEKDAYS[:5]), where),
        working_hours=parse_hours(data.get("working_hours", DEFAULT_WORKING_HOURS), where),
        ramadan_hours=parse_hours(ramadan, where) if ramadan else None,
        fixed=fixed,
        islamic=islamic,
        observed=observed,
        ramadan_first_days=tuple(
            parse_date(day, where) for day in data.get("ramadan_first_days", [])
        ),
        estimates=data.get("estimates"),
        exceptional=tuple(
            DatedRule(parse_date(entry["date"], where), str(entry["name"]), source, "day_off")
            for entry in data.get("exceptional", [])
        ),
    )


def package_label(country: str, subdivision: str | None) -> str:
    code = f"{country}-{subdivision}" if subdivision else country
    return f"holidays {holidays_version()} ({code})"


def _package_rules(text: str) -> CalendarRules:
    code = text.removeprefix(_PACKAGE_PREFIX)
    match = _PACKAGE_NAME.match(code)
    if match is None:
        raise InvalidInput(
            f"invalid calendar {text!r}; write holidays:COUNTRY or holidays:COUNTRY-SUBDIVISION, "
            "for example 'holidays:MA' or 'holidays:US-MA'"
        )
    country, subdivision = match.group(1).upper(), match.group(2)
    return _country_rules(country, subdivision.upper() if subdivision else None, text)


def _country_rules(country: str, subdivision: str | None, name: str) -> CalendarRules:
    package_holidays(country, subdivision, 2024)  # raises InvalidInput for an unknown code
    return CalendarRules(
        name=name,
        source=package_label(country, subdivision),
        working_hours=parse_hours(DEFAULT_WORKING_HOURS, name),
        package_country=country,
        package_subdivision=subdivision,
    )


def named_rules(name: str) -> CalendarRules:
    if name.startswith(_PACKAGE_PREFIX):
        return _package_rules(name)
    if name not in shipped_calendar_names():
        raise InvalidInput(
            f"unknown calendar {name!r}; use a shipped calendar "
            f"({', '.join(shipped_calendar_names())}) or holidays:COUNTRY[-SUBDIVISION] for "
            "the holidays package, for example 'holidays:US-MA'"
        )
    return load_shipped_rules(name)


def spec_rules(spec: CalendarSpec) -> CalendarRules:
    """Build the rules of a workflow's inline calendar: a base or country plus its settings."""
    where = "the workflow's calendar"
    if spec.base is not None and spec.country is not None:
        raise InvalidInput(
            f"calendar sets both base {spec.base!r} and country {spec.country!r}; keep one"
        )
    if spec.base is not None:
        rules = named_rules(spec.base)
    elif spec.country is not None:
        country = spec.country.upper()
        subdivision = spec.subdivision.upper() if spec.subdivision else None
        code = f"{country}-{subdivision}" if subdivision else country
        rules = _country_rules(country, subdivision, f"{_PACKAGE_PREFIX}{code}")
    else:
        rules = CalendarRules(name="custom", source="workflow calendar")

    weekdays = rules.working_weekdays
    if spec.working_days is not None:
        weekdays = parse_weekdays(spec.working_days, where)
    hours = rules.working_hours
    if spec.working_hours is not None:
        hours = parse_hours(spec.working_hours, where)
    ramadan_hours = rules.ramadan_hours
    if spec.ramadan_hours is not None:
        disabled = spec.ramadan_hours.strip().lower() in ("", "none")
        ramadan_hours = None if disabled else parse_hours(spec.ramadan_hours, where)

    declared: list[DatedRule] = []
    for entry in spec.holidays:
        if entry.kind not in ("holiday", "day_off"):
            raise InvalidInput(
                f"invalid holiday kind {entry.kind!r} for {entry.date} in {where}; "
                "use holiday or day_off"
            )
        day = parse_date(entry.date, where)
        declared.append(DatedRule(day, entry.name, "workflow calendar", entry.kind))
    removed = {parse_date(day, where) for day in spec.removed}
    return dataclasses.replace(
        rules,
        working_weekdays=weekdays,
        working_hours=hours,
        ramadan_hours=ramadan_hours,
        declared=(*rules.declared, *declared),
        removed=rules.removed | removed,
    )
