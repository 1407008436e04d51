"""Walking a calendar: counting working days, and working time inside working-hour windows.

Each working-hour window is converted from local wall-clock times to UTC instants on its own
date, so a clock change inside a window shortens or lengthens it by the real elapsed time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from case_workflow.calendars import WorkingCalendar
from case_workflow.errors import InvalidInput
from case_workflow.explain import DayStep

__all__ = [
    "add_working_time",
    "check_idle",
    "day_step",
    "local_instant",
    "skipped_step",
    "subtract_working_time",
    "walk_working_days",
    "working_time_between",
]

# A calendar whose working days are this far apart is treated as having none left.
_MAX_IDLE_DAYS = 3 * 366


def check_idle(calendar: WorkingCalendar, since: date, day: date) -> None:
    """Raise :class:`InvalidInput` when ``day`` is too far from the last working day seen."""
    if abs((day - since).days) > _MAX_IDLE_DAYS:
        raise InvalidInput(
            f"calendar {calendar.name!r} has no working day between {since.isoformat()} and "
            f"{day.isoformat()}; check its working days and holidays"
        )


def skipped_step(calendar: WorkingCalendar, day: date, reason: str | None = None) -> DayStep:
    """Return the step of a day that is not counted, with the calendar's reason by default."""
    return DayStep(
        day,
        False,
        reason or calendar.non_working_reason(day),
        holidays=calendar.holidays_on(day),
        weekend=calendar.is_weekend(day),
    )


def local_instant(day: date, clock: time, tz: tzinfo, fold: int = 0) -> datetime:
    """Return the UTC instant of the wall-clock time ``clock`` on local date ``day``."""
    return datetime.combine(day, clock, tzinfo=tz).replace(fold=fold).astimezone(UTC)


def _windows(
    calendar: WorkingCalendar, tz: tzinfo, day: date
) -> Iterator[tuple[datetime, datetime]]:
    for begin, end in calendar.working_hours(day):
        yield local_instant(day, begin, tz), local_instant(day, end, tz)


def add_working_time(
    calendar: WorkingCalendar, tz: tzinfo, start: datetime, amount: timedelta
) -> tuple[datetime, list[DayStep]]:
    """Return the instant when ``amount`` of working time after ``start`` is used up."""
    if amount <= timedelta(0):
        return start, []
    day = start.astimezone(tz).date()
    steps: list[DayStep] = []
    last_used = day
    while True:
        used = False
        for window_start, window_end in _windows(calendar, tz, day):
            begin = max(window_start, start)
            if begin >= window_end:
                continue
            used = True
            if amount <= window_end - begin:
                steps.append(DayStep(day, True))
                return begin + amount, steps
            amount -= window_end - begin
        if used:
            steps.append(DayStep(day, True))
            last_used = day
        elif calendar.is_working_day(day):
            steps.append(skipped_step(calendar, day, "outside working hours"))
        else:
            steps.append(skipped_step(calendar, day))
            check_idle(calendar, last_used, day)
        day += timedelta(days=1)


def subtract_working_time(
    calendar: WorkingCalendar, tz: tzinfo, end: datetime, amount: timedelta
) -> datetime:
    """Return the instant ``amount`` of working time before ``end``."""
    if amount <= timedelta(0):
        return end
    day = end.astimezone(tz).date()
    last_used = day
    while True:
        windows = list(_windows(calendar, tz, day))
        for window_start, window_end in reversed(windows):
            finish = min(window_end, end)
            if finish <= window_start:
                continue
            if amount <= finish - window_start:
                return finish - amount
            amount -= finish - window_start
        if windows:
            last_used = day
        check_idle(calendar, last_used, day)
        day -= timedelta(days=1)


def working_time_between(
    calendar: WorkingCalendar, tz: tzinfo, start: datetime, end: datetime
) -> timedelta:
    total = timedelta(0)
    day = start.astimezone(tz).date()
    last = end.astimezone(tz).date()
    while day <= last:
        for window_start, window_end in _windows(calendar, tz, day):
            overlap = min(window_end, end) - max(window_start, start)
            total += max(overlap, timedelta(0))
        day += timedelta(days=1)
    return total


def day_step(calendar: WorkingCalendar, day: date) -> DayStep:
    if calendar.is_working_day(day):
        return DayStep(day, True)
    return skipped_step(calendar, day)


def walk_working_days(
    calendar: WorkingCalendar, origin: date, count: int, backwards: bool = False
) -> tuple[date, list[DayStep]]:
    """Return the ``count``-th working day strictly after (or before) ``origin``, and the steps."""
    step = timedelta(days=-1 if backwards else 1)
    day = origin
    steps: list[DayStep] = []
    found = 0
    last_working = origin
    while found < count:
        day += step
        current = day_step(calendar, day)
        steps.append(current)
        if current.counted:
            found += 1
            last_working = day
        else:
            check_idle(calendar, last_working, day)
    return day, steps
