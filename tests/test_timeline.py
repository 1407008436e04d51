"""Deadline explanations and calendar changes, replayed from dossier histories."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from case_workflow import Actor, Complainant, Engine, InvalidInput, SimulatedClock, load_workflow
from case_workflow.calendars import HolidayChange

WORKFLOW = Path(__file__).parent / "workflows" / "working_days.yaml"
AGENT = Actor("Agent", "agent", "office")
CASABLANCA = ZoneInfo("Africa/Casablanca")


def local(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=CASABLANCA)


@pytest.fixture
def engine(database_url: str) -> Engine:
    clock = SimulatedClock(local(2024, 6, 1))
    built = Engine(
        database_url, workflows=[load_workflow(WORKFLOW)], clock=clock, create_schema=True
    )
    yield built
    built.close()


def opened(engine: Engine, at: datetime) -> str:
    reference = engine.file(
        "working-days", actor=AGENT, complainant=Complainant("C"), subject="s", at=at
    ).reference
    engine.fire(reference, "open", actor=AGENT, at=at)
    return reference


def paused_then_resumed(engine: Engine) -> str:
    # Opened Mon 10 June 2024; paused Thu 20 June with 4 working days left (21, 24, 25, 26);
    # resumed Tue 25 June, so due on the 4th working day after it: Mon 1 July.
    reference = opened(engine, local(2024, 6, 10))
    engine.fire(reference, "wait", actor=AGENT, at=local(2024, 6, 20))
    engine.fire(reference, "resume", actor=AGENT, at=local(2024, 6, 25))
    return reference


def test_due_after_pause_spanning_eid(engine: Engine) -> None:
    reference = paused_then_resumed(engine)
    (deadline,) = engine.deadlines(reference)
    assert deadline.due_at == datetime(2024, 7, 1, 22, 59, 59, tzinfo=UTC)


def test_explain_names_skipped_days(engine: Engine) -> None:
    reference = paused_then_resumed(engine)
    ((deadline, text),) = engine.explain(reference)
    assert deadline.name == "answer"
    assert "2024-06-15" in text
    assert "Saturday" in text
    assert "Sunday" in text
    assert "Eid al-Adha" in text
    assert "observed" in text
    assert "2024-06-17" in text
    assert "2024-06-18" in text
    assert "paus" in text.lower()
    assert "2024-07-01" in text
    assert "Africa/Casablanca" in text
    assert "+01:00" in text


def test_explain_in_french(engine: Engine) -> None:
    reference = paused_then_resumed(engine)
    ((_deadline, text),) = engine.explain(reference, language="fr")
    assert "samedi" in text
    assert "Délai" in text


def test_explain_unknown_language(engine: Engine) -> None:
    reference = paused_then_resumed(engine)
    with pytest.raises(InvalidInput, match="'xx'"):
        engine.explain(reference, language="xx")


def test_explanation_matches_stored_due(engine: Engine) -> None:
    reference = opened(engine, local(2024, 6, 10))
    engine.fire(reference, "extend", actor=AGENT, payload={"extension": "3 working_days"})
    ((deadline, text),) = engine.explain(reference)
    # 10 working days from Mon 10 June: due Wed 26 June; 3 more: Mon 1 July.
    assert deadline.due_at == datetime(2024, 7, 1, 22, 59, 59, tzinfo=UTC)
    assert "with the current calendar" not in text


def test_added_day_off_moves_open_deadline(engine: Engine) -> None:
    reference = paused_then_resumed(engine)
    result = engine.change_calendar(
        "ma-public-administration",
        HolidayChange("add", date(2024, 6, 27), name="Jour de congé exceptionnel", kind="day_off"),
        actor="admin",
        at=local(2024, 6, 26),
    )
    (deadline,) = engine.deadlines(reference)
    assert deadline.due_at == datetime(2024, 7, 2, 22, 59, 59, tzinfo=UTC)
    assert [moved.reference for moved in result.moved] == [reference]
    last = engine.history(reference)[-1]
    assert last.trigger == "calendar_changed"
    assert last.payload["previous_due_at"] == "2024-07-01T22:59:59+00:00"
    assert last.payload["due_at"] == "2024-07-02T22:59:59+00:00"
    assert engine.verify(reference).ok


def test_change_reschedules_pending_actions(engine: Engine) -> None:
    reference = paused_then_resumed(engine)
    engine.change_calendar(
        "ma-public-administration",
        HolidayChange("add", date(2024, 6, 27), name="Jour férié", kind="holiday"),
        actor="admin",
        at=local(2024, 6, 26),
    )
    (deadline,) = engine.deadlines(reference)
    fire_times = {kind.value: at for kind, _level, at, _status in deadline.actions}
    assert fire_times["escalation"] == datetime(2024, 7, 2, 23, 0, 0, tzinfo=UTC)
    # Two working days before Tue 2 July: Fri 28 June, same local time 23:59:59.
    assert fire_times["reminder"] == datetime(2024, 6, 28, 22, 59, 59, tzinfo=UTC)


def test_acted_on_deadline_is_not_moved(engine: Engine) -> None:
    reference = opened(engine, local(2024, 6, 10))
    # The reminder (two working days before Wed 26 June) fires on Mon 24 June.
    assert engine.sweep(local(2024, 6, 25)).reminders == 1
    result = engine.change_calendar(
        "ma-public-administration",
        HolidayChange("add", date(2024, 6, 25), name="Jour férié", kind="holiday"),
        actor="admin",
        at=local(2024, 6, 25),
    )
    (deadline,) = engine.deadlines(reference)
    assert deadline.due_at == datetime(2024, 6, 26, 22, 59, 59, tzinfo=UTC)
    assert result.kept_acted_on == [reference]
    ((_deadline, text),) = engine.explain(reference)
    assert "kept" in text


def test_change_outside_window_moves_nothing(engine: Engine) -> None:
    reference = opened(engine, local(2024, 6, 10))
    before = engine.get(reference).version
    result = engine.change_calendar(
        "ma-public-administration",
        HolidayChange("add", date(2024, 9, 2), name="Jour férié", kind="holiday"),
        actor="admin",
    )
    assert result.moved == []
    assert engine.get(reference).version == before


def test_removed_holiday_brings_due_earlier(engine: Engine) -> None:
    reference = opened(engine, local(2024, 6, 10))
    engine.change_calendar(
        "ma-public-administration",
        HolidayChange("remove", date(2024, 6, 18)),
        actor="admin",
        at=local(2024, 6, 12),
    )
    (deadline,) = engine.deadlines(reference)
    assert deadline.due_at == datetime(2024, 6, 25, 22, 59, 59, tzinfo=UTC)


def test_unknown_calendar_rejected(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="ma-public-administration"):
        engine.change_calendar(
            "nowhere", HolidayChange("add", date(2024, 6, 27), name="x"), actor="admin"
        )


def test_other_engine_sees_change_after_refresh(engine: Engine, database_url: str) -> None:
    engine.change_calendar(
        "ma-public-administration",
        HolidayChange("add", date(2024, 6, 27), name="Jour férié"),
        actor="admin",
    )
    clock = SimulatedClock(local(2024, 6, 1))
    with Engine(database_url, workflows=[load_workflow(WORKFLOW)], clock=clock) as other:
        reference = opened(other, local(2024, 6, 20))
        (deadline,) = other.deadlines(reference)
    # 10 working days after Thu 20 June, skipping Thu 27: Fri 5 July.
    assert deadline.due_at == datetime(2024, 7, 5, 22, 59, 59, tzinfo=UTC)


def test_adding_existing_holiday_rejected(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="already a non-working day"):
        engine.change_calendar(
            "ma-public-administration",
            HolidayChange("add", date(2024, 6, 17), name="Aïd"),
            actor="admin",
        )


def test_recompute_after_workflow_file_edit(database_url: str, tmp_path: Path) -> None:
    original = WORKFLOW.read_text(encoding="utf-8")
    edited = tmp_path / "working_days.yaml"
    edited.write_text(
        original.replace(
            "calendar: ma-public-administration",
            "calendar:\n  base: ma-public-administration\n"
            "  holidays: [{date: '2024-06-25', name: Jour de deuil}]",
        ),
        encoding="utf-8",
    )
    clock = SimulatedClock(local(2024, 6, 1))
    with Engine(
        database_url, workflows=[load_workflow(WORKFLOW)], clock=clock, create_schema=True
    ) as before:
        reference = opened(before, local(2024, 6, 10))
    with Engine(database_url, workflows=[load_workflow(edited)], clock=clock) as after:
        result = after.recompute_deadlines("ma-public-administration", actor="admin")
        (deadline,) = after.deadlines(reference)
        last = after.history(reference)[-1]
    assert [moved.reference for moved in result.moved] == [reference]
    # 10 working days from Mon 10 June, skipping Eid (17-18) and the new day off (25): Thu 27.
    assert deadline.due_at == datetime(2024, 6, 27, 22, 59, 59, tzinfo=UTC)
    assert last.trigger == "calendar_changed"
    assert last.payload["action"] == "recompute"
