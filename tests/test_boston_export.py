"""Reading the City of Boston's 311 export: local times, order checks and disagreement causes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from case_workflow import InvalidInput
from case_workflow.boston_export import (
    REQUIRED_COLUMNS,
    CityRecord,
    classify_disagreement,
    in_dst_transition,
    parse_local,
    read_rows,
)
from case_workflow.calendars import load_zone

BOSTON = load_zone("America/New_York")
HEADER = ",".join(REQUIRED_COLUMNS)


def _record(flag: str, target: str = "", closed: str = "") -> CityRecord:
    return CityRecord(
        open_dt="2011-07-01 08:00:00",
        target_dt=target,
        closed_dt=closed,
        ontime=flag,
        case_status="Closed",
        closure_category="Resolved",
    )


def _line(case_id: str, opened: str, target: str = "", closed: str = "") -> str:
    values = [case_id, opened, target, closed, "ONTIME", "Closed", "Resolved"]
    values += ["Title", "Public Works Department", "Type", "PWDx", "Roslindale"]
    return ",".join(values)


def test_ambiguous_time_takes_daylight() -> None:
    moment = parse_local("2011-11-06 01:30:00", BOSTON)
    assert moment.astimezone(UTC) == datetime(2011, 11, 6, 5, 30, tzinfo=UTC)


def test_skipped_time_moves_to_gap_end() -> None:
    moment = parse_local("2012-03-11 02:30:00", BOSTON)
    assert moment.astimezone(UTC) == datetime(2012, 3, 11, 7, 0, tzinfo=UTC)


def test_ordinary_time_unchanged() -> None:
    moment = parse_local("2011-07-01 01:32:33", BOSTON)
    assert moment.astimezone(UTC) == datetime(2011, 7, 1, 5, 32, 33, tzinfo=UTC)


def test_dst_transition_detection() -> None:
    assert in_dst_transition("2011-11-06 01:30:00", BOSTON)
    assert in_dst_transition("2012-03-11 02:30:00", BOSTON)
    assert not in_dst_transition("2011-11-06 02:00:00", BOSTON)
    assert not in_dst_transition("", BOSTON)


@given(
    st.datetimes(min_value=datetime(2011, 11, 5), max_value=datetime(2011, 11, 7)),
    st.datetimes(min_value=datetime(2012, 3, 10), max_value=datetime(2012, 3, 12)),
    st.integers(min_value=0, max_value=7200),
)
def test_local_order_kept(fall: datetime, spring: datetime, step: int) -> None:
    for naive in (fall.replace(microsecond=0), spring.replace(microsecond=0)):
        later = naive + timedelta(seconds=step)
        first = parse_local(naive.isoformat(sep=" "), BOSTON).astimezone(UTC)
        second = parse_local(later.isoformat(sep=" "), BOSTON).astimezone(UTC)
        assert first <= second


def test_read_rows_converts_times(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    lines = [HEADER, _line("1", "2011-07-01 08:00:00", "2059-12-31 00:00:00")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (row,) = read_rows(path, BOSTON, None)
    assert row.opened == datetime(2011, 7, 1, 12, 0, tzinfo=UTC)
    assert row.target is None
    assert row.placeholder_target
    assert row.respondent == "PWDx"


def test_read_rows_rejects_unsorted(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    lines = [HEADER, _line("1", "2011-07-02 08:00:00"), _line("2", "2011-07-01 08:00:00")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"cases\.csv:3: case 2 opened at 2011-07-01 08:00:00"):
        list(read_rows(path, BOSTON, None))


def test_read_rows_rejects_early_close(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    lines = [HEADER, _line("1", "2011-07-02 08:00:00", closed="2011-07-01 08:00:00")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="before it opened"):
        list(read_rows(path, BOSTON, None))


def test_read_rows_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        list(read_rows(tmp_path / "absent.csv", BOSTON, None))


def test_read_rows_short_row(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text(f"{HEADER}\n7,2011-07-01 08:00:00\n", encoding="utf-8")
    (row,) = read_rows(path, BOSTON, None)
    assert row.case_id == "7"
    assert row.closed is None


@pytest.mark.parametrize(
    ("record", "verdict", "target", "closed", "expected"),
    [
        (_record(""), "OVERDUE", "2011-07-02 08:00:00", "2011-07-03 08:00:00", "flag empty"),
        (_record("LATE"), "OVERDUE", "2011-07-02 08:00:00", "2011-07-03 08:00:00", "'LATE'"),
        (
            _record("OVERDUE"),
            "ONTIME",
            "2011-07-02 08:00:00",
            "2011-07-02 08:00:00",
            "exactly at the target second",
        ),
        (
            _record("ONTIME", "2011-11-06 01:30:00", "2011-11-06 01:40:00"),
            "OVERDUE",
            "2011-11-06 01:30:00",
            "2011-11-06 01:40:00",
            "daylight-saving",
        ),
        (
            _record("ONTIME"),
            "OVERDUE",
            "2011-07-02 08:00:00",
            "2011-07-02 09:00:00",
            "on the target's day",
        ),
        (
            _record("ONTIME"),
            "OVERDUE",
            "2011-07-02 08:00:00",
            "2011-07-05 09:00:00",
            "closed after the target but flagged ONTIME",
        ),
        (
            _record("OVERDUE"),
            "ONTIME",
            "2011-07-02 08:00:00",
            "2011-07-01 09:00:00",
            "closed before the target but flagged OVERDUE",
        ),
    ],
)
def test_disagreement_causes(
    record: CityRecord, verdict: str, target: str, closed: str, expected: str
) -> None:
    cause = classify_disagreement(
        record, verdict, parse_local(target, BOSTON), parse_local(closed, BOSTON), BOSTON
    )
    assert expected in cause
