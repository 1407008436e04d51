"""What the dashboard pages show: the report and a dossier, read in one read-only snapshot each.

Every page reads inside :func:`read_snapshot`. On PostgreSQL that is a REPEATABLE READ, READ
ONLY transaction. On SQLite it is a deferred transaction on a connection with ``PRAGMA
query_only`` set (see :func:`make_read_only`), so even a bug here cannot write. The functions return plain
dictionaries for the templates, every value already formatted as text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, event, select
from sqlalchemy import Engine as Database

from case_workflow.calendars import load_zone
from case_workflow.dashboard.labels import page_labels
from case_workflow.dashboard.query import ReportQuery
from case_workflow.engine import Engine
from case_workflow.errors import CaseWorkflowError
from case_workflow.reporting.html import NumberFormat, Text, bar_chart
from case_workflow.reporting.labels import RIGHT_TO_LEFT
from case_workflow.reporting.model import UNASSIGNED, EscalationReport
from case_workflow.reports import build_report
from case_workflow.store.database import READ_ONLY, read_transaction
from case_workflow.store.history import load_history
from case_workflow.store.queries import dossier_id, get_dossier, list_deadlines
from case_workflow.store.tables import letters

__all__ = [
    "dossier_page",
    "dossier_path",
    "letter_html",
    "make_read_only",
    "read_snapshot",
    "report_page",
]

# Overdue dossiers listed on the page; the total is always shown.
TOP = 200


def make_read_only(database: Database) -> None:
    """Make every new SQLite connection of ``database`` refuse writes (``PRAGMA query_only``).

    Connections already in the pool are closed so that none escapes the setting. PostgreSQL
    connections are left as they are: :func:`read_snapshot` opens READ ONLY transactions there.
    """
    if database.dialect.name != "sqlite":
        return

    @event.listens_for(database, "connect")
    def _query_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only = ON")
        cursor.close()

    database.dispose()


@contextmanager
def read_snapshot(database: Database) -> Iterator[Connection]:
    """Open one read-only transaction in which all of a page's queries see the same data."""
    if database.dialect.name != "postgresql":
        with read_transaction(database) as connection:
            yield connection
        return
    with database.connect() as plain:
        connection = plain.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True, **{READ_ONLY: True}
        )
        with connection.begin():
            yield connection


def _number_format(labels: Mapping[str, str]) -> NumberFormat:
    return NumberFormat(
        decimal_separator=labels["decimal_separator"],
        group_separator=labels["group_separator"],
        percent_pattern=labels["percent"],
        missing=labels["not_available"],
    )


def _local(moment: datetime | None, zone: tzinfo, missing: str = "") -> str:
    return missing if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def _choices(
    engine: Engine, language: str, selected: str | None
) -> tuple[list[tuple[str, str]], list[str]]:
    """Return the respondents (code, name) and regions of the loaded workflows, sorted.

    A selected value that no workflow declares is kept, so the form shows what is applied.
    """
    names = engine.respondent_names(language)
    regions = set()
    for workflow in engine.workflows():
        for respondent in workflow.definition.respondents.values():
            if respondent.region:
                regions.add(respondent.region)
    if selected is not None and selected not in names:
        names[selected] = selected
    respondents = sorted(names.items(), key=lambda item: (item[1].casefold(), item[0]))
    return respondents, sorted(regions)


def report_page(
    engine: Engine, query: ReportQuery, now: datetime, root: str = ""
) -> dict[str, Any]:
    """Build the report for ``query`` as of its instant and return the main page's context.

    ``root`` is the path the application is mounted at; links on the page start with it.
    """
    timezone = engine.default_timezone
    zone = load_zone(timezone)
    as_of = query.instant(now, zone)
    with read_snapshot(engine.database) as connection:
        report = build_report(
            connection, as_of=as_of, timezone=timezone, filters=query.report_filter(), top=TOP
        )
    return report_context(engine, query, report, zone, root)


def report_context(
    engine: Engine, query: ReportQuery, report: EscalationReport, zone: tzinfo, root: str = ""
) -> dict[str, Any]:
    """Format ``report`` for the main page in the query's language."""
    labels = page_labels(query.language)
    number = _number_format(labels)
    right_to_left = query.language in RIGHT_TO_LEFT
    names = engine.respondent_names(query.language)

    def respondent(key: str | None) -> str:
        if key is None or key == UNASSIGNED:
            return labels["unassigned"]
        return names.get(key, key)

    def region(key: str | None) -> str:
        return labels["unassigned"] if key is None or key == UNASSIGNED else key

    def chart(title: str, header: str, rows: list[tuple[str, int]]) -> Any:
        return bar_chart(
            labels[title],
            (labels[header], labels["count"]),
            rows,
            right_to_left=right_to_left,
            number=number,
        )

    respondents, regions = _choices(engine, query.language, query.respondent)
    levels = [
        (labels["level_zero"] if level == 0 else str(level), count)
        for level, count in sorted(report.overdue_by_level.items())
    ]
    local_as_of = report.as_of.astimezone(zone)
    return {
        "language": query.language,
        "direction": "rtl" if right_to_left else "ltr",
        "labels": labels,
        "query": query,
        "as_of": f"{local_as_of:%Y-%m-%d %H:%M}",
        "timezone": report.timezone,
        "respondents": respondents,
        "regions": regions,
        "languages": [("fr", "Français"), ("ar", "العربية"), ("en", "English")],
        "links": {
            "form": f"{root}/",
            "reset": f"{root}/"
            + query.query_string(
                respondent=None, region=None, filed_from=None, filed_to=None, as_of=None
            ),
            "printable": f"{root}/report" + query.query_string(),
            "csv": f"{root}/report.csv" + query.query_string(),
            "json": f"{root}/report.json" + query.query_string(),
        },
        "summary": [
            ("open_total", labels["open_total"], number.integer(report.open_total)),
            ("overdue_total", labels["overdue_total"], number.integer(report.escalated_total)),
            ("on_time", labels["answered_on_time"], number.integer(report.answered_on_time)),
            ("late", labels["answered_late"], number.integer(report.answered_late)),
            ("on_time_rate", labels["on_time_rate"], number.percent(report.on_time_rate)),
            ("median", labels["median_answer_days"], number.decimal(report.median_answer_days)),
            (
                "median_working",
                labels["median_answer_working_days"],
                number.decimal(report.median_answer_working_days),
            ),
        ],
        "charts": [
            chart("overdue_by_level", "level", levels),
            chart(
                "overdue_by_respondent",
                "respondent",
                [(respondent(key), n) for key, n in report.overdue_by_respondent.items()],
            ),
            chart(
                "overdue_by_region",
                "region",
                [(region(key), n) for key, n in report.overdue_by_region.items()],
            ),
            chart("overdue_aging", "days", report.overdue_aging),
            chart("open_by_state", "state", list(report.open_by_state.items())),
        ],
        "escalated_shown": labels["escalated_shown"].format(
            shown=number.integer(len(report.escalated)),
            total=number.integer(report.escalated_total),
        ),
        "escalated": [
            {
                "reference": Text.of(row.reference),
                "href": dossier_path(root, row.reference) + query.query_string(),
                "respondent": Text.of(respondent(row.respondent)),
                "region": Text.of(region(row.region)),
                "state": Text.of(row.state),
                "level": str(row.level),
                "due": f"{row.due_at.astimezone(zone):%Y-%m-%d}",
                "days_overdue": number.integer(row.days_overdue),
            }
            for row in report.escalated
        ],
    }


def dossier_path(root: str, reference: str) -> str:
    """Return the path of a dossier's page; the reference is percent-encoded whole."""
    return f"{root}/dossiers/{quote(reference, safe='')}"


def dossier_page(
    engine: Engine, reference: str, query: ReportQuery, root: str = ""
) -> dict[str, Any]:
    """Read a dossier with its history, deadlines and letter list; raise DossierNotFound."""
    labels = page_labels(query.language)
    with read_snapshot(engine.database) as connection:
        dossier = get_dossier(connection, reference)
        owner = dossier_id(connection, reference)
        history = load_history(connection, owner)
        deadline_list = list_deadlines(connection, reference)
        letter_rows = connection.execute(
            select(
                letters.c.id,
                letters.c.letter,
                letters.c.language,
                letters.c.registry_number,
                letters.c.recipient,
                letters.c.issued_at,
                letters.c.subject,
            )
            .where(letters.c.dossier_id == owner)
            .order_by(letters.c.id)
        ).all()
    try:
        timezone = engine.workflow(dossier.workflow).definition.timezone
    except CaseWorkflowError:
        timezone = engine.default_timezone
    zone = load_zone(timezone)
    names = engine.respondent_names(query.language)
    yes_no = labels["yes"] if dossier.urgent else labels["no"]
    if dossier.respondent is None:
        respondent = labels["unassigned"]
    else:
        respondent = names.get(dossier.respondent, dossier.respondent)
    return {
        "language": query.language,
        "direction": "rtl" if query.language in RIGHT_TO_LEFT else "ltr",
        "labels": labels,
        "query": query,
        "back": f"{root}/" + query.query_string(),
        "reference": dossier.reference,
        "times_in": labels["times_in"].format(zone=timezone),
        "facts": [
            (labels["workflow"], Text.of(f"{dossier.workflow} v{dossier.workflow_version}")),
            (labels["current_state"], Text.of(dossier.state)),
            (labels["respondent"], Text.of(respondent)),
            (labels["region"], Text.of(dossier.region or labels["unassigned"])),
            (labels["subject"], Text.of(dossier.subject)),
            (labels["urgent"], Text.of(yes_no)),
            (labels["filed_at"], Text.of(_local(dossier.filed_at, zone))),
            (labels["closed_at"], Text.of(_local(dossier.closed_at, zone, "—"))),
            (labels["outcome"], Text.of(dossier.outcome or "—")),
            (labels["escalation_level"], Text.of(str(dossier.escalation_level))),
        ],
        "events": [
            {
                "seq": str(item.seq),
                "at": _local(item.occurred_at, zone),
                "trigger": Text.of(item.trigger),
                "from_state": Text.of(item.from_state or "—"),
                "to_state": Text.of(item.to_state),
                "actor": Text.of(item.actor),
                "role": Text.of(item.role),
                "institution": Text.of(item.institution),
            }
            for item in history
        ],
        "deadlines": [
            {
                "name": Text.of(item.name),
                "status": item.status.value,
                "rule": Text.of(item.rule),
                "started": _local(item.started_at, zone),
                "due": _local(item.due_at, zone),
                "closed": _local(item.closed_at, zone, "—"),
                "actions": [
                    f"{kind.value} {level}: {_local(fire_at, zone)} ({status.value})"
                    for kind, level, fire_at, status in item.actions
                ],
            }
            for item in deadline_list
        ],
        "letters": [
            {
                "href": f"{dossier_path(root, reference)}/letters/{row.id}",
                "registry_number": Text.of(row.registry_number),
                "letter": Text.of(row.letter),
                "language": row.language,
                "recipient": Text.of(row.recipient),
                "issued": _local(row.issued_at, zone),
                "subject": Text.of(row.subject),
            }
            for row in letter_rows
        ],
    }


def letter_html(engine: Engine, reference: str, letter_id: int) -> str | None:
    """Return the stored HTML of one letter of a dossier, or None when it has no such letter.

    Raises DossierNotFound for an unknown reference.
    """
    with read_snapshot(engine.database) as connection:
        owner = dossier_id(connection, reference)
        html = connection.execute(
            select(letters.c.html).where(letters.c.id == letter_id, letters.c.dossier_id == owner)
        ).scalar_one_or_none()
    return None if html is None else str(html)
