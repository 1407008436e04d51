"""Running sweeps on a schedule with APScheduler 3.x.

APScheduler only decides *when* to sweep; what is due lives in the database, so a late or
doubled run is harmless. Jobs are kept in memory (never in a shared job store, because two
processes sharing one APScheduler 3.x job store run most ticks twice). By default the first
run happens as soon as the scheduler starts, which catches up on whatever came due while no
scheduler ran. Missed runs are coalesced into one (``coalesce=True``) and never dropped for
being late (``misfire_grace_time=None``), whereas APScheduler's default grace of one second
drops them.
One sweep never overlaps another in the same process (``max_instances=1``).
"""

from __future__ import annotations

import logging
import re
import signal
import time
from datetime import UTC, datetime, timedelta, tzinfo
from types import FrameType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from case_workflow.calendars import load_zone
from case_workflow.clock import SystemClock, ensure_utc
from case_workflow.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from case_workflow.engine import Engine
    from case_workflow.records import SweepResult

__all__ = ["JOB_ID", "SweepScheduler", "WallClockCronTrigger", "parse_schedule"]

log = logging.getLogger(__name__)

JOB_ID = "case_workflow.sweep"

_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_ONE_MICROSECOND = timedelta(microseconds=1)
_ONE_SECOND = timedelta(seconds=1)
# A cron expression matches at most once a second, so even "* * * * *" finds a wall time past
# the start within 3,600 candidates (one repeated hour). The bound only guards against a loop.
_MAX_CANDIDATES = 100_000


class WallClockCronTrigger(BaseTrigger):  # type: ignore[misc]
    """A five-field cron schedule read on the wall clock of ``zone``, once per wall time.

    APScheduler 3.11's own CronTrigger with a ``zoneinfo`` zone fires twice for a time inside
    an hour that the clock repeats. It can also skip a whole day after a clock change, because
    its day step adds 24 hours in UTC. With Africa/Casablanca in 2024, "30 2 * * *" ran twice
    on 10 March and "0 0 * * *" never ran on 15 April. This trigger matches the cron fields on naive
    local time, where no clock change exists, and then maps each matching wall time to one
    instant:

    - a wall time that occurs twice fires at its first occurrence only;
    - a wall time that does not exist (inside a gap) fires as far after the gap's start as it
      would have been after the gap's first minute, so 02:30 in a 02:00-to-03:00 gap fires
      at 03:30.

    Fire times therefore strictly increase, and a daily expression fires once per local date.
    """

    def __init__(self, expression: str, zone: ZoneInfo) -> None:
        from apscheduler.triggers.cron import CronTrigger

        self.expression = expression
        self.timezone = zone
        # Fields evaluated in UTC, which has no clock changes, on naive wall times.
        self._fields = CronTrigger.from_crontab(expression, timezone=UTC)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """Return the first instant after ``previous_fire_time`` (or from ``now``) to fire."""
        if previous_fire_time is not None:
            # Strictly after the previous run, even when ``now`` is later: the scheduler
            # enumerates missed runs this way before coalescing them.
            start = ensure_utc(previous_fire_time) + _ONE_MICROSECOND
        else:
            start = ensure_utc(now)
        probe = start.astimezone(self.timezone).replace(tzinfo=UTC)
        for _ in range(_MAX_CANDIDATES):
            wall: datetime | None = self._fields.get_next_fire_time(None, probe)
            if wall is None:
                return None
            # fold=0 picks the first occurrence of a repeated time and, for a time inside a
            # gap, the offset in force before the gap (which lands after the gap).
            instant = wall.replace(tzinfo=self.timezone, fold=0).astimezone(UTC)
            if instant >= start:
                return instant.astimezone(self.timezone)
            probe = wall + _ONE_SECOND
        raise AssertionError(f"no fire time for {self} within {_MAX_CANDIDATES} candidates")

    def __str__(self) -> str:
        return f"cron[{self.expression}] in {self.timezone}"

    def __repr__(self) -> str:
        return f"<WallClockCronTrigger ({self.expression!r}, timezone={str(self.timezone)!r})>"


def parse_schedule(schedule: str, timezone: str) -> Any:
    """Turn ``"every 15 minutes"`` or a five-field cron expression into an APScheduler trigger.

    Intervals count elapsed time, so clock changes do not affect them. Cron expressions are
    read on the wall clock of ``timezone`` (the workflow's): ``"0 7 * * *"`` means 07:00 local
    time on every day, clock changes included (see :class:`WallClockCronTrigger`).
    """
    from apscheduler.triggers.interval import IntervalTrigger

    text = schedule.strip().lower()
    zone = load_zone(timezone)
    match = _INTERVAL.match(text)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)[0]]
        if seconds <= 0:
            raise InvalidInput(f"schedule {schedule!r} has a zero interval; use at least 1s")
        return IntervalTrigger(seconds=seconds, timezone=zone)
    try:
        return WallClockCronTrigger(schedule.strip(), zone)
    except ValueError as error:
        raise InvalidInput(
            f"invalid schedule {schedule!r} ({error}); write 'every 15 minutes' or a cron "
            "expression with five fields such as '0 7 * * 1-5'"
        ) from None


class SweepScheduler:
    """Runs ``engine.sweep()`` on a schedule, in the background or in the foreground.

    With ``catch_up`` (the default) the first sweep runs at ``first_run``, or as soon as the
    scheduler starts, and later ones follow the schedule. A ``first_run`` in the past runs
    once: the runs missed since then are coalesced. In the foreground, :meth:`start` blocks
    until SIGTERM or SIGINT, lets a running sweep finish and returns.

    ``after_sweep``, when given, is called in the sweep's thread after every run with the
    result (None when the sweep raised) and the run's duration in seconds. The metrics of
    :mod:`case_workflow.metrics` use it. An error it raises is logged and does not stop the
    scheduler.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        schedule: str,
        timezone: str,
        background: bool = True,
        catch_up: bool = True,
        first_run: datetime | None = None,
        after_sweep: Callable[[SweepResult | None, float], None] | None = None,
    ) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.schedulers.blocking import BlockingScheduler

        self.engine = engine
        self.schedule = schedule
        self.runs = 0
        self._background = background
        self._catch_up = catch_up
        self._first_run = ensure_utc(first_run) if first_run is not None else None
        self._after_sweep = after_sweep
        trigger = parse_schedule(schedule, timezone)
        scheduler_class = BackgroundScheduler if background else BlockingScheduler
        # The scheduler's own clock runs in UTC; each trigger carries the workflow's zone.
        zone: tzinfo = UTC
        self._scheduler = scheduler_class(timezone=zone)
        self._scheduler.add_job(
            self._run,
            trigger,
            id=JOB_ID,
            name=f"case_workflow sweep ({schedule})",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    @property
    def apscheduler(self) -> Any:
        """The underlying APScheduler 3.x scheduler (for listeners and inspection)."""
        return self._scheduler

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def job(self) -> Any:
        """Return the APScheduler job that runs the sweeps."""
        return self._scheduler.get_job(JOB_ID)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            result = self.engine.sweep()
        except Exception:
            # A failed sweep leaves its actions pending; the next run retries them.
            log.exception("sweep run failed; its actions stay pending for the next run")
            self._notify(None, time.perf_counter() - started)
            return
        self.runs += 1
        log.info(
            "sweep run %d at %s: %d reminders, %d escalations, %d skipped, %d failed, "
            "%d letters, %d retried, in %.3fs",
            self.runs,
            result.now.isoformat(),
            result.reminders,
            result.escalations,
            result.skipped,
            result.failed,
            result.letters,
            result.retried,
            time.perf_counter() - started,
        )
        self._notify(result, time.perf_counter() - started)

    def _notify(self, result: SweepResult | None, seconds: float) -> None:
        if self._after_sweep is None:
            return
        try:
            self._after_sweep(result, seconds)
        except Exception:
            log.exception("after-sweep hook %r failed; the scheduler goes on", self._after_sweep)

    def run_now(self) -> None:
        """Run one sweep at once in the calling thread."""
        self._run()

    def start(self) -> None:
        """Start the scheduler; in the foreground this blocks until SIGINT or SIGTERM."""
        if self._catch_up:
            first = self._first_run if self._first_run is not None else SystemClock().now()
            self._scheduler.modify_job(JOB_ID, next_run_time=first)
        log.info("sweep scheduler starting: %s", self.schedule)
        if self._background:
            self._scheduler.start()
            return
        previous = self._install_signal_handlers()
        try:
            self._scheduler.start()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        log.info("sweep scheduler stopped after %d runs", self.runs)

    def _install_signal_handlers(self) -> dict[int, Any]:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, stopping the sweep scheduler", signal.Signals(signum).name)
            if self._scheduler.running:
                # A sweep in progress finishes in its worker thread before the process exits.
                self._scheduler.shutdown(wait=False)

        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
        return previous

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait`` let a running sweep finish first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
            log.info("sweep scheduler stopped after %d runs", self.runs)
