"""The simulated year: actors act in office hours on working days, the sweep runs daily."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from case_workflow import Engine, SimulatedClock
from case_workflow.calendars import load_calendar, load_zone
from case_workflow.simulation import Figures, SimulationStats, simulate_year

ZONE = load_zone("Africa/Casablanca")
CALENDAR = load_calendar("ma-public-administration")


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, SimulationStats]]:
    folder: Path = tmp_path_factory.mktemp("simulation")
    clock = SimulatedClock(datetime(2024, 1, 1, tzinfo=ZONE))
    url = f"sqlite:///{folder}/year.db"
    with Engine(url, clock=clock, create_schema=True) as engine:
        stats = simulate_year(
            engine,
            clock,
            CALENDAR,
            ZONE,
            year=2024,
            dossiers=60,
            rng=random.Random(5),
            figures=Figures(unanswered_share=0.5),
        )
        yield engine, stats


def test_simulation_files_all(year: tuple[Engine, SimulationStats]) -> None:
    engine, stats = year
    assert stats.filed == 60
    assert len(engine.references(limit=100)) == 60
    assert stats.fired["start_review"] > 0


def test_simulation_sweeps_each_working_day(year: tuple[Engine, SimulationStats]) -> None:
    _engine, stats = year
    days = [date(2024, 1, 1) + timedelta(days=n) for n in range(366)]
    working = sum(CALENDAR.is_working_day(day) for day in days)
    # One sweep per working day, plus the closing sweep at 31 December 23:59:59.
    assert stats.sweeps == working + 1
    assert stats.end == datetime(2024, 12, 31, 23, 59, 59, tzinfo=ZONE).astimezone(UTC)
    assert stats.escalations > 0


def test_simulation_actors_in_office_hours(year: tuple[Engine, SimulationStats]) -> None:
    engine, _stats = year
    for reference in engine.references(limit=100):
        for event in engine.history(reference):
            if event.role == "system":
                continue
            local = event.occurred_at.astimezone(ZONE)
            assert CALENDAR.is_working_day(local.date()), (reference, event.seq)
            assert time(8, 30) <= local.time() < time(16, 30), (reference, event.seq)


def test_simulation_sweeps_at_seven(year: tuple[Engine, SimulationStats]) -> None:
    engine, _stats = year
    swept = [
        event
        for reference in engine.references(limit=100)
        for event in engine.history(reference)
        if event.role == "system"
    ]
    assert swept
    for event in swept:
        local = event.occurred_at.astimezone(ZONE)
        assert local.time() == time(7, 0) or local == datetime(
            2024, 12, 31, 23, 59, 59, tzinfo=ZONE
        )
