"""Running sweeps on a schedule with APScheduler 3.x.

APScheduler only decides *when* to sweep; what is due lives in the database, so a late or
doubled run is harmless. Jobs are kept in memory (never in a shared job store), a run missed
while the process was down is run once on start-up (``coalesce``, no misfire grace limit),
and one sweep never overlaps another in the same process.
"""

from __future__ import annotations

import logging
import re
import signal
import time
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from case_workflow.calendars import load_zone
from case_workflow.errors import InvalidInput

if TYPE_CHECKING:
    from case_workflow.engine import Engine

__all__ = ["SweepScheduler", "parse_schedule"]

log = logging.getLogger(__name__)

_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|sec|seconds?|m|min|minutes?|h|hours?)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_schedule(schedule: str, timezone: str) -> Any:
    """Turn ``"every 15 minutes"`` or a five-field cron expression into an APScheduler trigger.

    Cron expressions are read in ``timezone`` (the workflow's), so ``"0 7 * * *"`` means
    07:00 local time on every day, clock changes included.
    """
    from apscheduler.triggers.cron import CronTrigger
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
        return CronTrigger.from_crontab(schedule, timezone=zone)
    except ValueError as error:
        raise InvalidInput(
            f"invalid schedule {schedule!r} ({error}); write 'every 15 minutes' or a cron "
            "expression with five fields such as '0 7 * * 1-5'"
        ) from None


class SweepScheduler:
    """Runs ``engine.sweep()`` on a schedule, in the background or in the foreground."""

    def __init__(
        self, engine: Engine, *, schedule: str, timezone: str, background: bool = True
    ) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.schedulers.blocking import BlockingScheduler

        self.engine = engine
        self.runs = 0
        self._background = background
        trigger = parse_schedule(schedule, timezone)
        scheduler_class = BackgroundScheduler if background else BlockingScheduler
        self._scheduler = scheduler_class(timezone=load_zone(timezone))
        self._scheduler.add_job(
            self._run,
            trigger,
            id="case_workflow.sweep",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            result = self.engine.sweep()
        except Exception:
            # A failed sweep leaves its actions pending; the next run retries them.
            log.exception("sweep failed; its actions stay pending for the next run")
            return
        self.runs += 1
        log.info(
            "scheduled sweep: %d reminders, %d escalations, %d skipped, %d letters, %s",
            result.reminders,
            result.escalations,
            result.skipped,
            result.letters,
            timedelta(seconds=round(time.perf_counter() - started, 3)),
        )

    def run_now(self) -> None:
        """Run one sweep at once (a catch-up before the schedule starts)."""
        self._run()

    def start(self) -> None:
        """Start the scheduler; in the foreground this blocks until SIGINT or SIGTERM."""
        if not self._background:
            self._install_signal_handlers()
        log.info("sweep scheduler starting")
        self._scheduler.start()

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s, stopping the sweep scheduler", signal.Signals(signum).name)
            self._scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait`` let a running sweep finish first."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        log.info("sweep scheduler stopped after %d runs", self.runs)
