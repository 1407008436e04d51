"""HTML rendering of a report: one self-contained page with inline SVG bar charts.

The page loads nothing from outside (no scripts, fonts, images or style sheets by URL), so it can
be mailed, archived or printed as is. The Jinja2 template runs in a ``SandboxedEnvironment`` with
autoescaping and ``StrictUndefined``; every value it prints is prepared here, formatted for the
language. Charts are horizontal bars, mirrored for right-to-left languages. Their geometry is
computed here and the template only draws it.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from case_workflow.calendars import load_zone
from case_workflow.reporting.labels import RIGHT_TO_LEFT, labels_for
from case_workflow.reporting.model import UNASSIGNED, EscalationReport
from case_workflow.zones import format_utc_offset

__all__ = ["BarChart", "Text", "bar_chart", "render_html", "text_direction"]

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE = "report.html.j2"

# Width and height of the bar area of a chart row, in CSS pixels.
BAR_AREA_WIDTH = 300
BAR_HEIGHT = 12


def text_direction(value: str) -> str:
    """Return "rtl" when the first strong character of ``value`` is right-to-left, else "ltr".

    Text without a strong character (numbers, dates, "181+") is left to right.
    """
    for char in value:
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return "ltr"


@dataclass(frozen=True, slots=True)
class Text:
    """A printed value with its writing direction, which the template sets on its cell.

    WeasyPrint ignores ``unicode-bidi`` and ``<bdi>``, so a value whose direction differs from
    the page's (a Latin name in an Arabic page) gets a ``dir`` attribute on its table cell.
    Otherwise punctuation at its ends moves to the wrong side ("-casablanca settat").
    """

    value: str
    direction: str

    @classmethod
    def of(cls, value: str) -> Text:
        return cls(value, text_direction(value))

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class BarRow:
    """One row of a bar chart: its label, its count, and its bar in SVG user units."""

    label: Text
    count: Text
    bar_x: int
    bar_width: int


@dataclass(frozen=True, slots=True)
class BarChart:
    """A horizontal bar chart drawn as a table: label, inline SVG bar, count per row.

    Labels stay HTML text because WeasyPrint draws SVG text without Arabic shaping.
    """

    title: str
    key_header: str
    count_header: str
    bar_area_width: int
    bar_height: int
    rows: tuple[BarRow, ...]


def bar_chart(
    title: str,
    headers: tuple[str, str],
    rows: Sequence[tuple[str, int]],
    *,
    right_to_left: bool,
    number: NumberFormat,
) -> BarChart:
    """Lay out ``rows`` (label, value) as bars scaled to the largest value.

    Bars grow from the label side: rightwards left to right, leftwards right to left.
    """
    largest = max((value for _label, value in rows), default=0) or 1
    bars = []
    for label, value in rows:
        length = round(BAR_AREA_WIDTH * value / largest)
        bars.append(
            BarRow(
                label=Text.of(label),
                count=Text.of(number.integer(value)),
                bar_x=BAR_AREA_WIDTH - length if right_to_left else 0,
                bar_width=length,
            )
        )
    return BarChart(
        title=title,
        key_header=headers[0],
        count_header=headers[1],
        bar_area_width=BAR_AREA_WIDTH,
        bar_height=BAR_HEIGHT,
        rows=tuple(bars),
    )


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """Number formatting of one language: separators and the percent pattern."""

    decimal_separator: str
    group_separator: str
    percent_pattern: str
    missing: str

    def integer(self, value: int) -> str:
        return f"{value:,}".replace(",", self.group_separator)

    def decimal(self, value: float | None) -> str:
        if value is None:
            return self.missing
        text = f"{value:,.1f}"
        return (
            text.replace(",", "\x00")
            .replace(".", self.decimal_separator)
            .replace("\x00", self.group_separator)
        )

    def percent(self, value: float | None) -> str:
        if value is None:
            return self.missing
        return self.percent_pattern.format(value=self.decimal(value * 100))


@functools.cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(
    report: EscalationReport,
    *,
    language: str = "fr",
    respondent_names: Mapping[str, str] | None = None,
) -> str:
    """Render ``report`` as a self-contained HTML page in ``language`` (fr, ar or en).

    ``respondent_names`` maps respondent identifiers to the names printed; identifiers missing
    from it are printed as they are. Raises :class:`InvalidInput` for an unknown language.
    """
    page = _Page(language, labels_for(language), dict(respondent_names or {}))
    labels = page.labels
    number = page.number
    zone = load_zone(report.timezone)
    local_as_of = report.as_of.astimezone(zone)
    filters = report.generated_for
    scope = [
        (labels["filter_respondent"], filters.respondent and page.respondent(filters.respondent)),
        (labels["filter_region"], filters.region),
        (labels["filter_workflow"], filters.workflow),
        (labels["filed_from"], filters.filed_from and filters.filed_from.isoformat()),
        (labels["filed_to"], filters.filed_to and filters.filed_to.isoformat()),
    ]
    header = [
        (labels["as_of"], f"{local_as_of:%Y-%m-%d %H:%M} (UTC{format_utc_offset(local_as_of)})"),
        (labels["timezone"], report.timezone),
        (labels["deadline"], report.deadline_name or labels["all_deadlines"]),
        *[(label, value) for label, value in scope if value],
    ]
    if not any(value for _label, value in scope):
        header.append((labels["scope"], labels["all_dossiers"]))
    by_respondent = [(page.respondent(key), n) for key, n in report.overdue_by_respondent.items()]
    by_region = [(page.region(key), n) for key, n in report.overdue_by_region.items()]
    by_level = [(page.level(key), n) for key, n in sorted(report.overdue_by_level.items())]
    monthly_chart = page.chart(
        "overdue_month_end", "month", [(row.month, row.overdue) for row in report.monthly]
    )
    context = {
        "language": language,
        "direction": "rtl" if page.right_to_left else "ltr",
        "labels": labels,
        "title_suffix": header[0][1],
        "header": [(label, Text.of(value)) for label, value in header],
        "summary": [
            (labels["open_total"], number.integer(report.open_total)),
            (labels["overdue_total"], number.integer(report.escalated_total)),
            (labels["answered_on_time"], number.integer(report.answered_on_time)),
            (labels["answered_late"], number.integer(report.answered_late)),
            (labels["on_time_rate"], number.percent(report.on_time_rate)),
            (labels["median_answer_days"], number.decimal(report.median_answer_days)),
            (labels["p90_answer_days"], number.decimal(report.p90_answer_days)),
            (
                labels["median_answer_working_days"],
                number.decimal(report.median_answer_working_days),
            ),
            (labels["p90_answer_working_days"], number.decimal(report.p90_answer_working_days)),
            (
                labels["estimated_holiday_deadlines"],
                number.integer(report.estimated_holiday_deadlines),
            ),
        ],
        "charts": [
            page.chart("open_by_state", "state", list(report.open_by_state.items())),
            page.chart("aging", "days", report.aging),
            page.chart("overdue_aging", "days", report.overdue_aging),
            page.chart("overdue_by_level", "level", by_level),
            page.chart("overdue_by_respondent", "respondent", by_respondent),
            page.chart("overdue_by_region", "region", by_region),
        ],
        "monthly_chart": monthly_chart,
        "monthly": [
            (
                row.month,
                number.integer(row.filed),
                number.integer(row.answered),
                number.integer(row.escalated),
                bar,
            )
            for row, bar in zip(report.monthly, monthly_chart.rows, strict=True)
        ],
        "escalated_shown": labels["escalated_shown"].format(
            shown=number.integer(len(report.escalated)),
            total=number.integer(report.escalated_total),
        ),
        "escalated": [
            {
                "reference": Text.of(row.reference),
                "respondent": Text.of(page.respondent(row.respondent)),
                "region": Text.of(page.region(row.region)),
                "state": Text.of(row.state),
                "level": str(row.level),
                "due": f"{row.due_at.astimezone(zone):%Y-%m-%d}",
                "days_overdue": number.integer(row.days_overdue),
            }
            for row in report.escalated
        ],
    }
    return _environment().get_template(TEMPLATE).render(context)


class _Page:
    """Formatting rules of one rendered page: labels, numbers, direction and display names."""

    def __init__(self, language: str, labels: Mapping[str, str], names: dict[str, str]) -> None:
        self.labels = labels
        self.right_to_left = language in RIGHT_TO_LEFT
        self.names = names
        self.number = NumberFormat(
            decimal_separator=labels["decimal_separator"],
            group_separator=labels["group_separator"],
            percent_pattern=labels["percent"],
            missing=labels["not_available"],
        )

    def respondent(self, key: str | None) -> str:
        if key is None or key == UNASSIGNED:
            return self.labels["unassigned"]
        return self.names.get(key, key)

    def region(self, key: str | None) -> str:
        return self.labels["unassigned"] if key is None or key == UNASSIGNED else key

    def level(self, value: int) -> str:
        return self.labels["level_zero"] if value == 0 else str(value)

    def chart(self, title_key: str, key_header: str, rows: Sequence[tuple[str, int]]) -> BarChart:
        return bar_chart(
            self.labels[title_key],
            (self.labels[key_header], self.labels["count"]),
            rows,
            right_to_left=self.right_to_left,
            number=self.number,
        )
