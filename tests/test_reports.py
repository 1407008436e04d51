"""Tests of the escalation reports on real SQLite and PostgreSQL databases.

The scenario below inserts rows straight into the store's tables. Every expected figure is
worked out by hand in the comments (Africa/Casablanca is UTC+0 from 2025-02-23 to 2025-04-06,
during Ramadan, and UTC+1 otherwise in 2024-2025), never by calling the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import Connection, Engine, create_engine, delete, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from case_workflow.errors import InvalidInput
from case_workflow.reporting.labels import LABELS
from case_workflow.reports import (
    EscalatedRow,
    EscalationReport,
    MonthRow,
    ReportFilter,
    build_report,
    render_csv,
    render_html,
    render_json,
    write_report,
)
from case_workflow.store.database import connect
from case_workflow.store.schema import upgrade
from case_workflow.store.tables import deadline_actions, deadlines, dossiers, events

PG_URL = os.environ.get(
    "CASE_WORKFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"

RABAT = "alomrane-rabat"
CASABLANCA = "alomrane-casablanca"
RSK = "rabat-sale-kenitra"
CS = "casablanca-settat"
MAIN_FLOW = "mediator-alomrane"

# The main as_of: Monday 2025-06-30, 11:00 in Casablanca (UTC+1).
AS_OF = datetime(2025, 6, 30, 10, 0, tzinfo=UTC)
# An earlier as_of: 2025-03-20, 12:00 in Casablanca (UTC+0, Ramadan).
EARLIER = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
# A later as_of: 2025-07-20, 13:00 in Casablanca.
LATER = datetime(2025, 7, 20, 12, 0, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# --- databases -----------------------------------------------------------------------------


def _scratch_postgresql() -> Iterator[Engine]:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL at {PG_URL} unreachable: {str(error.orig).strip()[:200]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = f"cw_reports_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = connect(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty store at the latest schema: a SQLite file, then a scratch PostgreSQL database."""
    if request.param == "sqlite":
        engine = connect(f"sqlite:///{tmp_path}/reports.db")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    for engine in _scratch_postgresql():
        upgrade(engine)
        yield engine


# --- scenario rows -------------------------------------------------------------------------


@dataclass
class DossierRows:
    """One dossier's rows, inserted with :func:`add`."""

    reference: str
    filed_at: datetime
    states: list[tuple[str, datetime]]
    respondent: str | None = RABAT
    region: str | None = RSK
    workflow: str = MAIN_FLOW
    closed_at: datetime | None = None
    escalation_level: int = 0
    deadlines: list[dict[str, object]] = field(default_factory=list)


def add(connection: Connection, rows: DossierRows) -> int:
    """Insert a dossier, its events (``filed`` first), deadlines and actions; return its id."""
    history = [("filed", rows.filed_at), *rows.states]
    dossier_id: int = connection.execute(
        insert(dossiers).returning(dossiers.c.id),
        {
            "reference": rows.reference,
            "workflow": rows.workflow,
            "workflow_version": 1,
            "state": history[-1][0],
            "version": len(history),
            "respondent": rows.respondent,
            "region": rows.region,
            "urgent": False,
            "escalation_level": rows.escalation_level,
            "subject": "Titre foncier",
            "complainant": {"name": "Complainant"},
            "data": {},
            "filed_at": rows.filed_at,
            "updated_at": history[-1][1],
            "closed_at": rows.closed_at,
            "event_count": len(history),
            "last_hash": "0" * 64,
        },
    ).scalar_one()
    previous: str | None = None
    for seq, (state, moment) in enumerate(history, start=1):
        connection.execute(
            insert(events),
            {
                "dossier_id": dossier_id,
                "seq": seq,
                "trigger": state,
                "from_state": previous,
                "to_state": state,
                "actor": "agent",
                "role": "mediator_agent",
                "institution": "mediator",
                "occurred_at": moment,
                "payload": {},
                "prev_hash": "0" * 64,
                "hash": f"{seq:064d}",
            },
        )
        previous = state
    for spec in rows.deadlines:
        actions = spec.pop("actions", [])
        values = {
            "dossier_id": dossier_id,
            "name": "answer",
            "state": "transmitted",
            "rule": "60 calendar_days",
            "rests_on_estimate": False,
            "explanation": {},
            **spec,
        }
        deadline_id = connection.execute(
            insert(deadlines).returning(deadlines.c.id), values
        ).scalar_one()
        for kind, level, status, done_at in actions:  # type: ignore[attr-defined]
            connection.execute(
                insert(deadline_actions),
                {
                    "deadline_id": deadline_id,
                    "dossier_id": dossier_id,
                    "kind": kind,
                    "level": level,
                    "fire_at": done_at or utc(2025, 7, 1),
                    "status": status,
                    "done_at": done_at,
                },
            )
    return dossier_id


def scenario() -> list[DossierRows]:
    """Nine dossiers; the comments give each one's figures as of AS_OF (2025-06-30 local)."""
    return [
        # MR-1: filed 171 days before (91-180); transmitted; overdue since local 2025-03-16,
        # 106 days; escalation 1 and 2 done before AS_OF, 3 after it (the column already contains 3).
        DossierRows(
            "MR-1",
            utc(2025, 1, 10, 9),
            [("transmitted", utc(2025, 1, 15, 9))],
            escalation_level=3,
            deadlines=[
                {
                    "status": "running",
                    "started_at": utc(2025, 1, 15, 9),
                    "due_at": utc(2025, 3, 16, 23, 59, 59),
                    "actions": [
                        ("reminder", 1, "done", utc(2025, 3, 6, 8)),
                        ("escalation", 1, "done", utc(2025, 3, 17, 8)),
                        ("escalation", 2, "done", utc(2025, 4, 10, 8)),
                        ("escalation", 3, "done", utc(2025, 7, 10, 8)),
                    ],
                }
            ],
        ),
        # MR-2: filed 90 days before (61-90); answered on time after 48 days; closed only
        # after AS_OF, so open and "answered" at AS_OF although its columns say "closed".
        # Working days from Thu 04-03 to Tue 05-20: 34 weekdays less Labour Day (05-01), 33.
        DossierRows(
            "MR-2",
            utc(2025, 4, 1, 10),
            [
                ("transmitted", utc(2025, 4, 2, 10)),
                ("answered", utc(2025, 5, 20, 10)),
                ("closed", utc(2025, 7, 5, 10)),
            ],
            respondent=CASABLANCA,
            region=CS,
            closed_at=utc(2025, 7, 5, 10),
            deadlines=[
                {
                    "status": "met",
                    "started_at": utc(2025, 4, 2, 10),
                    "due_at": utc(2025, 6, 1, 22, 59, 59),
                    "closed_at": utc(2025, 5, 20, 10),
                    "working_days": 33,
                }
            ],
        ),
        # MR-3: answered late after 76 days, closed on 2025-05-10: not open at AS_OF.
        # Working days from Tue 02-04 to Sun 04-20: 54 weekdays less Eid al-Fitr (Mon 03-31
        # and Tue 04-01), 52.
        DossierRows(
            "MR-3",
            utc(2025, 2, 1, 9),
            [
                ("transmitted", utc(2025, 2, 3, 9)),
                ("answered", utc(2025, 4, 20, 9)),
                ("closed", utc(2025, 5, 10, 9)),
            ],
            closed_at=utc(2025, 5, 10, 9),
            escalation_level=1,
            deadlines=[
                {
                    "status": "missed",
                    "started_at": utc(2025, 2, 3, 9),
                    "due_at": utc(2025, 4, 4, 23, 59, 59),
                    "closed_at": utc(2025, 4, 20, 9),
                    "working_days": 52,
                    "rests_on_estimate": True,
                    "actions": [
                        ("escalation", 1, "done", utc(2025, 4, 5, 8)),
                        ("escalation", 2, "cancelled", None),
                    ],
                }
            ],
        ),
        # MR-4: no respondent or region, filed 5 days before (0-30). It is overdue by 1 day
        # (due local 2025-06-29), not escalated, and its due date rests on an estimated holiday.
        DossierRows(
            "MR-4",
            utc(2025, 6, 25, 8),
            [("transmitted", utc(2025, 6, 26, 8))],
            respondent=None,
            region=None,
            deadlines=[
                {
                    "status": "running",
                    "started_at": utc(2025, 6, 26, 8),
                    "due_at": utc(2025, 6, 29, 22, 59, 59),
                    "rests_on_estimate": True,
                    "actions": [("escalation", 1, "pending", None)],
                }
            ],
        ),
        # MR-5: filed after AS_OF: absent from every figure as of AS_OF.
        DossierRows(
            "MR-5",
            utc(2025, 7, 2, 9),
            [("transmitted", utc(2025, 7, 3, 9))],
            deadlines=[
                {
                    "status": "running",
                    "started_at": utc(2025, 7, 3, 9),
                    "due_at": utc(2025, 7, 5, 22, 59, 59),
                }
            ],
        ),
        # MR-6: another workflow; filed 121 days before (91-180); its deadline is paused since
        # 2025-04-01, so past due but not overdue; rests on an estimated holiday.
        DossierRows(
            "MR-6",
            utc(2025, 3, 1, 9),
            [
                ("transmitted", utc(2025, 3, 2, 9)),
                ("information_requested", utc(2025, 4, 1, 9)),
            ],
            workflow="other-flow",
            deadlines=[
                {
                    "status": "paused",
                    "started_at": utc(2025, 3, 2, 9),
                    "due_at": utc(2025, 5, 1, 22, 59, 59),
                    "paused_at": utc(2025, 4, 1, 9),
                    "remaining": "30 calendar_days",
                    "rests_on_estimate": True,
                }
            ],
        ),
        # MR-7: filed 227 days before (181+); "answer" met after 55 days; its "recommendation"
        # deadline is overdue since local 2025-03-01 (121 days), escalation 1 done. The answer
        # has no working-day count, like a deadline closed before the column existed.
        DossierRows(
            "MR-7",
            utc(2024, 11, 15, 9),
            [
                ("transmitted", utc(2024, 11, 16, 9)),
                ("answered", utc(2025, 1, 10, 9)),
                ("recommendation_follow_up", utc(2025, 2, 1, 9)),
            ],
            respondent=CASABLANCA,
            region=CS,
            escalation_level=1,
            deadlines=[
                {
                    "status": "met",
                    "started_at": utc(2024, 11, 16, 9),
                    "due_at": utc(2025, 1, 15, 22, 59, 59),
                    "closed_at": utc(2025, 1, 10, 9),
                },
                {
                    "name": "recommendation",
                    "state": "recommendation_follow_up",
                    "status": "running",
                    "started_at": utc(2025, 2, 1, 9),
                    "due_at": utc(2025, 3, 1, 23, 59, 59),
                    "actions": [("escalation", 1, "done", utc(2025, 3, 5, 8))],
                },
            ],
        ),
        # MR-8: filed 2025-04-30 23:30 UTC, which is 2025-05-01 00:30 in Casablanca: 60 local
        # days before AS_OF (31-60; 61 by UTC dates) and in May; answered late after 49 days.
        # Working days: 35 weekdays from Mon 05-05 to Fri 06-20, less the day off after Eid
        # al-Adha (Mon 06-09), give 34. Eid itself fell on Sat 06-07 and Sun 06-08.
        DossierRows(
            "MR-8",
            utc(2025, 4, 30, 23, 30),
            [("transmitted", utc(2025, 5, 2, 9)), ("answered", utc(2025, 6, 20, 9))],
            deadlines=[
                {
                    "status": "missed",
                    "started_at": utc(2025, 5, 2, 9),
                    "due_at": utc(2025, 6, 15, 22, 59, 59),
                    "closed_at": utc(2025, 6, 20, 9),
                    "working_days": 34,
                }
            ],
        ),
        # MR-9: redirected (final) on 2025-06-05; its deadline was cancelled, not answered.
        DossierRows(
            "MR-9",
            utc(2025, 6, 1, 9),
            [("transmitted", utc(2025, 6, 2, 9)), ("redirected", utc(2025, 6, 5, 9))],
            respondent=CASABLANCA,
            region=CS,
            closed_at=utc(2025, 6, 5, 9),
            deadlines=[
                {
                    "status": "cancelled",
                    "started_at": utc(2025, 6, 2, 9),
                    "due_at": utc(2025, 6, 10, 22, 59, 59),
                    "closed_at": utc(2025, 6, 5, 9),
                }
            ],
        ),
    ]


@pytest.fixture
def filled(store: Engine) -> Engine:
    with store.begin() as connection:
        for rows in scenario():
            add(connection, rows)
    return store


def month_rows(*active: tuple[str, int, int, int, int]) -> list[MonthRow]:
    """Twelve months ending 2025-06, zero except the months given."""
    given_months = {row[0]: row for row in active}
    months = [f"2024-{month:02d}" for month in range(7, 13)]
    months += [f"2025-{month:02d}" for month in range(1, 7)]
    return [MonthRow(*given_months.get(month, (month, 0, 0, 0, 0))) for month in months]


# --- figures as of AS_OF -------------------------------------------------------------------


def test_open_dossiers_by_state(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF)
    # MR-3 and MR-9 closed before AS_OF, MR-5 filed after; MR-2 is still "answered".
    assert report.open_by_state == {
        "answered": 2,
        "information_requested": 1,
        "recommendation_follow_up": 1,
        "transmitted": 2,
    }
    assert report.open_total == 6


def test_aging_buckets(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF)
    # MR-4 5 days; MR-8 60 (local dates); MR-2 90; MR-1 171 and MR-6 121; MR-7 227.
    assert report.aging == [
        ("0-30", 1),
        ("31-60", 1),
        ("61-90", 1),
        ("91-180", 2),
        ("181+", 1),
    ]


def test_aging_uses_time_zone(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF, timezone="UTC")
    # By UTC dates MR-8 was filed 2025-04-30, 61 days before: 61-90 joins MR-2.
    assert report.aging[1] == ("31-60", 0)
    assert report.aging[2] == ("61-90", 2)


def test_overdue_counts(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF)
    # Overdue: MR-1 (level 2 at AS_OF), MR-4 (level 0), MR-7 (level 1). MR-6 is paused.
    assert report.overdue_by_respondent == {"": 1, CASABLANCA: 1, RABAT: 1}
    assert report.overdue_by_region == {"": 1, CS: 1, RSK: 1}
    assert report.overdue_by_level == {0: 1, 1: 1, 2: 1}
    assert report.escalated_total == 3
    # MR-4 1 day; MR-1 106 and MR-7 121 days.
    assert report.overdue_aging == [
        ("0-15", 1),
        ("16-30", 0),
        ("31-60", 0),
        ("61-90", 0),
        ("91-180", 2),
        ("181+", 0),
    ]


def test_escalated_list(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF)
    assert report.escalated == [
        EscalatedRow(
            "MR-7", CASABLANCA, CS, "recommendation_follow_up", 1, utc(2025, 3, 1, 23, 59, 59), 121
        ),
        EscalatedRow("MR-1", RABAT, RSK, "transmitted", 2, utc(2025, 3, 16, 23, 59, 59), 106),
        EscalatedRow("MR-4", None, None, "transmitted", 0, utc(2025, 6, 29, 22, 59, 59), 1),
    ]


def test_escalated_list_top(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF, top=2)
    assert [row.reference for row in report.escalated] == ["MR-7", "MR-1"]
    assert report.escalated_total == 3


def test_answer_statistics(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF)
    # Met: MR-2 48 days, MR-7 55. Missed: MR-3 76, MR-8 49. MR-9 was cancelled.
    assert report.answered_on_time == 2
    assert report.answered_late == 2
    assert report.on_time_rate == 0.5
    # Sorted 48, 49, 55, 76: median (49 + 55) / 2; 90th percentile at position 2.7.
    assert report.median_answer_days == pytest.approx(52.0)
    assert report.p90_answer_days == pytest.approx(55 + 0.7 * 21)
    # Working days without MR-7's missing count, sorted 33, 34, 52: the median is the middle
    # one and the 90th percentile at position 1.8.
    assert report.median_answer_working_days == pytest.approx(34.0)
    assert report.p90_answer_working_days == pytest.approx(34 + 0.8 * 18)


def test_estimated_holiday_deadlines(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF)
    # MR-4 (running) and MR-6 (paused) are open; MR-3's deadline closed before AS_OF.
    assert report.estimated_holiday_deadlines == 2


def test_monthly_rows(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF)
    assert report.monthly == month_rows(
        # month, filed, answered, overdue at month end, escalation actions done
        ("2024-11", 1, 0, 0, 0),
        ("2025-01", 1, 1, 0, 0),
        ("2025-02", 1, 0, 0, 0),
        # Overdue at the end of March to May: MR-1 and MR-7; MR-6 is paused from April 1.
        ("2025-03", 1, 0, 2, 2),
        ("2025-04", 1, 1, 2, 2),
        # MR-8 counts in May: it was filed on May 1 in Casablanca.
        ("2025-05", 1, 1, 2, 0),
        # At AS_OF, MR-4 is overdue as well.
        ("2025-06", 2, 1, 3, 0),
    )


def test_monthly_length(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF, months=3)
    assert [row.month for row in report.monthly] == ["2025-04", "2025-05", "2025-06"]
    single = build_report(filled, as_of=AS_OF, months=1)
    assert single.monthly == [MonthRow("2025-06", 2, 1, 3, 0)]
    # Across a year boundary: 2024-11 to 2025-01 as of 2025-01-31 13:00 in Casablanca.
    winter = build_report(filled, as_of=utc(2025, 1, 31, 12), months=3)
    assert winter.monthly == [
        MonthRow("2024-11", 1, 0, 0, 0),
        MonthRow("2024-12", 0, 0, 0, 0),
        MonthRow("2025-01", 1, 1, 0, 0),
    ]


# --- as-of correctness ---------------------------------------------------------------------


def test_earlier_as_of(filled: Engine) -> None:
    report = build_report(filled, as_of=EARLIER)
    # Filed by 2025-03-20: MR-7, MR-1, MR-3, MR-6, all open; later events are ignored.
    assert report.open_by_state == {"recommendation_follow_up": 1, "transmitted": 3}
    # 2025-03-20 local: MR-6 19 days, MR-3 47, MR-1 69, MR-7 125.
    assert report.aging == [
        ("0-30", 1),
        ("31-60", 1),
        ("61-90", 1),
        ("91-180", 1),
        ("181+", 0),
    ]
    # Overdue: MR-1 (4 days, escalation 1 done on 03-17) and MR-7 (19 days, level 1).
    assert report.overdue_by_level == {1: 2}
    assert report.overdue_aging[:2] == [("0-15", 1), ("16-30", 1)]
    assert [(row.reference, row.days_overdue) for row in report.escalated] == [
        ("MR-7", 19),
        ("MR-1", 4),
    ]
    # Only MR-7's answer (55 days, met) was closed by then.
    assert report.answered_on_time == 1
    assert report.answered_late == 0
    assert report.on_time_rate == 1.0
    assert report.median_answer_days == pytest.approx(55.0)
    assert report.p90_answer_days == pytest.approx(55.0)
    # MR-7's answer has no working-day count, so there is no working-day figure.
    assert report.median_answer_working_days is None
    assert report.p90_answer_working_days is None
    # MR-3's and MR-6's deadlines were both open.
    assert report.estimated_holiday_deadlines == 2
    assert report.monthly[-1] == MonthRow("2025-03", 1, 0, 2, 2)


def test_later_as_of(filled: Engine) -> None:
    report = build_report(filled, as_of=LATER)
    # MR-2 closed on 07-05; MR-5 filed on 07-02 and overdue since 07-05.
    assert report.open_by_state == {
        "answered": 1,
        "information_requested": 1,
        "recommendation_follow_up": 1,
        "transmitted": 3,
    }
    # MR-1 reached escalation level 3 on 07-10.
    assert report.overdue_by_level == {0: 2, 1: 1, 3: 1}
    assert report.escalated_total == 4


def test_as_of_time_zone_independent(filled: Engine) -> None:
    casablanca_time = AS_OF.astimezone(timezone(timedelta(hours=1)))
    report = build_report(filled, as_of=casablanca_time)
    assert report.as_of == AS_OF
    assert report.escalated_total == 3


# --- restrictions --------------------------------------------------------------------------


def test_deadline_name(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF, deadline_name="answer")
    # MR-7's overdue deadline is its recommendation: only MR-1 and MR-4 remain.
    assert report.overdue_by_level == {0: 1, 2: 1}
    assert report.overdue_by_respondent == {"": 1, RABAT: 1}
    assert [row.reference for row in report.escalated] == ["MR-1", "MR-4"]
    assert report.answered_on_time == 2
    assert report.answered_late == 2
    assert report.estimated_holiday_deadlines == 2
    # MR-7's escalation on 03-05 belongs to the recommendation deadline.
    assert report.monthly[-4:] == [
        MonthRow("2025-03", 1, 0, 1, 1),
        MonthRow("2025-04", 1, 1, 1, 2),
        MonthRow("2025-05", 1, 1, 1, 0),
        MonthRow("2025-06", 2, 1, 2, 0),
    ]


def test_respondent_filter(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF, filters=ReportFilter(respondent=RABAT))
    # MR-1, MR-3, MR-6, MR-8 (MR-5 is later); MR-3 is closed.
    assert report.open_by_state == {"answered": 1, "information_requested": 1, "transmitted": 1}
    assert report.overdue_by_respondent == {RABAT: 1}
    # Both answers late: 49 and 76 days.
    assert report.answered_on_time == 0
    assert report.answered_late == 2
    assert report.on_time_rate == 0.0
    assert report.median_answer_days == pytest.approx(62.5)
    assert report.p90_answer_days == pytest.approx(49 + 0.9 * 27)
    # MR-8 34 and MR-3 52 working days.
    assert report.median_answer_working_days == pytest.approx(43.0)
    assert report.p90_answer_working_days == pytest.approx(34 + 0.9 * 18)
    assert report.estimated_holiday_deadlines == 1


def test_region_filter(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF, filters=ReportFilter(region=CS))
    # MR-2, MR-7, MR-9; answers of 48 and 55 days, both on time.
    assert report.open_by_state == {"answered": 1, "recommendation_follow_up": 1}
    assert report.escalated_total == 1
    assert report.on_time_rate == 1.0
    assert report.median_answer_days == pytest.approx(51.5)
    assert report.p90_answer_days == pytest.approx(48 + 0.9 * 7)
    # Only MR-2's answer has a working-day count: 33.
    assert report.median_answer_working_days == pytest.approx(33.0)
    assert report.p90_answer_working_days == pytest.approx(33.0)


def test_workflow_filter(filled: Engine) -> None:
    report = build_report(filled, as_of=AS_OF, filters=ReportFilter(workflow="other-flow"))
    assert report.open_by_state == {"information_requested": 1}
    assert report.overdue_by_level == {}
    assert report.escalated == []
    assert report.escalated_total == 0
    assert report.on_time_rate is None
    assert report.median_answer_days is None
    assert report.p90_answer_days is None
    assert report.median_answer_working_days is None
    assert report.p90_answer_working_days is None
    assert report.estimated_holiday_deadlines == 1


def test_filing_date_filter(filled: Engine) -> None:
    window = ReportFilter(filed_from=date(2025, 5, 1), filed_to=date(2025, 6, 30))
    report = build_report(filled, as_of=AS_OF, filters=window)
    # MR-8 (filed May 1 in Casablanca), MR-4 and MR-9.
    assert report.open_by_state == {"answered": 1, "transmitted": 1}
    assert [row.reference for row in report.escalated] == ["MR-4"]
    assert report.answered_late == 1
    before_may = build_report(filled, as_of=AS_OF, filters=ReportFilter(filed_to=date(2025, 4, 30)))
    # MR-7, MR-1, MR-3, MR-6, MR-2; MR-3 is closed.
    assert before_may.open_total == 4


def test_invalid_arguments(filled: Engine) -> None:
    with pytest.raises(InvalidInput, match="naive"):
        build_report(filled, as_of=datetime(2025, 6, 30))
    with pytest.raises(InvalidInput, match="filed_from"):
        build_report(
            filled,
            as_of=AS_OF,
            filters=ReportFilter(filed_from=date(2025, 6, 1), filed_to=date(2025, 5, 1)),
        )
    with pytest.raises(InvalidInput, match="top"):
        build_report(filled, as_of=AS_OF, top=-1)
    with pytest.raises(InvalidInput, match="months 0"):
        build_report(filled, as_of=AS_OF, months=0)
    with pytest.raises(InvalidInput, match="Mars/Olympus"):
        build_report(filled, as_of=AS_OF, timezone="Mars/Olympus")


def test_report_on_connection(filled: Engine) -> None:
    with filled.connect() as connection:
        report = build_report(connection, as_of=AS_OF)
    assert report.escalated_total == 3


def test_empty_store(store: Engine) -> None:
    report = build_report(store, as_of=AS_OF)
    assert report.open_by_state == {}
    assert report.aging == [("0-30", 0), ("31-60", 0), ("61-90", 0), ("91-180", 0), ("181+", 0)]
    assert report.escalated_total == 0
    assert report.median_answer_days is None
    assert report.median_answer_working_days is None
    assert report.monthly == month_rows()


# --- percentiles against the statistics module ---------------------------------------------


def p90(values: list[float]) -> float:
    """Return the 90th percentile by linear interpolation (PostgreSQL's percentile_cont)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def test_percentiles_match_statistics(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path}/percentiles.db")
    upgrade(engine)
    start = utc(2025, 1, 1)

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(
            st.tuples(st.integers(0, 400 * 86_400), st.none() | st.integers(0, 300)),
            min_size=1,
            max_size=20,
        )
    )
    def check(answers: list[tuple[int, int | None]]) -> None:
        with engine.begin() as connection:
            connection.execute(delete(deadlines))
            connection.execute(delete(events))
            connection.execute(delete(dossiers))
            add(
                connection,
                DossierRows(
                    "P-1",
                    start,
                    [],
                    deadlines=[
                        {
                            "status": "met",
                            "started_at": start,
                            "due_at": start,
                            "closed_at": datetime.fromtimestamp(
                                start.timestamp() + seconds, tz=UTC
                            ),
                            "working_days": working_days,
                        }
                        for seconds, working_days in answers
                    ],
                ),
            )
        report = build_report(engine, as_of=utc(2026, 6, 1))
        days = [seconds / 86_400 for seconds, _working_days in answers]
        assert report.median_answer_days == pytest.approx(statistics.median(days), abs=1e-6)
        assert report.p90_answer_days == pytest.approx(p90(days), abs=1e-6)
        counted = [float(working) for _seconds, working in answers if working is not None]
        if not counted:
            assert report.median_answer_working_days is None
            assert report.p90_answer_working_days is None
            return
        assert report.median_answer_working_days == pytest.approx(statistics.median(counted))
        assert report.p90_answer_working_days == pytest.approx(p90(counted))

    check()
    engine.dispose()


# --- rendering -----------------------------------------------------------------------------


@pytest.fixture
def report(filled: Engine) -> EscalationReport:
    return build_report(filled, as_of=AS_OF)


@pytest.mark.parametrize(("language", "direction"), [("fr", "ltr"), ("ar", "rtl"), ("en", "ltr")])
def test_html_languages(report: EscalationReport, language: str, direction: str) -> None:
    html = render_html(report, language=language)
    assert f'<html lang="{language}" dir="{direction}">' in html
    assert escape(LABELS[language]["title"]) in html
    assert escape(LABELS[language]["overdue_by_respondent"]) in html
    # One bar per row: 4 states, 5 + 6 age buckets, 3 levels, 3 respondents, 3 regions and
    # 12 months.
    assert html.count("<svg") == 36
    assert "http://" not in html
    assert "https://" not in html
    assert not re.search(r"\b(src|href)\s*=", html)
    assert "MR-7" in html


def bars(html: str) -> list[tuple[int, int]]:
    return [
        (int(x), int(width))
        for x, width in re.findall(r'<rect x="(\d+)" y="0" width="(\d+)"', html)
    ]


def test_html_bars_scaled(report: EscalationReport) -> None:
    html = render_html(report, language="en")
    # Open dossiers by state: answered 2, information_requested 1, recommendation 1,
    # transmitted 2, on a 300-pixel scale; then the aging buckets 1, 1, 1, 2, 1.
    assert bars(html)[:9] == [
        (0, 300),
        (0, 150),
        (0, 150),
        (0, 300),
        (0, 150),
        (0, 150),
        (0, 150),
        (0, 300),
        (0, 150),
    ]


def test_html_bars_mirrored_arabic(report: EscalationReport) -> None:
    html = render_html(report, language="ar")
    # Right to left, bars end at the label side: a half bar starts at x = 150.
    assert bars(html)[:4] == [(0, 300), (150, 150), (150, 150), (0, 300)]


def test_html_default_french(report: EscalationReport) -> None:
    html = render_html(report)
    assert '<html lang="fr" dir="ltr">' in html
    # 50 % on-time rate, a median of 52 days and of 34 working days, French style.
    assert "50,0\u00a0%" in html
    assert "52,0" in html
    assert escape(LABELS["fr"]["median_answer_working_days"]) in html
    assert "34,0" in html


def test_html_respondent_names_escaped(report: EscalationReport) -> None:
    names = {RABAT: "Al Omrane Rabat <script>alert(1)</script>"}
    html = render_html(report, language="en", respondent_names=names)
    assert "<script>" not in html
    assert "Al Omrane Rabat &lt;script&gt;" in html
    assert LABELS["en"]["unassigned"] in html


def test_html_unknown_language(report: EscalationReport) -> None:
    with pytest.raises(InvalidInput, match="'de'"):
        render_html(report, language="de")


def test_labels_complete() -> None:
    keys = set(LABELS["fr"])
    for language, labels in LABELS.items():
        assert set(labels) == keys, language


def test_json_round_trip(report: EscalationReport) -> None:
    text_form = render_json(report)
    data = json.loads(text_form)
    assert data["escalated_total"] == 3
    assert data["overdue_by_level"] == {"0": 1, "1": 1, "2": 1}
    assert data["median_answer_working_days"] == 34.0
    assert EscalationReport.from_dict(data) == report


def test_json_without_working_days(report: EscalationReport) -> None:
    data = json.loads(render_json(report))
    del data["median_answer_working_days"]
    del data["p90_answer_working_days"]
    older = EscalationReport.from_dict(data)
    assert older.median_answer_working_days is None
    assert older.p90_answer_working_days is None
    assert older.median_answer_days == report.median_answer_days


def test_json_round_trip_filtered(filled: Engine) -> None:
    window = ReportFilter(respondent=RABAT, filed_from=date(2025, 1, 1))
    report = build_report(filled, as_of=AS_OF, filters=window, deadline_name="answer")
    assert EscalationReport.from_dict(json.loads(render_json(report))) == report


def test_csv_round_trip(report: EscalationReport) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    summary = {(row["section"], row["key"]): row["value"] for row in rows if row["value"]}
    assert summary["report", "as_of"] == "2025-06-30T10:00:00+00:00"
    assert summary["report", "timezone"] == "Africa/Casablanca"
    assert summary["summary", "answered_on_time"] == "2"
    assert float(summary["summary", "on_time_rate"]) == report.on_time_rate
    assert float(summary["summary", "p90_answer_days"]) == report.p90_answer_days
    assert float(summary["summary", "median_answer_working_days"]) == 34.0
    assert float(summary["summary", "p90_answer_working_days"]) == report.p90_answer_working_days
    by_state = {row["key"]: int(row["value"]) for row in rows if row["section"] == "open_by_state"}
    assert by_state == report.open_by_state
    by_respondent = {
        row["key"]: int(row["value"]) for row in rows if row["section"] == "overdue_by_respondent"
    }
    assert by_respondent == report.overdue_by_respondent
    aging = [(row["key"], int(row["value"])) for row in rows if row["section"] == "aging"]
    assert aging == report.aging
    overdue_months = [
        (row["key"], int(row["value"])) for row in rows if row["section"] == "monthly.overdue"
    ]
    assert overdue_months == [(row.month, row.overdue) for row in report.monthly]
    listed = [row for row in rows if row["section"] == "escalated"]
    assert [
        EscalatedRow(
            row["reference"],
            row["respondent"] or None,
            row["region"] or None,
            row["state"],
            int(row["level"]),
            datetime.fromisoformat(row["due_at"]),
            int(row["days_overdue"]),
        )
        for row in listed
    ] == report.escalated
    assert [row["key"] for row in listed] == ["1", "2", "3"]


def test_write_report(report: EscalationReport, tmp_path: Path) -> None:
    written = write_report(report, tmp_path / "out", languages=("fr", "ar"))
    names = sorted(path.name for path in written)
    assert names == [
        "escalation-report-20250630T100000Z.ar.html",
        "escalation-report-20250630T100000Z.csv",
        "escalation-report-20250630T100000Z.fr.html",
        "escalation-report-20250630T100000Z.json",
    ]
    csv_bytes = (tmp_path / "out" / "escalation-report-20250630T100000Z.csv").read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbfsection,key,value")
    json_path = tmp_path / "out" / "escalation-report-20250630T100000Z.json"
    assert EscalationReport.from_dict(json.loads(json_path.read_text("utf-8"))) == report


def test_write_report_rejects_unknown(report: EscalationReport, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="'xlsx'"):
        write_report(report, tmp_path / "a", formats=("html", "xlsx"))
    with pytest.raises(InvalidInput, match="'de'"):
        write_report(report, tmp_path / "b", languages=("de",))
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_pdf_pages(report: EscalationReport, tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    written = write_report(report, tmp_path, languages=("ar",), formats=("pdf",))
    assert written[0].read_bytes().startswith(b"%PDF")
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(written[0]), str(tmp_path / "page")], check=True
    )
    assert sorted(tmp_path.glob("page*.png"))
