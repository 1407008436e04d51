"""Dates as they are written in letters: local date, French (Babel) and Moroccan Arabic forms.

Moroccan administrative Arabic names the Gregorian months after their French names (يوليوز for
July, غشت for August), unlike the Mashriq forms that Babel's Arabic locales use, so Arabic dates
come from the table below. Digits stay Western (0-9), as in Moroccan official letters. The
Hijri date uses the Umm al-Qura calendar of the ``hijridate`` package; Morocco fixes its Hijri
months by moon sighting, so the printed Hijri day can differ from the observed one by a day.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.core import UnknownLocaleError
from babel.dates import format_date
from hijridate import Gregorian

from case_workflow.errors import InvalidInput

__all__ = [
    "MOROCCAN_MONTHS_AR",
    "format_hijri",
    "format_long_date",
    "local_date",
]

MOROCCAN_MONTHS_AR: tuple[str, ...] = (
    "يناير",
    "فبراير",
    "مارس",
    "أبريل",
    "ماي",
    "يونيو",
    "يوليوز",
    "غشت",
    "شتنبر",
    "أكتوبر",
    "نونبر",
    "دجنبر",
)

_HIJRI_SUFFIX = "هـ"


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """Return the calendar date of the aware instant ``moment`` in ``zone``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"naive datetime {moment.isoformat()} has no time zone; pass an aware UTC datetime"
        )
    return moment.astimezone(zone).date()


def format_long_date(day: date, language: str) -> str:
    """Format ``day`` as a letter writes it: ``17 juin 2024``, ``17 يونيو 2024``.

    Arabic uses the Moroccan month names; other languages use Babel's long format for that
    locale, so the result never depends on the server's locale.
    """
    if language == "ar" or language.startswith("ar_"):
        return f"{day.day} {MOROCCAN_MONTHS_AR[day.month - 1]} {day.year}"
    try:
        return format_date(day, format="long", locale=language)
    except (UnknownLocaleError, ValueError):
        raise InvalidInput(
            f"unknown letter language {language!r}; use a locale code such as 'fr', 'ar' or 'en'"
        ) from None


def format_hijri(day: date) -> str:
    """Format ``day`` in the Hijri (Umm al-Qura) calendar in Arabic: ``11 ذو الحجة 1445 هـ``.

    Returns an empty string outside the converter's range (1 August 1924 to 16 November 2077).
    """
    try:
        hijri = Gregorian(day.year, day.month, day.day).to_hijri()
    except OverflowError:
        return ""
    return f"{hijri.day} {hijri.month_name('ar')} {hijri.year} {_HIJRI_SUFFIX}"
