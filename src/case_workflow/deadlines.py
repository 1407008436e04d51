"""Due-date arithmetic on working calendars, with an explanation of every result.

Conventions (the reports and the tests rely on them):

- "N calendar_days" fall due on the local date of the start plus N, at 23:59:59 local time.
- "N working_days" fall due on the N-th working day strictly after the local date of the start,
  at 23:59:59 local time.
- ``at=DueTime.SAME_TIME`` keeps the local time of day of the start instead of 23:59:59.
- ``roll_forward`` moves a calendar-day due date that lands on a non-working day to the next
  working day.
- "N working_hours" count only time inside the day's working-hour windows (the Ramadan
  schedule during Ramadan); a start outside them begins at the next window.
- "N hours" are elapsed clock hours.

Day arithmetic works on local dates, which are then converted to UTC with the zone, so a
clock change moves the UTC result by an hour and never shifts the local date. Every instant
returned is an aware UTC datetime.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from case_workflow.calendars import Holiday, HolidayStatus, WorkingCalendar
from case_workflow.definition.model import DueTime
from case_workflow.durations import Duration, TimeUnit
from case_workflow.errors import InvalidInput
from case_workflow.explain import DayStep, Explanation, Extension, Pause
from case_workflow.working_time import (
    add_working_time,
    check_idle,
    day_step,
    local_instant,
    skipped_step,
    subtract_working_time,
    walk_working_days,
    working_time_between,
)
from case_workflow.zones import format_utc_offset, resolve_zone, zone_name

__all__ = [
    "DayStep",
    "DueDate",
    "Explanation",
    "Extension",
    "Pause",
    "compute_due",
    "extend",
    "extend_due",
    "remaining",
    "resume",
    "shift",
]

END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True, slots=True)
class DueDate:
    """A computed due instant (UTC), its explanation, and whether it rests on estimated dates."""

    due_at: datetime
    explanation: Explanation
    rests_on_estimate: bool


def compute_due(
    start: datetime,
    within: Duration,
    calendar: WorkingCalendar,
    zone: tzinfo | str,
    *,
    at: DueTime = DueTime.END_OF_DAY,
    roll_forward: bool = False,
) -> DueDate:
    """Compute when a delay of ``within`` that starts at ``start`` falls due.

    Raise :class:`InvalidInput` for a naive ``start``, a negative amount or an unknown zone.
    """
    tz = resolve_zone(zone)
    start_utc = _to_utc(start, "start")
    _check(within)
    local = start_utc.astimezone(tz)
    amount = within.amount
    steps: list[DayStep] = []
    rolled_from: date | None = None
    window: tuple[date, date] | None = None

    if within.unit is TimeUnit.CALENDAR_DAYS:
        due_date = local.date() + timedelta(days=amount)
        steps = [DayStep(local.date() + timedelta(days=n), True) for n in range(1, amount + 1)]
        if roll_forward:
            unrolled = due_date
            while not calendar.is_working_day(due_date):
                steps.append(skipped_step(calendar, due_date))
                due_date += timedelta(days=1)
                check_idle(calendar, unrolled, due_date)
            rolled_from = unrolled if due_date != unrolled else None
            window = (unrolled - timedelta(days=1), due_date + timedelta(days=1))
        due_at = _due_instant(due_date, local, at, tz)
    elif within.unit is TimeUnit.WORKING_DAYS:
        due_date, steps = walk_working_days(calendar, local.date(), amount)
        due_at = _due_instant(due_date, local, at, tz)
        window = (local.date() - timedelta(days=1), due_date + timedelta(days=1))
    elif within.unit is TimeUnit.WORKING_HOURS:
        due_at, steps = add_working_time(calendar, tz, start_utc, timedelta(hours=amount))
        due_date = due_at.astimezone(tz).date()
        window = (local.date() - timedelta(days=1), due_date + timedelta(days=1))
    else:
        due_at = start_utc + timedelta(hours=amount)

    # Estimates can be a day off either way, so one day beyond the counted span also matters.
    # NOTE: an estimated Ramadan start or end changes working hours but is not flagged here.
    estimated = _estimated_between(calendar, window) if window else ()
    explanation = Explanation(
        start=start_utc,
        start_local=local,
        duration=within,
        timezone=zone_name(tz),
        utc_offset_at_start=format_utc_offset(local),
        utc_offset_at_due=format_utc_offset(due_at.astimezone(tz)),
        steps=tuple(steps),
        pauses=(),
        extensions=(),
        rolled_forward_from=rolled_from,
        due_at=due_at,
        due_local=due_at.astimezone(tz),
        estimated_holidays=estimated,
        calendar=calendar.name,
        at=at,
    )
    return DueDate(due_at, explanation, bool(estimated))


def shift(
    moment: datetime,
    duration: Duration,
    calendar: WorkingCalendar,
    zone: tzinfo | str,
    *,
    backwards: bool = False,
) -> datetime:
    """Move ``moment`` by ``duration``, forwards or backwards, and return the UTC instant.

    Day units keep the local time of day, so 23:59:59 stays 23:59:59. Working days land on the
    N-th working day strictly after (or before) the local date. A zero amount returns
    ``moment`` unchanged. Reminder fire times and escalation levels are computed with it.
    """
    _check(duration)
    if duration.amount == 0:
        return moment
    tz = resolve_zone(zone)
    moment_utc = _to_utc(moment, "moment")
    local = moment_utc.astimezone(tz)
    sign = -1 if backwards else 1
    if duration.unit is TimeUnit.CALENDAR_DAYS:
        target = local.date() + timedelta(days=sign * duration.amount)
        return local_instant(target, local.timetz().replace(tzinfo=None), tz, local.fold)
    if duration.unit is TimeUnit.WORKING_DAYS:
        target, _ = walk_working_days(calendar, local.date(), duration.amount, backwards)
        return local_instant(target, local.timetz().replace(tzinfo=None), tz, local.fold)
    if duration.unit is TimeUnit.WORKING_HOURS:
        amount = timedelta(hours=duration.amount)
        if backwards:
            return subtract_working_time(calendar, tz, moment_utc, amount)
        return add_working_time(calendar, tz, moment_utc, amount)[0]
    return moment_utc + sign * timedelta(hours=duration.amount)


def remaining(
    due_at: datetime,
    paused_at: datetime,
    within: Duration,
    calendar: WorkingCalendar,
    zone: tzinfo | str,
) -> Duration:
    """Return what is left of a deadline when its clock stops, in the unit of ``within``.

    Working days: the working days in (local date of the pause, local due date]. Calendar days:
    the due date minus the pause date. Working and clock hours: the time left, rounded up to
    whole hours. Zero when the pause comes after the due date.
    """
    tz = resolve_zone(zone)
    due_utc = _to_utc(due_at, "due_at")
    paused_utc = _to_utc(paused_at, "paused_at")
    due_date = due_utc.astimezone(tz).date()
    paused_date = paused_utc.astimezone(tz).date()
    unit = within.unit
    if unit is TimeUnit.CALENDAR_DAYS:
        return Duration(max(0, (due_date - paused_date).days), unit)
    if unit is TimeUnit.WORKING_DAYS:
        count = 0
        day = paused_date + timedelta(days=1)
        while day <= due_date:
            count += calendar.is_working_day(day)
            day += timedelta(days=1)
        return Duration(count, unit)
    if unit is TimeUnit.WORKING_HOURS:
        left = working_time_between(calendar, tz, paused_utc, due_utc)
    else:
        left = max(timedelta(0), due_utc - paused_utc)
    # NOTE: Duration stores whole hours, so a part hour left is rounded up: the respondent gains
    # up to an hour per pause. A seconds unit in Duration would make pause and resume exact.
    return Duration(math.ceil(left.total_seconds() / 3600), unit)


def resume(
    resumed_at: datetime,
    left: Duration,
    calendar: WorkingCalendar,
    zone: tzinfo | str,
    *,
    at: DueTime = DueTime.END_OF_DAY,
    roll_forward: bool = False,
    paused_at: datetime | None = None,
) -> DueDate:
    """Restart a paused deadline with ``left`` remaining (see :func:`remaining`).

    ``left`` working days fall due on that many working days strictly after the local date of
    ``resumed_at``, so a pause of k working days moves the due date by exactly k working days.
    With ``at=SAME_TIME`` the due time keeps the time of day of ``resumed_at``.
    """
    due = compute_due(resumed_at, left, calendar, zone, at=at, roll_forward=roll_forward)
    pause = Pause(
        paused_at=_to_utc(paused_at, "paused_at") if paused_at is not None else None,
        resumed_at=due.explanation.start,
        left=left,
    )
    explanation = dataclasses.replace(due.explanation, pauses=(pause,))
    return DueDate(due.due_at, explanation, due.rests_on_estimate)


def extend(
    due_at: datetime, extra: Duration, calendar: WorkingCalendar, zone: tzinfo | str
) -> datetime:
    """Return the due instant moved later by ``extra`` (see :func:`shift`)."""
    return _to_utc(shift(due_at, extra, calendar, zone), "due_at")


def extend_due(
    due: DueDate, extra: Duration, calendar: WorkingCalendar, zone: tzinfo | str
) -> DueDate:
    """Return ``due`` extended by ``extra``, with the extension recorded in its explanation."""
    tz = resolve_zone(zone)
    new_due = extend(due.due_at, extra, calendar, zone)
    old = due.explanation
    steps = old.steps
    estimated = list(old.estimated_holidays)
    if extra.unit in (TimeUnit.WORKING_DAYS, TimeUnit.WORKING_HOURS):
        first = due.due_at.astimezone(tz).date()
        last = new_due.astimezone(tz).date()
        steps = steps + tuple(
            day_step(calendar, first + timedelta(days=n)) for n in range(1, (last - first).days + 1)
        )
        window = (first, last + timedelta(days=1))
        estimated.extend(h for h in _estimated_between(calendar, window) if h not in estimated)
    explanation = dataclasses.replace(
        old,
        steps=steps,
        extensions=(*old.extensions, Extension(due.due_at, extra, new_due)),
        due_at=new_due,
        due_local=new_due.astimezone(tz),
        utc_offset_at_due=format_utc_offset(new_due.astimezone(tz)),
        estimated_holidays=tuple(estimated),
    )
    return DueDate(new_due, explanation, bool(estimated))


def _check(duration: Duration) -> None:
    if not isinstance(duration, Duration) or duration.amount < 0:
        raise InvalidInput(
            f"invalid duration {duration!r}; pass a Duration with a whole number of 0 or more, "
            "for example Duration.parse('60 calendar_days')"
        )


def _to_utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidInput(
            f"invalid {what} {moment!r}: it has no time zone; pass an aware datetime such as "
            "datetime(2024, 6, 10, 13, 0, tzinfo=UTC)"
        )
    return moment.astimezone(UTC)


def _due_instant(due_date: date, local_start: datetime, at: DueTime, tz: tzinfo) -> datetime:
    if at is DueTime.SAME_TIME:
        if due_date == local_start.date():
            return local_start.astimezone(UTC)
        clock = local_start.timetz().replace(tzinfo=None)
        return local_instant(due_date, clock, tz, local_start.fold)
    # fold=1 picks the later of two 23:59:59 when the clock goes back around midnight.
    return local_instant(due_date, END_OF_DAY, tz, fold=1)


def _estimated_between(calendar: WorkingCalendar, window: tuple[date, date]) -> tuple[Holiday, ...]:
    return tuple(
        holiday
        for holiday in calendar.holidays_between(*window)
        if holiday.status is HolidayStatus.ESTIMATED
    )
