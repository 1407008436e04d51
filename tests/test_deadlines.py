"""Tests of due-date arithmetic, pauses, extensions and explanations.

Expected instants are worked out by hand from the calendar (weekday, holidays, UTC offset of
Africa/Casablanca on that date), never computed by the code under test.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta, tzinfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from case_workflow.calendars import HolidayChange, HolidayStatus, load_calendar, load_zone
from case_workflow.deadlines import (
    compute_due,
    extend,
    extend_due,
    remaining,
    resume,
    shift,
)
from case_workflow.definition.model import DueTime
from case_workflow.durations import Duration, TimeUnit
from case_workflow.errors import InvalidInput
from tests.strategies import due_times, durations, instants, working_days

PUBLIC = load_calendar("ma-public-administration")
CASABLANCA = load_zone("Africa/Casablanca")
NEW_YORK = load_zone("America/New_York")


def local(text: str, zone: tzinfo = CASABLANCA) -> datetime:
    """Parse a local wall-clock time such as '2024-06-10 14:00' in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def span(text: str) -> Duration:
    return Duration.parse(text)


# --- worked examples --------------------------------------------------------------------------


def test_five_working_days_over_eid() -> None:
    # Mon 10 June 2024 (UTC+1). Counted: Tue 11, Wed 12, Thu 13, Fri 14; weekend 15-16;
    # Eid al-Adha Mon 17 and Tue 18; fifth working day Wed 19 -> 23:59:59+01:00.
    due = compute_due(local("2024-06-10 14:00"), span("5 working_days"), PUBLIC, CASABLANCA)
    assert due.due_at == utc("2024-06-19T22:59:59Z")
    assert not due.rests_on_estimate
    skipped = {step.day: step.reason for step in due.explanation.steps if not step.counted}
    assert skipped[date(2024, 6, 17)] == "Eid al-Adha (observed)"
    assert skipped[date(2024, 6, 15)] == "weekend (Saturday)"


def test_sixty_calendar_days() -> None:
    # Fri 1 March 2024 + 60 days = Tue 30 April 2024 (after the 14 April switch back to UTC+1).
    due = compute_due(local("2024-03-01 09:00"), span("60 calendar_days"), PUBLIC, CASABLANCA)
    assert due.due_at == utc("2024-04-30T22:59:59Z")
    assert due.explanation.utc_offset_at_start == "+01:00"
    assert due.explanation.utc_offset_at_due == "+01:00"


def test_eight_working_hours_in_ramadan() -> None:
    # Ramadan hours 09:00-15:00 at UTC+0: Mon 18 March 13:00-15:00 (2 h), Tue 19 09:00-15:00 (6 h).
    due = compute_due(local("2024-03-18 13:00"), span("8 working_hours"), PUBLIC, CASABLANCA)
    assert due.due_at == utc("2024-03-19T15:00:00Z")


# --- table of cases ---------------------------------------------------------------------------

CASES = [
    # (label, local start, duration, calendar, at, roll_forward, expected due in UTC)
    (
        "saturday working day",
        "2024-06-08 10:00",
        "1 working_days",
        "public",
        "end",
        False,
        "2024-06-10T22:59:59Z",
    ),
    (
        "saturday calendar day",
        "2024-06-08 10:00",
        "1 calendar_days",
        "public",
        "end",
        False,
        "2024-06-09T22:59:59Z",
    ),
    (
        "saturday rolled forward",
        "2024-06-08 10:00",
        "1 calendar_days",
        "public",
        "end",
        True,
        "2024-06-10T22:59:59Z",
    ),
    (
        "roll over eid",
        "2024-06-10 10:00",
        "7 calendar_days",
        "public",
        "end",
        True,
        "2024-06-19T22:59:59Z",
    ),
    (
        "zero working days",
        "2024-06-10 14:00",
        "0 working_days",
        "public",
        "end",
        False,
        "2024-06-10T22:59:59Z",
    ),
    (
        "two holidays in a row",
        "2024-08-19 10:00",
        "1 working_days",
        "public",
        "end",
        False,
        "2024-08-22T22:59:59Z",
    ),
    (
        "holiday on sunday",
        "2024-07-05 10:00",
        "1 working_days",
        "public",
        "end",
        False,
        "2024-07-08T22:59:59Z",
    ),
    (
        "eid on weekend and day off",
        "2025-06-06 10:00",
        "1 working_days",
        "public",
        "end",
        False,
        "2025-06-10T22:59:59Z",
    ),
    (
        "private sector eid",
        "2024-06-14 10:00",
        "1 working_days",
        "private",
        "end",
        False,
        "2024-06-18T22:59:59Z",
    ),
    (
        "ramadan 2024 switch to utc",
        "2024-03-09 12:00",
        "1 calendar_days",
        "public",
        "end",
        False,
        "2024-03-10T23:59:59Z",
    ),
    (
        "ramadan 2024 same time",
        "2024-03-09 14:00",
        "1 calendar_days",
        "public",
        "same",
        False,
        "2024-03-10T14:00:00Z",
    ),
    (
        "ramadan 2024 switch back",
        "2024-04-13 10:00",
        "1 calendar_days",
        "public",
        "end",
        False,
        "2024-04-14T22:59:59Z",
    ),
    (
        "ramadan 2025 switch to utc",
        "2025-02-22 10:00",
        "1 calendar_days",
        "public",
        "end",
        False,
        "2025-02-23T23:59:59Z",
    ),
    (
        "ramadan 2025 same time",
        "2025-02-22 10:00",
        "1 calendar_days",
        "public",
        "same",
        False,
        "2025-02-23T10:00:00Z",
    ),
    (
        "ramadan 2025 switch back",
        "2025-04-05 10:00",
        "1 calendar_days",
        "public",
        "end",
        False,
        "2025-04-06T22:59:59Z",
    ),
    (
        "utc only after 2026-09-20",
        "2026-10-15 12:00",
        "1 working_days",
        "public",
        "end",
        False,
        "2026-10-16T23:59:59Z",
    ),
    (
        "hours before opening",
        "2024-06-10 07:00",
        "2 working_hours",
        "public",
        "end",
        False,
        "2024-06-10T09:30:00Z",
    ),
    (
        "hours after closing over eid",
        "2024-06-14 18:00",
        "2 working_hours",
        "public",
        "end",
        False,
        "2024-06-19T09:30:00Z",
    ),
    (
        "clock hours over switch",
        "2024-03-09 12:00",
        "48 hours",
        "public",
        "end",
        False,
        "2024-03-11T11:00:00Z",
    ),
]


@pytest.mark.parametrize(
    ("start", "within", "calendar", "at", "roll", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_due_table(
    start: str, within: str, calendar: str, at: str, roll: bool, expected: str
) -> None:
    chosen = PUBLIC if calendar == "public" else load_calendar("ma-private-sector")
    due_time = DueTime.SAME_TIME if at == "same" else DueTime.END_OF_DAY
    due = compute_due(
        local(start), span(within), chosen, CASABLANCA, at=due_time, roll_forward=roll
    )
    assert due.due_at == utc(expected)
    assert due.due_at.tzinfo is UTC


def test_ramadan_switch_offsets() -> None:
    due = compute_due(local("2024-03-09 12:00"), span("1 calendar_days"), PUBLIC, CASABLANCA)
    assert due.explanation.utc_offset_at_start == "+01:00"
    assert due.explanation.utc_offset_at_due == "+00:00"


def test_rolled_forward_recorded() -> None:
    due = compute_due(
        local("2024-06-08 10:00"), span("1 calendar_days"), PUBLIC, CASABLANCA, roll_forward=True
    )
    assert due.explanation.rolled_forward_from == date(2024, 6, 9)


def test_end_of_table_flags_estimate() -> None:
    # 2027 is beyond the observed table; Eid al-Fitr is estimated on Tue 9 and Wed 10 March.
    # Counted: Thu 11, Fri 12, Mon 15; Morocco is on UTC+0 for good.
    due = compute_due(local("2027-03-08 10:00"), span("3 working_days"), PUBLIC, CASABLANCA)
    assert due.due_at == utc("2027-03-15T23:59:59Z")
    assert due.rests_on_estimate
    days = [holiday.day for holiday in due.explanation.estimated_holidays]
    assert days == [date(2027, 3, 9), date(2027, 3, 10)]
    statuses = {holiday.status for holiday in due.explanation.estimated_holidays}
    assert statuses == {HolidayStatus.ESTIMATED}


def test_calendar_days_ignore_estimates() -> None:
    due = compute_due(local("2027-03-01 10:00"), span("20 calendar_days"), PUBLIC, CASABLANCA)
    assert due.due_at == utc("2027-03-21T23:59:59Z")
    assert not due.rests_on_estimate


def test_us_patriots_day() -> None:
    # Patriots' Day is Monday 15 April 2024 in Massachusetts; Tuesday 16 April is EDT (UTC-4).
    boston = load_calendar("holidays:US-MA")
    due = compute_due(
        local("2024-04-12 10:00", NEW_YORK), span("1 working_days"), boston, "America/New_York"
    )
    assert due.due_at == utc("2024-04-17T03:59:59Z")


# --- pauses -----------------------------------------------------------------------------------


def test_pause_spanning_eid() -> None:
    # 10 working days from Mon 3 June 2024: 4,5,6,7,10,11,12,13,14 and (after Eid 17-18) 19 June.
    rule = span("10 working_days")
    due = compute_due(local("2024-06-03 09:00"), rule, PUBLIC, CASABLANCA)
    assert due.due_at == utc("2024-06-19T22:59:59Z")

    # Paused Thu 13 June: left are Fri 14 and Wed 19 June.
    paused_at = local("2024-06-13 10:00")
    left = remaining(due.due_at, paused_at, rule, PUBLIC, CASABLANCA)
    assert left == span("2 working_days")

    # Resumed Wed 19 June: Thu 20 and Fri 21 June.
    resumed = resume(local("2024-06-19 09:00"), left, PUBLIC, CASABLANCA, paused_at=paused_at)
    assert resumed.due_at == utc("2024-06-21T22:59:59Z")
    assert len(resumed.explanation.pauses) == 1
    assert resumed.explanation.pauses[0].paused_at == utc("2024-06-13T09:00:00Z")


def test_pause_calendar_days() -> None:
    left = remaining(
        utc("2024-04-30T22:59:59Z"),
        local("2024-04-20 10:00"),
        span("60 calendar_days"),
        PUBLIC,
        CASABLANCA,
    )
    assert left == span("10 calendar_days")
    resumed = resume(local("2024-05-06 10:00"), left, PUBLIC, CASABLANCA)
    assert resumed.due_at == utc("2024-05-16T22:59:59Z")


def test_pause_working_hours() -> None:
    # Due Tue 19 March 2024 15:00 (Ramadan hours, UTC+0); paused Tue 12:00 leaves 3 hours.
    rule = span("8 working_hours")
    left = remaining(
        utc("2024-03-19T15:00:00Z"), local("2024-03-19 12:00"), rule, PUBLIC, CASABLANCA
    )
    assert left == span("3 working_hours")
    resumed = resume(local("2024-03-20 09:00"), left, PUBLIC, CASABLANCA)
    assert resumed.due_at == utc("2024-03-20T12:00:00Z")


def test_pause_after_due() -> None:
    left = remaining(
        utc("2024-06-19T22:59:59Z"),
        local("2024-06-24 10:00"),
        span("5 working_days"),
        PUBLIC,
        CASABLANCA,
    )
    assert left == span("0 working_days")


# --- shift and extend -------------------------------------------------------------------------


def test_shift_reminder_before_due() -> None:
    # 10 calendar days before Tue 30 April 2024 23:59:59+01:00 is Sat 20 April, still UTC+1.
    fire_at = shift(
        utc("2024-04-30T22:59:59Z"), span("10 calendar_days"), PUBLIC, CASABLANCA, backwards=True
    )
    assert fire_at == utc("2024-04-20T22:59:59Z")


def test_shift_backwards_over_clock_change() -> None:
    # 15 March 2024 23:59:59 at UTC+0 (Ramadan) minus 10 days is 5 March 23:59:59 at UTC+1.
    fire_at = shift(
        utc("2024-03-15T23:59:59Z"), span("10 calendar_days"), PUBLIC, CASABLANCA, backwards=True
    )
    assert fire_at == utc("2024-03-05T22:59:59Z")


def test_shift_escalation_after_due() -> None:
    # 15 working days after Wed 19 June 2024: June 20, 21, 24-28, July 1-5 (12), then 8, 9, 10.
    fire_at = shift(utc("2024-06-19T22:59:59Z"), span("15 working_days"), PUBLIC, CASABLANCA)
    assert fire_at == utc("2024-07-10T22:59:59Z")


def test_shift_working_days_backwards() -> None:
    # Before Wed 19 June 2024: Eid 18 and 17, weekend 16 and 15, then Fri 14 (1), Thu 13 (2).
    fire_at = shift(
        utc("2024-06-19T22:59:59Z"), span("2 working_days"), PUBLIC, CASABLANCA, backwards=True
    )
    assert fire_at == utc("2024-06-13T22:59:59Z")


def test_shift_working_hours_backwards() -> None:
    # Tue 19 March 2024 10:00 (Ramadan 09:00-15:00): one hour on Tuesday, one on Monday.
    fire_at = shift(
        local("2024-03-19 10:00"), span("2 working_hours"), PUBLIC, CASABLANCA, backwards=True
    )
    assert fire_at == utc("2024-03-18T14:00:00Z")


@pytest.mark.parametrize("unit", list(TimeUnit))
def test_shift_zero_unchanged(unit: TimeUnit) -> None:
    moment = utc("2024-06-19T22:59:59Z")
    assert shift(moment, Duration(0, unit), PUBLIC, CASABLANCA) is moment


def test_extend() -> None:
    extended = extend(utc("2024-06-14T22:59:59Z"), span("1 working_days"), PUBLIC, CASABLANCA)
    assert extended == utc("2024-06-19T22:59:59Z")


def test_extend_due_recorded() -> None:
    due = compute_due(local("2024-06-10 14:00"), span("5 working_days"), PUBLIC, CASABLANCA)
    extended = extend_due(due, span("2 working_days"), PUBLIC, CASABLANCA)
    assert extended.due_at == utc("2024-06-21T22:59:59Z")
    assert len(extended.explanation.extensions) == 1
    assert extended.explanation.extensions[0].previous_due == utc("2024-06-19T22:59:59Z")
    assert extended.explanation.due_local.date() == date(2024, 6, 21)


# --- input errors -----------------------------------------------------------------------------


def test_naive_start() -> None:
    with pytest.raises(InvalidInput, match="no time zone"):
        compute_due(datetime(2024, 6, 10, 14), span("5 working_days"), PUBLIC, CASABLANCA)


def test_negative_duration() -> None:
    with pytest.raises(InvalidInput, match="-1"):
        compute_due(
            local("2024-06-10 14:00"), Duration(-1, TimeUnit.WORKING_DAYS), PUBLIC, CASABLANCA
        )


def test_unknown_zone_name() -> None:
    with pytest.raises(InvalidInput, match="'Mars/Olympus'"):
        compute_due(local("2024-06-10 14:00"), span("5 working_days"), PUBLIC, "Mars/Olympus")


# --- explanations -----------------------------------------------------------------------------


def test_explanation_text_english() -> None:
    due = compute_due(local("2024-06-10 14:00"), span("5 working_days"), PUBLIC, CASABLANCA)
    text = due.explanation.to_text()
    assert "5 working days" in text
    assert "2024-06-17 (Monday): not counted, Eid al-Adha (observed)" in text
    assert "Due: 2024-06-19 23:59:59 local time (UTC+01:00), 2024-06-19T22:59:59Z" in text


def test_explanation_text_french() -> None:
    due = compute_due(local("2027-03-08 10:00"), span("3 working_days"), PUBLIC, CASABLANCA)
    text = due.explanation.to_text("fr")
    assert "3 jours ouvrables" in text
    assert "2027-03-09 (mardi) : non compté, Aïd al-Fitr (date estimée)" in text
    assert "2027-03-13 (samedi) : non compté, week-end (samedi)" in text
    assert "Échéance : 2027-03-15 23:59:59" in text
    assert "estimées" in text


def test_explanation_unknown_language() -> None:
    due = compute_due(local("2024-06-10 14:00"), span("5 working_days"), PUBLIC, CASABLANCA)
    with pytest.raises(InvalidInput, match="'de'"):
        due.explanation.to_text("de")


def test_explanation_dict_json_safe() -> None:
    due = compute_due(local("2027-03-08 10:00"), span("3 working_days"), PUBLIC, CASABLANCA)
    data = json.loads(json.dumps(due.explanation.to_dict()))
    assert data["due_at"] == "2027-03-15T23:59:59Z"
    assert data["timezone"] == "Africa/Casablanca"
    assert data["duration"] == "3 working_days"
    assert data["estimated_holidays"][0]["status"] == "estimated"
    assert data["steps"][0] == {
        "day": "2027-03-09",
        "counted": False,
        "reason": "Eid al-Fitr (estimated)",
    }


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(start=instants, within=durations(), at=due_times, roll=st.booleans())
def test_due_never_before_start(start: datetime, within: Duration, at: DueTime, roll: bool) -> None:
    due = compute_due(start, within, PUBLIC, CASABLANCA, at=at, roll_forward=roll)
    assert due.due_at >= start


@settings(max_examples=100, deadline=None)
@given(
    start=instants,
    within=durations((TimeUnit.WORKING_DAYS, TimeUnit.WORKING_HOURS, TimeUnit.CALENDAR_DAYS)),
    offset=st.integers(0, 90),
    roll=st.booleans(),
)
def test_added_holiday_never_earlier(
    start: datetime, within: Duration, offset: int, roll: bool
) -> None:
    extra_day = start.astimezone(CASABLANCA).date() + timedelta(days=offset)
    assume(PUBLIC.is_working_day(extra_day))
    changed = PUBLIC.with_changes([HolidayChange("add", extra_day, "Test day off", "day_off")])
    before = compute_due(start, within, PUBLIC, CASABLANCA, roll_forward=roll)
    after = compute_due(start, within, changed, CASABLANCA, roll_forward=roll)
    assert after.due_at >= before.due_at


@settings(max_examples=100, deadline=None)
@given(
    start=instants,
    within=working_days,
    pause_offset=st.integers(0, 60),
    pause_length=st.integers(0, 40),
)
def test_pause_moves_due_by_k(
    start: datetime, within: Duration, pause_offset: int, pause_length: int
) -> None:
    due = compute_due(start, within, PUBLIC, CASABLANCA)
    due_date = due.due_at.astimezone(CASABLANCA).date()
    paused_date = start.astimezone(CASABLANCA).date() + timedelta(days=pause_offset)
    assume(paused_date < due_date)
    resumed_date = paused_date + timedelta(days=pause_length)
    paused_at = datetime.combine(paused_date, time(10), tzinfo=CASABLANCA)
    resumed_at = datetime.combine(resumed_date, time(11), tzinfo=CASABLANCA)

    # k: the working days the pause covered, in (pause date, resume date].
    k = sum(
        PUBLIC.is_working_day(paused_date + timedelta(days=n)) for n in range(1, pause_length + 1)
    )
    left = remaining(due.due_at, paused_at, within, PUBLIC, CASABLANCA)
    resumed = resume(resumed_at, left, PUBLIC, CASABLANCA)
    expected = shift(due.due_at, Duration(k, TimeUnit.WORKING_DAYS), PUBLIC, CASABLANCA)
    assert resumed.due_at == expected


@settings(max_examples=100, deadline=None)
@given(start=instants, first=st.integers(0, 40), second=st.integers(0, 40))
def test_working_days_add_up(start: datetime, first: int, second: int) -> None:
    unit = TimeUnit.WORKING_DAYS
    one_step = compute_due(start, Duration(first + second, unit), PUBLIC, CASABLANCA)
    first_due = compute_due(start, Duration(first, unit), PUBLIC, CASABLANCA)
    two_steps = shift(first_due.due_at, Duration(second, unit), PUBLIC, CASABLANCA)
    assert two_steps == one_step.due_at
