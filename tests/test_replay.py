"""Replaying City of Boston 311 cases through the engine and comparing on-time verdicts."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from case_workflow import DeadlineStatus, Engine, InvalidInput, SimulatedClock, SystemClock
from case_workflow.boston_export import REQUIRED_COLUMNS
from case_workflow.replay import ReplayResult, replay_boston

BOSTON_FILE = Path(
    os.environ.get(
        "CASE_WORKFLOW_BOSTON_311_CSV",
        Path(__file__).resolve().parents[2] / "shared/data/boston311/boston311_2011H2.csv",
    )
)

# (case id, open_dt, target_dt, closed_dt, ontime); other columns are filled in by _write.
TINY_ROWS = [
    ("A", "2011-07-05 09:00:00", "2011-07-06 09:00:00", "2011-07-05 15:00:00", "ONTIME"),
    ("B", "2011-07-05 10:00:00", "2011-07-06 10:00:00", "2011-07-07 08:00:00", "OVERDUE"),
    ("C", "2011-07-05 11:00:00", "", "2011-07-06 12:00:00", "ONTIME"),
    # Closed an hour late but flagged ONTIME by the City.
    ("D", "2011-07-06 08:00:00", "2011-07-08 08:00:00", "2011-07-08 09:00:00", "ONTIME"),
    # Closed at the target second: the engine counts it as met, the City flagged it OVERDUE.
    ("F", "2011-07-06 09:00:00", "2011-07-07 09:00:00", "2011-07-07 09:00:00", "OVERDUE"),
    ("G", "2011-07-06 10:00:00", "2011-07-06 12:00:00", "2011-07-06 11:00:00", ""),
    # A placeholder target date means no SLA.
    ("H", "2011-07-06 11:00:00", "2059-12-31 00:00:00", "2011-07-10 10:00:00", "ONTIME"),
    # Closed after the replay's end: still open, not compared.
    ("I", "2011-07-06 12:00:00", "2011-07-07 12:00:00", "2012-01-15 10:00:00", "OVERDUE"),
    # 01:30 on 6 November 2011 happened twice in Boston; the first (daylight) one is taken.
    ("E", "2011-11-06 01:30:00", "2011-11-06 01:45:00", "2011-11-06 01:50:00", "OVERDUE"),
]


def _write(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REQUIRED_COLUMNS)
        writer.writeheader()
        for case_id, opened, target, closed, flag in rows:
            writer.writerow(
                {
                    "case_enquiry_id": case_id,
                    "open_dt": opened,
                    "target_dt": target,
                    "closed_dt": closed,
                    "ontime": flag,
                    "case_status": "Closed" if closed else "Open",
                    "closure_category": "Resolved",
                    "case_title": "Street Light Outages",
                    "subject": "Public Works Department",
                    "type": "Street Light Outages",
                    "department": "PWDx",
                    "neighborhood": "Roslindale",
                }
            )
    return path


def _engine(url: str) -> Engine:
    clock = SimulatedClock(datetime(2011, 7, 1, tzinfo=UTC))
    return Engine(url, workflows=["boston-311"], clock=clock, create_schema=True)


@pytest.fixture
def boston(database_url: str) -> Iterator[Engine]:
    """An engine on the Boston workflow, on SQLite and on PostgreSQL."""
    with _engine(database_url) as engine:
        yield engine


@pytest.fixture
def tiny(boston: Engine, tmp_path: Path) -> ReplayResult:
    return replay_boston(boston, _write(tmp_path / "tiny.csv", TINY_ROWS))


def test_tiny_counts(tiny: ReplayResult) -> None:
    assert tiny.cases == 9
    assert tiny.filed == 9
    assert tiny.closed == 8
    assert tiny.still_open == 1
    assert tiny.with_target == 7
    assert tiny.placeholder_targets == 1


def test_tiny_agreement_math(tiny: ReplayResult) -> None:
    # Compared: A, B, D, F, G, E. Agreed: A (met), B (missed), E (missed).
    assert tiny.compared == 6
    assert tiny.agreed == 3
    assert tiny.agreement == pytest.approx(0.5)


def test_tiny_verdicts(tiny: ReplayResult, boston: Engine) -> None:
    expected = {
        "A": DeadlineStatus.MET,
        "B": DeadlineStatus.MISSED,
        "D": DeadlineStatus.MISSED,
        "F": DeadlineStatus.MET,
        "G": DeadlineStatus.MET,
        "E": DeadlineStatus.MISSED,
        "I": DeadlineStatus.RUNNING,
    }
    for case_id, status in expected.items():
        (deadline,) = boston.deadlines(f"BOS-{case_id}")
        assert deadline.status is status, case_id
    assert boston.deadlines("BOS-C") == []
    assert boston.deadlines("BOS-H") == []


def test_tiny_disagreement_causes(tiny: ReplayResult) -> None:
    by_reference = {item.reference: item for item in tiny.disagreements}
    assert sorted(by_reference) == ["BOS-D", "BOS-F", "BOS-G"]
    assert "on the target's day but flagged ONTIME" in by_reference["BOS-D"].cause
    assert "exactly at the target second" in by_reference["BOS-F"].cause
    assert "flag empty" in by_reference["BOS-G"].cause
    assert by_reference["BOS-F"].city_flag == "OVERDUE"
    assert by_reference["BOS-F"].engine_verdict == "ONTIME"
    assert sum(tiny.causes.values()) == 3


def test_tiny_ambiguous_time_takes_first(tiny: ReplayResult, boston: Engine) -> None:
    dossier = boston.get("BOS-E")
    (deadline,) = boston.deadlines("BOS-E")
    assert dossier.filed_at == datetime(2011, 11, 6, 5, 30, tzinfo=UTC)
    assert deadline.due_at == datetime(2011, 11, 6, 5, 45, tzinfo=UTC)
    assert dossier.closed_at == datetime(2011, 11, 6, 5, 50, tzinfo=UTC)


def test_tiny_overdue_notices_by_sweep(tiny: ReplayResult, boston: Engine) -> None:
    # B and I were open past their target at a sweep; D closed at the very tick
    # (13:00 UTC on 8 July) that would have flagged it, and the closure goes first.
    assert tiny.overdue_notices == 2
    for case_id, count in {"B": 1, "I": 1, "D": 0, "F": 0, "E": 0}.items():
        notices = [
            item for item in boston.letters(f"BOS-{case_id}") if item.letter == "overdue_notice"
        ]
        assert len(notices) == count, case_id
    sweep_events = [event for event in boston.history("BOS-B") if event.role == "system"]
    assert len(sweep_events) == 1


def test_tiny_outcomes_and_clock(tiny: ReplayResult, boston: Engine) -> None:
    assert boston.get("BOS-A").outcome == "resolved"
    assert boston.get("BOS-I").state == "open"
    assert boston.get("BOS-C").state == "closed"
    assert boston.clock.now() == datetime(2012, 1, 1, 4, 59, 59, tzinfo=UTC)


def test_tiny_report_counts(tiny: ReplayResult) -> None:
    assert tiny.report is not None
    assert tiny.report.answered_on_time == 3
    assert tiny.report.answered_late == 3
    assert tiny.report.escalated_total == 1


def test_tiny_summary_mentions_agreement(tiny: ReplayResult) -> None:
    text = tiny.summary()
    assert "3 of 6" in text
    assert "50.0000%" in text


def test_unsorted_file_names_row(boston: Engine, tmp_path: Path) -> None:
    rows = [TINY_ROWS[1], TINY_ROWS[0]]
    with pytest.raises(InvalidInput, match=r"unsorted\.csv:3: case A .* sort the file by open_dt"):
        replay_boston(boston, _write(tmp_path / "unsorted.csv", rows))


def test_missing_column_rejected(boston: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("case_enquiry_id,open_dt\n1,2011-07-01 00:00:00\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="missing column"):
        replay_boston(boston, path)


def test_bad_timestamp_rejected(boston: Engine, tmp_path: Path) -> None:
    rows = [("A", "2011-07-05 09:00:00", "tomorrow", "", "ONTIME")]
    with pytest.raises(InvalidInput, match=r"target_dt 'tomorrow' is not a timestamp"):
        replay_boston(boston, _write(tmp_path / "bad.csv", rows))


def test_system_clock_rejected(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/boston.db"
    engine = Engine(url, workflows=["boston-311"], clock=SystemClock(), create_schema=True)
    with engine, pytest.raises(InvalidInput, match="SimulatedClock"):
        replay_boston(engine, _write(tmp_path / "tiny.csv", TINY_ROWS))


def test_limit_and_progress(boston: Engine, tmp_path: Path) -> None:
    seen: list[int] = []
    result = replay_boston(
        boston,
        _write(tmp_path / "tiny.csv", TINY_ROWS),
        limit=3,
        sweep_every=timedelta(days=1),
        progress=seen.append,
    )
    assert result.cases == 3
    assert seen == [3]


def _city_agreement(path: Path, limit: int, as_of: str) -> tuple[int, int]:
    """Count closed cases with a real target and how many the City flags as the engine should."""
    compared = agreed = 0
    with path.open(newline="", encoding="utf-8") as handle:
        for count, row in enumerate(csv.DictReader(handle)):
            if count >= limit:
                break
            target, closed = row["target_dt"], row["closed_dt"]
            if not target or target >= "2020" or not closed or closed > as_of:
                continue
            compared += 1
            verdict = "ONTIME" if closed <= target else "OVERDUE"
            agreed += verdict == row["ontime"]
    return compared, agreed


@pytest.mark.skipif(
    not BOSTON_FILE.is_file(), reason=f"Boston 311 export not found at {BOSTON_FILE}"
)
def test_real_file_first_rows(tmp_path: Path) -> None:
    with _engine(f"sqlite:///{tmp_path}/boston.db") as boston:
        result = replay_boston(boston, BOSTON_FILE, limit=2000)
        assert boston.verify().ok
    compared, agreed = _city_agreement(BOSTON_FILE, 2000, "2011-12-31 23:59:59")
    assert result.cases == 2000
    assert result.compared == compared
    assert result.agreed == agreed
    assert result.agreement >= 0.99
    assert result.overdue_notices > 0
