"""Estimated Islamic holidays and Ramadan periods, for the years no observed table covers.

Islamic holidays follow the lunar Hijri calendar, and Morocco fixes each month by its own moon
sighting, so the observed date is only known once announced. Estimates come from two packages:

- ``holidays`` (0.109 or later) for the first days of 1 Muharram, Mawlid, Eid al-Fitr and
  Eid al-Adha in a country;
- ``hijridate`` (Umm al-Qura calendar, Gregorian years 1937 to 2077) for the first day of Ramadan
  and of Shawwal, which bound the Ramadan working-hours schedule.

Both are computed calendars and are often one day earlier than the date Morocco observes.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast

import holidays
from hijridate import Gregorian, Hijri

from case_workflow.errors import InvalidInput

__all__ = [
    "ISLAMIC_HOLIDAY_KEYS",
    "EstimatedHoliday",
    "estimated_first_days",
    "estimated_ramadan",
    "holidays_version",
    "package_holidays",
]

logger = logging.getLogger(__name__)

ISLAMIC_HOLIDAY_KEYS = ("islamic_new_year", "mawlid", "eid_al_fitr", "eid_al_adha")

# English names that the `holidays` package (0.109) gives these holidays in every country.
_PACKAGE_NAMES = {
    "Islamic New Year": "islamic_new_year",
    "Prophet's Birthday": "mawlid",
    "Eid al-Fitr": "eid_al_fitr",
    "Eid al-Adha": "eid_al_adha",
}
_ESTIMATED_SUFFIX = " (estimated)"


@dataclass(frozen=True, slots=True)
class EstimatedHoliday:
    """One day of a holiday as the ``holidays`` package gives it."""

    day: date
    name: str
    estimated: bool


def holidays_version() -> str:
    """Return the version of the installed ``holidays`` package."""
    return importlib.metadata.version("holidays")


def _country_table(country: str, subdivision: str | None, years: tuple[int, ...]) -> object:
    try:
        return holidays.country_holidays(country, subdiv=subdivision, years=years)
    except NotImplementedError:
        supported = holidays.list_supported_countries()
        if country not in supported:
            raise InvalidInput(
                f"unknown country {country!r} for the holidays package; use an ISO 3166-1 "
                "alpha-2 code such as 'MA' or 'US'"
            ) from None
        choices = ", ".join(supported[country]) or "none"
        raise InvalidInput(
            f"unknown subdivision {subdivision!r} of country {country!r}; "
            f"known subdivisions: {choices}"
        ) from None


def _english_table(country: str, subdivision: str | None, years: tuple[int, ...]) -> object:
    """Return the package's holiday table, in US English when the country supports it."""
    table = _country_table(country, subdivision, years)
    languages = cast(tuple[str, ...], getattr(table, "supported_languages", ()))
    if "en_US" in languages:
        return holidays.country_holidays(country, subdiv=subdivision, years=years, language="en_US")
    return table


@functools.lru_cache(maxsize=512)
def package_holidays(
    country: str, subdivision: str | None, year: int
) -> tuple[EstimatedHoliday, ...]:
    """Return every holiday day of ``country`` in ``year``, one entry per name.

    Raise :class:`InvalidInput` for a country or subdivision the package does not know.
    """
    table = _english_table(country, subdivision, (year,))
    entries: list[EstimatedHoliday] = []
    for day in sorted(cast(dict[date, str], table)):
        for name in cast(list[str], table.get_list(day)):  # type: ignore[attr-defined]
            estimated = name.endswith(_ESTIMATED_SUFFIX)
            entries.append(EstimatedHoliday(day, name.removesuffix(_ESTIMATED_SUFFIX), estimated))
    return tuple(entries)


@functools.lru_cache(maxsize=512)
def estimated_first_days(country: str, year: int) -> tuple[tuple[str, EstimatedHoliday], ...]:
    """Return the first day of each Islamic holiday that the package gives ``country`` in ``year``.

    Each entry is ``(key, holiday)`` with ``key`` one of :data:`ISLAMIC_HOLIDAY_KEYS`. A holiday
    whose first day falls on 31 December of the year before is left to that year.
    """
    days_by_key: dict[str, set[date]] = {}
    first_entries: list[tuple[str, EstimatedHoliday]] = []
    for entry in package_holidays(country, None, year - 1) + package_holidays(country, None, year):
        key = _PACKAGE_NAMES.get(entry.name)
        if key is not None:
            days_by_key.setdefault(key, set()).add(entry.day)
    for entry in package_holidays(country, None, year):
        key = _PACKAGE_NAMES.get(entry.name)
        if key is None:
            continue
        if entry.day - timedelta(days=1) not in days_by_key[key]:
            first_entries.append((key, entry))
    return tuple(first_entries)


@functools.lru_cache(maxsize=512)
def estimated_ramadan(year: int) -> tuple[tuple[date, date], ...]:
    """Return ``(1 Ramadan, 1 Shawwal)`` pairs whose Ramadan overlaps Gregorian ``year``.

    Dates come from the Umm al-Qura calendar of ``hijridate``. Years outside its range
    (1937-2077) return an empty tuple, so no Ramadan schedule applies there.
    """
    try:
        first_hijri_year = Gregorian(year, 1, 1).to_hijri().year
        last_hijri_year = Gregorian(year, 12, 31).to_hijri().year
    except (ValueError, OverflowError):
        logger.debug("no Hijri calendar for %d; Ramadan hours are not applied", year)
        return ()
    periods: list[tuple[date, date]] = []
    for hijri_year in range(first_hijri_year - 1, last_hijri_year + 1):
        try:
            ramadan = Hijri(hijri_year, 9, 1).to_gregorian()
            shawwal = Hijri(hijri_year, 10, 1).to_gregorian()
        except (ValueError, OverflowError):
            continue
        first = date(ramadan.year, ramadan.month, ramadan.day)
        end = date(shawwal.year, shawwal.month, shawwal.day)
        if first.year <= year <= end.year:
            periods.append((first, end))
    return tuple(periods)
