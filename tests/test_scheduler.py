"""Scheduler: schedules in local time across clock changes, catch-up runs, start and stop."""

from __future__ import annotations

import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED
from apscheduler.triggers.interval import IntervalTrigger

from case_workflow import Complainant, Engine, InvalidInput, SimulatedClock
from case_workflow.calendars import load_zone
from case_workflow.scheduler import SweepScheduler, WallClockCronTrigger, parse_schedule
from tests.conftest import MEDIATOR_AGENT

ZONE_NAME = "Africa/Casablanca"
ZONE = load_zone(ZONE_NAME)
RESPONDENT = "al-omrane-rabat-sale-kenitra"
ROOT = Path(__file__).resolve().parents[1]
# A bound on every wait for another thread or process; no test asserts how long anything took.
WAIT_SECONDS = 60


def fire_times(schedule: str, start: datetime, end: datetime) -> list[datetime]:
    """Return the successive fire times of ``schedule`` from ``start`` up to ``end``."""
    trigger = parse_schedule(schedule, ZONE_NAME)
    times: list[datetime] = []
    previous: datetime | None = None
    now = start
    while True:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire >= end:
            return times
        times.append(fire)
        previous = now = fire


def local_dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.fixture
def sqlite_engine(tmp_path: Path, clock: SimulatedClock) -> Iterator[Engine]:
    with Engine(f"sqlite:///{tmp_path}/scheduler.db", clock=clock, create_schema=True) as built:
        yield built


def transmit_one(engine: Engine, clock: SimulatedClock) -> str:
    reference = engine.file(
        "mediator-alomrane",
        actor=MEDIATOR_AGENT,
        complainant=Complainant("Citoyen 00042"),
        subject="Titre foncier non délivré",
        respondent=RESPONDENT,
    ).reference
    engine.fire(reference, "start_review", actor=MEDIATOR_AGENT)
    engine.fire(reference, "transmit", actor=MEDIATOR_AGENT, payload={"respondent": RESPONDENT})
    return reference


class RunWatcher:
    """Collects APScheduler job events so a test can wait for a run without sleeping."""

    def __init__(self, scheduler: SweepScheduler) -> None:
        self.executed = threading.Event()
        self.submitted: list[list[datetime]] = []
        self.errors: list[BaseException] = []
        scheduler.apscheduler.add_listener(
            self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_SUBMITTED
        )

    def _on_event(self, event: Any) -> None:
        if event.code == EVENT_JOB_SUBMITTED:
            self.submitted.append(list(event.scheduled_run_times))
            return
        if event.code == EVENT_JOB_ERROR:
            self.errors.append(event.exception)
        self.executed.set()


# -- parsing ------------------------------------------------------------------------------


def test_interval_schedule() -> None:
    trigger = parse_schedule("every 15 minutes", ZONE_NAME)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=15)


@pytest.mark.parametrize("text", ["every 1 second", "every 30s", "every 2 hours", "every 5 min"])
def test_interval_units(text: str) -> None:
    assert isinstance(parse_schedule(text, ZONE_NAME), IntervalTrigger)


def test_cron_schedule_uses_wall_clock() -> None:
    trigger = parse_schedule("0 7 * * 1-5", ZONE_NAME)
    assert isinstance(trigger, WallClockCronTrigger)
    assert str(trigger.timezone) == ZONE_NAME


@pytest.mark.parametrize("text", ["every 0 minutes", "now and then", "61 7 * * *", "0 7 * *"])
def test_invalid_schedule(text: str) -> None:
    with pytest.raises(InvalidInput, match="schedule"):
        parse_schedule(text, ZONE_NAME)


def test_unknown_time_zone() -> None:
    with pytest.raises(InvalidInput, match="Mars/Olympus"):
        parse_schedule("0 7 * * *", "Mars/Olympus")


# -- clock changes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule", ["30 2 * * *", "0 2 * * *", "0 3 * * *", "0 0 * * *", "0 7 * * *", "59 23 * * *"]
)
def test_daily_once_per_local_date(schedule: str) -> None:
    # Africa/Casablanca in 2024: 10 March 03:00 back to 02:00 (UTC+1 to UTC+0, the hour
    # 02:00-03:00 is repeated); 14 April 02:00 forward to 03:00 (that hour does not exist).
    start = datetime(2024, 3, 1, tzinfo=ZONE)
    end = datetime(2024, 5, 1, tzinfo=ZONE)
    times = fire_times(schedule, start, end)
    per_date = Counter(moment.astimezone(ZONE).date() for moment in times)
    expected = local_dates(date(2024, 3, 1), date(2024, 4, 30))
    assert sorted(per_date) == expected
    assert set(per_date.values()) == {1}
    assert times == sorted(set(times))


def test_daily_in_repeated_hour_runs_at_first_occurrence() -> None:
    times = fire_times(
        "30 2 * * *", datetime(2024, 3, 9, tzinfo=ZONE), datetime(2024, 3, 12, tzinfo=ZONE)
    )
    assert [moment.astimezone(UTC) for moment in times] == [
        datetime(2024, 3, 9, 1, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 1, 30, tzinfo=UTC),
        datetime(2024, 3, 11, 2, 30, tzinfo=UTC),
    ]


def test_daily_in_missing_hour_runs_after_gap() -> None:
    times = fire_times(
        "30 2 * * *", datetime(2024, 4, 13, tzinfo=ZONE), datetime(2024, 4, 16, tzinfo=ZONE)
    )
    local = [moment.astimezone(ZONE) for moment in times]
    assert [(moment.date(), moment.time()) for moment in local] == [
        (date(2024, 4, 13), time(2, 30)),
        (date(2024, 4, 14), time(3, 30)),
        (date(2024, 4, 15), time(2, 30)),
    ]


def test_midnight_after_spring_forward_not_skipped() -> None:
    times = fire_times(
        "0 0 * * *", datetime(2024, 4, 13, 12, tzinfo=ZONE), datetime(2024, 4, 17, tzinfo=ZONE)
    )
    assert [moment.astimezone(ZONE).date() for moment in times] == [
        date(2024, 4, 14),
        date(2024, 4, 15),
        date(2024, 4, 16),
    ]


def test_half_hourly_never_repeats_an_instant() -> None:
    times = fire_times(
        "*/30 * * * *", datetime(2024, 3, 9, tzinfo=ZONE), datetime(2024, 4, 16, tzinfo=ZONE)
    )
    assert times == sorted(set(times))
    instants = [moment.astimezone(UTC) for moment in times]
    gaps = {later - earlier for earlier, later in itertools.pairwise(instants)}
    # Half an hour apart, except across the repeated hour (skipped once) and the gap.
    assert gaps <= {timedelta(minutes=30), timedelta(minutes=90)}


def test_interval_ignores_clock_changes() -> None:
    trigger = parse_schedule("every 1 hour", ZONE_NAME)
    # An interval trigger starts one interval after it is built, so follow it from a run.
    times = [datetime(2024, 3, 10, tzinfo=ZONE)]
    while times[-1] < datetime(2024, 3, 11, tzinfo=ZONE):
        times.append(trigger.get_next_fire_time(times[-1], times[-1]))
    instants = [moment.astimezone(UTC) for moment in times]
    gaps = {later - earlier for earlier, later in itertools.pairwise(instants)}
    assert gaps == {timedelta(hours=1)}
    # 10 March 2024 lasts 25 hours in Casablanca: the hour 02:00-03:00 is repeated.
    assert len(times) == 26


# -- catch-up after downtime --------------------------------------------------------------


def test_job_coalesces_and_never_drops_late_runs(sqlite_engine: Engine) -> None:
    scheduler = SweepScheduler(sqlite_engine, schedule="every 5 minutes", timezone=ZONE_NAME)
    job = scheduler.job()
    assert job.coalesce is True
    assert job.misfire_grace_time is None
    assert job.max_instances == 1


def test_missed_runs_enumerate_then_coalesce() -> None:
    # What the scheduler does when it wakes up three days late: it lists every missed run
    # time of the trigger, then (with coalesce) submits only the last one.
    trigger = parse_schedule("0 7 * * *", ZONE_NAME)
    missed = fire_times(
        "0 7 * * *", datetime(2024, 4, 12, 8, tzinfo=ZONE), datetime(2024, 4, 15, 9, tzinfo=ZONE)
    )
    assert len(missed) == 3
    following = trigger.get_next_fire_time(missed[-1], datetime(2024, 4, 15, 9, tzinfo=ZONE))
    assert following == datetime(2024, 4, 16, 7, tzinfo=ZONE)


def test_past_first_run_runs_once(sqlite_engine: Engine, clock: SimulatedClock) -> None:
    reference = transmit_one(sqlite_engine, clock)
    clock.set(datetime(2024, 6, 1, tzinfo=UTC))
    started = datetime.now(UTC)
    scheduler = SweepScheduler(
        sqlite_engine,
        schedule="every 1 hour",
        timezone=ZONE_NAME,
        first_run=started - timedelta(days=3),
    )
    watcher = RunWatcher(scheduler)
    scheduler.start()
    try:
        assert watcher.executed.wait(WAIT_SECONDS)
        next_run = scheduler.job().next_run_time
    finally:
        scheduler.shutdown()
    assert watcher.errors == []
    assert len(watcher.submitted) == 1
    assert len(watcher.submitted[0]) == 1
    assert scheduler.runs == 1
    assert next_run > started
    triggers = [event.trigger for event in sqlite_engine.history(reference)]
    assert triggers.count("reminder") == 1
    assert triggers.count("escalation") == 1
    assert triggers.count("escalate") == 1


def test_no_catch_up_waits_for_schedule(sqlite_engine: Engine) -> None:
    scheduler = SweepScheduler(
        sqlite_engine, schedule="every 1 hour", timezone=ZONE_NAME, catch_up=False
    )
    scheduler.start()
    try:
        next_run = scheduler.job().next_run_time
    finally:
        scheduler.shutdown()
    assert next_run > datetime.now(UTC) + timedelta(minutes=30)
    assert scheduler.runs == 0


# -- embedding ----------------------------------------------------------------------------


def test_engine_start_scheduler_sweeps_then_stops(
    sqlite_engine: Engine, clock: SimulatedClock
) -> None:
    reference = transmit_one(sqlite_engine, clock)
    clock.set(datetime(2024, 3, 8, tzinfo=UTC))
    scheduler = sqlite_engine.start_scheduler("every 1 hour")
    watcher = RunWatcher(scheduler)
    try:
        assert scheduler.running
        # The catch-up run at start may finish before the listener is added; run_now covers it.
        if not watcher.executed.wait(WAIT_SECONDS):
            scheduler.run_now()
    finally:
        scheduler.shutdown()
    assert not scheduler.running
    assert scheduler.runs >= 1
    assert [event.trigger for event in sqlite_engine.history(reference)][-1] == "reminder"
    threads = [thread for thread in threading.enumerate() if thread.name == "APScheduler"]
    assert threads == []


FOREGROUND_SCRIPT = """
import logging
import sys

from case_workflow import Engine
from case_workflow.scheduler import SweepScheduler

logging.basicConfig(
    level=logging.INFO, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s"
)
engine = Engine(sys.argv[1], create_schema=True)
SweepScheduler(
    engine, schedule="every 1 second", timezone="Africa/Casablanca", background=False
).start()
engine.close()
print("script finished", flush=True)
"""


def read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put("")


def wait_for_line(lines: queue.Queue[str], needle: str, seen: list[str]) -> bool:
    while True:
        try:
            line = lines.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            return False
        if line == "":
            return False
        seen.append(line)
        if needle in line:
            return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_foreground_stops_on_signal(tmp_path: Path, signum: signal.Signals) -> None:
    script = tmp_path / "sweeper.py"
    script.write_text(FOREGROUND_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    process = subprocess.Popen(
        [sys.executable, "-u", str(script), f"sqlite:///{tmp_path}/foreground.db"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        assert wait_for_line(lines, "case_workflow.scheduler INFO sweep run 1 ", seen), seen
        process.send_signal(signum)
        returncode = process.wait(timeout=WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(WAIT_SECONDS)
    while not lines.empty():
        seen.append(lines.get())
    run_lines = [line for line in seen if "INFO sweep run" in line]
    assert returncode == 0, seen
    assert "0 reminders, 0 escalations" in run_lines[0]
    assert run_lines[0].endswith("s")
    assert any(f"received {signum.name}" in line for line in seen)
    assert any("stopped after" in line for line in seen)
    assert "script finished" in seen
    assert not any("Traceback" in line for line in seen)
