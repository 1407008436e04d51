"""Tests of working calendars, shipped Moroccan holiday data and time zones."""

from __future__ import annotations

import importlib.resources
import shutil
import zoneinfo
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from case_workflow.calendars import (
    HolidayChange,
    HolidayStatus,
    load_calendar,
    load_zone,
)
from case_workflow.definition.model import CalendarSpec, HolidaySpec
from case_workflow.errors import InvalidInput

PUBLIC = load_calendar("ma-public-administration")
PRIVATE = load_calendar("ma-private-sector")

NORMAL_HOURS = [(time(8, 30), time(16, 30))]
RAMADAN_HOURS = [(time(9, 0), time(15, 0))]


# --- time zones -------------------------------------------------------------------------------


def test_casablanca_utc_after_2026(record_property: Callable[[str, object], None]) -> None:
    moment = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
    local = moment.astimezone(load_zone("Africa/Casablanca"))
    assert local.hour == 12
    assert local.utcoffset() == timedelta(0)

    # Zone files older than IANA 2026c (Debian's 2025b, for one) still give UTC+1 here.
    system_file = Path("/usr/share/zoneinfo/Africa/Casablanca")
    if system_file.is_file():
        with system_file.open("rb") as stream:
            system_zone = zoneinfo.ZoneInfo.from_file(stream)
        system_offset = moment.astimezone(system_zone).utcoffset()
        record_property("system_zone_offset_2026_10_15", str(system_offset))
        record_property("system_zone_differs", system_offset != timedelta(0))


def test_casablanca_ramadan_offsets() -> None:
    zone = load_zone("Africa/Casablanca")
    cases = [
        (datetime(2024, 3, 9, 12, tzinfo=UTC), timedelta(hours=1)),
        (datetime(2024, 3, 11, 12, tzinfo=UTC), timedelta(0)),
        (datetime(2024, 4, 15, 12, tzinfo=UTC), timedelta(hours=1)),
        (datetime(2025, 3, 1, 12, tzinfo=UTC), timedelta(0)),
        (datetime(2025, 4, 7, 12, tzinfo=UTC), timedelta(hours=1)),
        (datetime(2027, 3, 1, 12, tzinfo=UTC), timedelta(0)),
    ]
    for moment, offset in cases:
        assert moment.astimezone(zone).utcoffset() == offset, moment


def test_load_zone_ignores_system_files(tmp_path: Path) -> None:
    # A fake system zone directory where Africa/Casablanca is really Asia/Karachi (UTC+5).
    karachi = importlib.resources.files("tzdata.zoneinfo").joinpath("Asia", "Karachi")
    (tmp_path / "Africa").mkdir()
    with karachi.open("rb") as source, (tmp_path / "Africa" / "Casablanca").open("wb") as target:
        shutil.copyfileobj(source, target)
    load_zone.cache_clear()
    zoneinfo.reset_tzpath(to=[str(tmp_path)])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        moment = datetime(2025, 7, 1, 12, tzinfo=UTC)
        faked = moment.astimezone(zoneinfo.ZoneInfo("Africa/Casablanca")).utcoffset()
        ours = moment.astimezone(load_zone("Africa/Casablanca")).utcoffset()
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()
        load_zone.cache_clear()
    assert faked == timedelta(hours=5)
    assert ours == timedelta(hours=1)


def test_load_zone_cached() -> None:
    assert load_zone("Africa/Casablanca") is load_zone("Africa/Casablanca")
    assert load_zone("Africa/Casablanca").key == "Africa/Casablanca"


@pytest.mark.parametrize("name", ["Africa/Casablanka", "../etc/passwd", "", "Africa", "/etc/x"])
def test_load_zone_unknown(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_zone(name)
    assert repr(name) in str(caught.value)
    assert "Africa/Casablanca" in str(caught.value)


# --- shipped Moroccan calendars ---------------------------------------------------------------

FIXED_2026 = [
    (date(2026, 1, 1), "New Year's Day"),
    (date(2026, 1, 11), "Proclamation of Independence Day"),
    (date(2026, 1, 14), "Amazigh New Year"),
    (date(2026, 5, 1), "Labour Day"),
    (date(2026, 7, 30), "Throne Day"),
    (date(2026, 8, 14), "Oued Ed-Dahab Day"),
    (date(2026, 8, 20), "Revolution of the King and the People"),
    (date(2026, 8, 21), "Youth Day"),
    (date(2026, 10, 31), "Unity Day"),
    (date(2026, 11, 6), "Green March"),
    (date(2026, 11, 18), "Independence Day"),
]


@pytest.mark.parametrize(("day", "name"), FIXED_2026)
def test_fixed_holidays(day: date, name: str) -> None:
    holiday = PUBLIC.holiday(day)
    assert holiday is not None
    assert holiday.name == name
    assert holiday.status is HolidayStatus.FIXED


def test_fixed_holidays_start_years() -> None:
    assert PUBLIC.holiday(date(2023, 1, 14)) is None
    assert PUBLIC.holiday(date(2024, 1, 14)) is not None
    assert PUBLIC.holiday(date(2025, 10, 31)) is None
    assert PUBLIC.holiday(date(2026, 10, 31)) is not None


OBSERVED_FIRST_DAYS = [
    (date(2022, 7, 30), "Islamic New Year", 1),
    (date(2022, 10, 9), "Mawlid", 2),
    (date(2022, 5, 2), "Eid al-Fitr", 2),
    (date(2022, 7, 10), "Eid al-Adha", 2),
    (date(2023, 7, 19), "Islamic New Year", 1),
    (date(2023, 9, 28), "Mawlid", 2),
    (date(2023, 4, 22), "Eid al-Fitr", 2),
    (date(2023, 6, 29), "Eid al-Adha", 2),
    (date(2024, 7, 7), "Islamic New Year", 1),
    (date(2024, 9, 16), "Mawlid", 2),
    (date(2024, 4, 10), "Eid al-Fitr", 2),
    (date(2024, 6, 17), "Eid al-Adha", 2),
    (date(2025, 6, 27), "Islamic New Year", 1),
    (date(2025, 9, 5), "Mawlid", 2),
    (date(2025, 3, 31), "Eid al-Fitr", 2),
    (date(2025, 6, 7), "Eid al-Adha", 2),
    (date(2026, 3, 20), "Eid al-Fitr", 2),
]


@pytest.mark.parametrize(("first_day", "name", "days"), OBSERVED_FIRST_DAYS)
def test_observed_islamic_holidays(first_day: date, name: str, days: int) -> None:
    before = PUBLIC.holidays_on(first_day - timedelta(days=1))
    assert all(holiday.name != name for holiday in before)
    for offset in range(days):
        # 1 Muharram 1444 fell on Throne Day (30 July 2022), so look among all of the day's.
        found = PUBLIC.holidays_on(first_day + timedelta(days=offset))
        statuses = [holiday.status for holiday in found if holiday.name == name]
        assert statuses == [HolidayStatus.OBSERVED]
    after = PUBLIC.holidays_on(first_day + timedelta(days=days))
    assert all(holiday.name != name for holiday in after)


def test_private_sector_one_day() -> None:
    assert PRIVATE.holiday(date(2024, 6, 17)) is not None
    assert PRIVATE.holiday(date(2024, 6, 18)) is None
    assert PRIVATE.holiday(date(2024, 4, 11)) is None
    assert PRIVATE.holiday(date(2024, 9, 17)) is None
    assert PRIVATE.holiday(date(2024, 11, 18)) is not None


@pytest.mark.parametrize("day", [date(2023, 4, 24), date(2024, 4, 12), date(2025, 6, 9)])
def test_exceptional_days_off(day: date) -> None:
    holiday = PUBLIC.holiday(day)
    assert holiday is not None
    assert holiday.status is HolidayStatus.EXCEPTIONAL
    assert not PUBLIC.is_working_day(day)
    assert PRIVATE.is_working_day(day)


def test_estimates_after_table() -> None:
    # 2027 is beyond the observed table: the holidays package gives 9-10 March for Eid al-Fitr.
    first = PUBLIC.holiday(date(2027, 3, 9))
    assert first is not None
    assert first.status is HolidayStatus.ESTIMATED
    assert first.source.startswith("holidays ")
    assert PUBLIC.non_working_reason(date(2027, 3, 9)) == "Eid al-Fitr (estimated)"
    second = PUBLIC.holiday(date(2027, 3, 10))
    assert second is not None
    assert second.status is HolidayStatus.ESTIMATED


def test_estimates_fill_partial_year() -> None:
    # 2026 lists only Eid al-Fitr; Eid al-Adha comes from the estimate.
    holiday = PUBLIC.holiday(date(2026, 5, 27))
    assert holiday is not None
    assert holiday.name == "Eid al-Adha"
    assert holiday.status is HolidayStatus.ESTIMATED


def test_non_working_reasons() -> None:
    assert PUBLIC.non_working_reason(date(2024, 6, 15)) == "weekend (Saturday)"
    assert PUBLIC.non_working_reason(date(2024, 6, 17)) == "Eid al-Adha (observed)"
    assert (
        PUBLIC.non_working_reason(date(2024, 7, 7))
        == "Islamic New Year (observed), weekend (Sunday)"
    )
    assert PUBLIC.non_working_reason(date(2024, 6, 19)) is None


def test_holiday_on_weekend_no_substitute() -> None:
    # 1 Muharram 1446 fell on Sunday 7 July 2024; Monday 8 July was a working day.
    assert PUBLIC.holiday(date(2024, 7, 7)) is not None
    assert PUBLIC.is_working_day(date(2024, 7, 8))


def test_holidays_between() -> None:
    found = PUBLIC.holidays_between(date(2024, 8, 1), date(2024, 8, 31))
    assert [holiday.day for holiday in found] == [
        date(2024, 8, 14),
        date(2024, 8, 20),
        date(2024, 8, 21),
    ]


def test_two_holidays_same_day() -> None:
    # The 2027 Mawlid estimate falls on Oued Ed-Dahab Day; the fixed holiday is listed first.
    both = PUBLIC.holidays_on(date(2027, 8, 14))
    assert [holiday.name for holiday in both] == ["Oued Ed-Dahab Day", "Mawlid"]
    assert PUBLIC.holiday(date(2027, 8, 14)) == both[0]


# --- working hours and Ramadan ----------------------------------------------------------------


def test_working_hours() -> None:
    assert PUBLIC.working_hours(date(2024, 6, 19)) == NORMAL_HOURS
    assert PUBLIC.working_hours(date(2024, 6, 17)) == []
    assert PUBLIC.working_hours(date(2024, 6, 15)) == []


def test_ramadan_hours_observed_bounds() -> None:
    # Ramadan 1445 began in Morocco on Tuesday 12 March 2024 (Umm al-Qura: 11 March) and
    # ended the day before Eid al-Fitr on Wednesday 10 April.
    assert PUBLIC.working_hours(date(2024, 3, 11)) == NORMAL_HOURS
    assert PUBLIC.working_hours(date(2024, 3, 12)) == RAMADAN_HOURS
    assert PUBLIC.working_hours(date(2024, 3, 18)) == RAMADAN_HOURS
    assert PUBLIC.working_hours(date(2024, 4, 9)) == RAMADAN_HOURS
    assert PUBLIC.working_hours(date(2024, 4, 15)) == NORMAL_HOURS


def test_ramadan_hours_estimated() -> None:
    # Beyond the table Ramadan 1448 is estimated from 8 February to 8 March 2027.
    assert PUBLIC.is_ramadan(date(2027, 2, 10))
    assert PUBLIC.working_hours(date(2027, 2, 10)) == RAMADAN_HOURS
    assert not PUBLIC.is_ramadan(date(2027, 3, 11))


# --- administrator changes --------------------------------------------------------------------


def test_change_add_day_off() -> None:
    changed = PUBLIC.with_changes([HolidayChange("add", date(2024, 6, 19), "Flood", "day_off")])
    holiday = changed.holiday(date(2024, 6, 19))
    assert holiday is not None
    assert holiday.status is HolidayStatus.EXCEPTIONAL
    assert holiday.source == "administrator"
    assert PUBLIC.is_working_day(date(2024, 6, 19))


def test_change_add_holiday_declared() -> None:
    changed = PUBLIC.with_changes([HolidayChange("add", date(2024, 6, 19), "Local feast")])
    holiday = changed.holiday(date(2024, 6, 19))
    assert holiday is not None
    assert holiday.status is HolidayStatus.DECLARED


def test_change_remove() -> None:
    changed = PUBLIC.with_changes([HolidayChange("remove", date(2024, 6, 18))])
    assert changed.is_working_day(date(2024, 6, 18))
    assert not changed.is_working_day(date(2024, 6, 17))


def test_change_remove_unknown_day() -> None:
    with pytest.raises(InvalidInput) as caught:
        PUBLIC.with_changes([HolidayChange("remove", date(2024, 6, 19))])
    assert "2024-06-19" in str(caught.value)
    assert "2024-06-17" in str(caught.value)


def test_change_confirm_moves_estimate() -> None:
    # The 2027 estimate is 9-10 March; Morocco observing it on 10 March moves it to 10-11 March.
    changed = PUBLIC.with_changes([HolidayChange("confirm", date(2027, 3, 10), "Aïd al-Fitr")])
    assert changed.is_working_day(date(2027, 3, 9))
    for day in (date(2027, 3, 10), date(2027, 3, 11)):
        holiday = changed.holiday(day)
        assert holiday is not None
        assert holiday.status is HolidayStatus.OBSERVED
    # Ramadan now ends on 9 March, the eve of the confirmed Eid.
    assert changed.working_hours(date(2027, 3, 9)) == RAMADAN_HOURS


def test_change_confirm_estimated_day() -> None:
    changed = PUBLIC.with_changes([HolidayChange("confirm", date(2026, 5, 27))])
    holiday = changed.holiday(date(2026, 5, 27))
    assert holiday is not None
    assert holiday.status is HolidayStatus.OBSERVED


def test_change_confirm_unknown() -> None:
    with pytest.raises(InvalidInput) as caught:
        PUBLIC.with_changes([HolidayChange("confirm", date(2026, 6, 3), "Carnival")])
    assert "Carnival" in str(caught.value)
    assert "Eid al-Fitr" in str(caught.value)


def test_change_invalid_action() -> None:
    with pytest.raises(InvalidInput) as caught:
        HolidayChange("move", date(2026, 6, 3))  # type: ignore[arg-type]
    assert "'move'" in str(caught.value)


def test_load_calendar_with_changes() -> None:
    changes = [HolidayChange("add", date(2024, 6, 19), "Flood", "day_off")]
    assert not load_calendar("ma-public-administration", changes=changes).is_working_day(
        date(2024, 6, 19)
    )


# --- other calendars and specs ----------------------------------------------------------------


def test_holidays_package_calendar() -> None:
    boston = load_calendar("holidays:US-MA")
    holiday = boston.holiday(date(2024, 4, 15))
    assert holiday is not None
    assert holiday.name == "Patriots' Day"
    assert holiday.status is HolidayStatus.FIXED
    assert load_calendar("holidays:US").holiday(date(2024, 4, 15)) is None


def test_unknown_calendar_name() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_calendar("ma-public")
    message = str(caught.value)
    assert "'ma-public'" in message
    assert "ma-public-administration" in message
    assert "ma-private-sector" in message
    assert "holidays:" in message


def test_unknown_package_codes() -> None:
    with pytest.raises(InvalidInput, match="'XX'"):
        load_calendar("holidays:XX")
    with pytest.raises(InvalidInput, match="'ZZ'") as caught:
        load_calendar("holidays:US-ZZ")
    assert "MA" in str(caught.value)


def test_spec_inline_settings() -> None:
    spec = CalendarSpec(
        base="ma-public-administration",
        working_days=["mon", "tue", "wed", "thu", "fri", "sat"],
        working_hours="08:00-12:00, 14:00-18:00",
        ramadan_hours="none",
        holidays=[HolidaySpec(date="2024-06-19", name="Regional day", kind="day_off")],
        removed=["2024-06-18"],
    )
    calendar = load_calendar(spec)
    assert calendar.is_working_day(date(2024, 6, 15))
    assert calendar.is_working_day(date(2024, 6, 18))
    assert not calendar.is_working_day(date(2024, 6, 19))
    assert calendar.working_hours(date(2024, 3, 18)) == [
        (time(8, 0), time(12, 0)),
        (time(14, 0), time(18, 0)),
    ]


def test_spec_country() -> None:
    calendar = load_calendar(CalendarSpec(country="us", subdivision="ma"))
    assert calendar.name == "holidays:US-MA"
    assert calendar.holiday(date(2024, 4, 15)) is not None


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (CalendarSpec(base="ma-public-administration", country="MA"), "keep one"),
        (CalendarSpec(working_hours="16:30-08:30"), "'16:30-08:30'"),
        (CalendarSpec(working_hours="8h-16h"), "'8h-16h'"),
        (CalendarSpec(working_days=["funday"]), "'funday'"),
        (CalendarSpec(holidays=[HolidaySpec(date="2024-13-01", name="x")]), "'2024-13-01'"),
        (CalendarSpec(holidays=[HolidaySpec(date="2024-06-01", name="x", kind="x")]), "'x'"),
    ],
)
def test_spec_invalid(spec: CalendarSpec, fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_calendar(spec)
    assert fragment in str(caught.value)
