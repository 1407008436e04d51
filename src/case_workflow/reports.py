"""Escalation reports: figures computed in SQL as of an instant, rendered as HTML, CSV or JSON.

:func:`build_report` reconstructs the store as it was at ``as_of`` from the event history (the
state of each dossier, which deadlines were open and overdue, which escalation levels were
reached) and aggregates it in the database, on SQLite and PostgreSQL alike. Memory stays bounded
whatever the number of dossiers: only the top of the overdue list is fetched row by row.

Renderers: :func:`render_html` (a self-contained page in French, Arabic or English, with inline
SVG charts, readable printed), :func:`render_csv` (one long table, described in
:mod:`case_workflow.reporting.tabular`), :func:`render_json`, and :func:`write_report` to write
them (and PDF, through WeasyPrint) into a folder.

Example::

    report = build_report(engine, as_of=clock.now(), deadline_name="answer")
    write_report(report, Path("reports"), languages=("fr", "ar"))
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from case_workflow.errors import InvalidInput
from case_workflow.reporting.build import build_report
from case_workflow.reporting.html import render_html
from case_workflow.reporting.labels import LANGUAGES
from case_workflow.reporting.model import (
    EscalatedRow,
    EscalationReport,
    MonthRow,
    ReportFilter,
)
from case_workflow.reporting.tabular import render_csv, render_json

__all__ = [
    "FORMATS",
    "LANGUAGES",
    "EscalatedRow",
    "EscalationReport",
    "MonthRow",
    "ReportFilter",
    "build_report",
    "render_csv",
    "render_html",
    "render_json",
    "write_report",
]

log = logging.getLogger(__name__)

FORMATS = ("html", "pdf", "csv", "json")


def write_report(
    report: EscalationReport,
    folder: Path,
    *,
    languages: Sequence[str] = ("fr",),
    formats: Sequence[str] = ("html", "csv", "json"),
    respondent_names: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write ``report`` into ``folder`` (created if missing) and return the files written.

    Files are named ``escalation-report-<as_of UTC>`` with ``.<language>.html`` and
    ``.<language>.pdf`` per language, and ``.csv`` and ``.json`` once. The CSV file is UTF-8
    with a byte order mark, so spreadsheet programs read Arabic names correctly. Existing files
    of the same name are replaced. Raises :class:`InvalidInput` for an unknown language or format
    before writing anything, and when PDF is requested without WeasyPrint installed.
    """
    for language in languages:
        if language not in LANGUAGES:
            raise InvalidInput(
                f"unknown report language {language!r}; use one of {', '.join(LANGUAGES)}"
            )
    for format_name in formats:
        if format_name not in FORMATS:
            raise InvalidInput(
                f"unknown report format {format_name!r}; use one of {', '.join(FORMATS)}"
            )
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"escalation-report-{report.as_of:%Y%m%dT%H%M%SZ}"
    written: list[Path] = []
    for language in languages:
        if "html" not in formats and "pdf" not in formats:
            break
        html = render_html(report, language=language, respondent_names=respondent_names)
        if "html" in formats:
            path = folder / f"{stem}.{language}.html"
            path.write_text(html, encoding="utf-8")
            written.append(path)
        if "pdf" in formats:
            # Imported here: WeasyPrint is optional and slow to import.
            from case_workflow.letters.pdf import render_pdf

            path = folder / f"{stem}.{language}.pdf"
            path.write_bytes(render_pdf(html))
            written.append(path)
    if "csv" in formats:
        path = folder / f"{stem}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as stream:
            stream.write(render_csv(report))
        written.append(path)
    if "json" in formats:
        path = folder / f"{stem}.json"
        path.write_text(render_json(report), encoding="utf-8")
        written.append(path)
    log.info("escalation report written to %s: %d files", folder, len(written))
    return written
