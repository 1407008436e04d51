"""CSV and JSON output of a report.

JSON is :meth:`EscalationReport.to_dict` as UTF-8 text; :meth:`EscalationReport.from_dict`
reads it back.

CSV is one table in long form, so a spreadsheet can filter or pivot it. Every row has the
columns::

    section, key, value, reference, respondent, region, state, level, due_at, days_overdue

Summary rows fill ``section``, ``key`` and ``value`` and leave the dossier columns empty:

============================  ==========================  ==================================
section                       key                         value
============================  ==========================  ==================================
``report``                    ``as_of``, ``timezone``,    ISO 8601 instant, zone name,
                              ``deadline_name``           deadline name (empty: all)
``filter``                    ``respondent``, ``region``, the filter value (empty: none);
                              ``workflow``, ``filed_from``, dates as ISO 8601
                              ``filed_to``
``summary``                   ``answered_on_time``,       a number; the rate is a fraction
                              ``answered_late``,          from 0 to 1; empty when there is
                              ``on_time_rate``,           no answered deadline
                              ``median_answer_days``,
                              ``p90_answer_days``,
                              ``median_answer_working_days``,
                              ``p90_answer_working_days``,
                              ``escalated_total``,
                              ``estimated_holiday_deadlines``
``open_by_state``             a state                     open dossiers in that state
``overdue_by_respondent``     a respondent (empty: none)  overdue dossiers
``overdue_by_region``         a region (empty: none)      overdue dossiers
``overdue_by_level``          an escalation level         overdue dossiers
``aging``                     a bucket such as ``0-30``   open dossiers
``overdue_aging``             a bucket such as ``0-15``   overdue dossiers
``monthly.filed``,            a month ``YYYY-MM``         the month's count
``monthly.answered``,
``monthly.overdue``,
``monthly.escalated``
============================  ==========================  ==================================

Rows of section ``escalated`` list the overdue dossiers, most overdue first: ``key`` is the
rank from 1, ``value`` is empty, and the dossier columns are filled (``due_at`` as an ISO 8601
instant, ``respondent`` and ``region`` empty when not set).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from case_workflow.reporting.model import EscalationReport

__all__ = ["CSV_COLUMNS", "render_csv", "render_json"]

CSV_COLUMNS = (
    "section",
    "key",
    "value",
    "reference",
    "respondent",
    "region",
    "state",
    "level",
    "due_at",
    "days_overdue",
)


def render_json(report: EscalationReport) -> str:
    """Render ``report`` as indented JSON (non-ASCII text kept as is)."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"


def render_csv(report: EscalationReport) -> str:
    """Render ``report`` as one CSV table; the module docstring describes its rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in _summary_rows(report):
        writer.writerow([*row, "", "", "", "", "", "", ""])
    for rank, item in enumerate(report.escalated, start=1):
        writer.writerow(
            [
                "escalated",
                rank,
                "",
                item.reference,
                item.respondent or "",
                item.region or "",
                item.state,
                item.level,
                item.due_at.isoformat(),
                item.days_overdue,
            ]
        )
    return buffer.getvalue()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _summary_rows(report: EscalationReport) -> Iterator[tuple[str, str, str]]:
    yield "report", "as_of", report.as_of.isoformat()
    yield "report", "timezone", report.timezone
    yield "report", "deadline_name", _text(report.deadline_name)
    for key, value in report.generated_for.to_dict().items():
        yield "filter", key, _text(value)
    summary = {
        "answered_on_time": report.answered_on_time,
        "answered_late": report.answered_late,
        "on_time_rate": report.on_time_rate,
        "median_answer_days": report.median_answer_days,
        "p90_answer_days": report.p90_answer_days,
        "median_answer_working_days": report.median_answer_working_days,
        "p90_answer_working_days": report.p90_answer_working_days,
        "escalated_total": report.escalated_total,
        "estimated_holiday_deadlines": report.estimated_holiday_deadlines,
    }
    for key, number in summary.items():
        yield "summary", key, _text(number)
    yield from _counts("open_by_state", report.open_by_state.items())
    yield from _counts("overdue_by_respondent", report.overdue_by_respondent.items())
    yield from _counts("overdue_by_region", report.overdue_by_region.items())
    yield from _counts("overdue_by_level", report.overdue_by_level.items())
    yield from _counts("aging", report.aging)
    yield from _counts("overdue_aging", report.overdue_aging)
    for row in report.monthly:
        yield "monthly.filed", row.month, str(row.filed)
        yield "monthly.answered", row.month, str(row.answered)
        yield "monthly.overdue", row.month, str(row.overdue)
        yield "monthly.escalated", row.month, str(row.escalated)


def _counts(section: str, items: Iterable[tuple[object, int]]) -> Iterator[tuple[str, str, str]]:
    for key, count in items:
        yield section, str(key), str(count)
