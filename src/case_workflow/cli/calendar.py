"""Commands on deadlines and calendars: explain, and calendar add, confirm, remove, list."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import typer

from case_workflow.calendar_admin import CalendarChangeResult
from case_workflow.calendars import HolidayChange, load_calendar
from case_workflow.cli import app, reported_errors
from case_workflow.cli.i18n import gettext_ as _
from case_workflow.cli.options import (
    FIRST_YEAR,
    LAST_YEAR,
    DatabaseOption,
    WorkflowsOption,
    open_engine,
)
from case_workflow.errors import InvalidInput
from case_workflow.store.database import DEFAULT_URL

__all__: list[str] = []

calendar_app = typer.Typer(
    help=_("Administer holidays and days off; open deadlines are recomputed."),
    no_args_is_help=True,
)
app.add_typer(calendar_app, name="calendar")

CalendarOption = Annotated[
    str, typer.Option("--calendar", help=_("Calendar name, e.g. ma-public-administration."))
]
ActorOption = Annotated[str, typer.Option("--actor", help=_("Name of the administrator."))]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"invalid date {text!r}; write it as YYYY-MM-DD, e.g. 2025-06-09"
        ) from None


@app.command(help=_("Explain how each deadline of a dossier was computed."))
def explain(
    reference: Annotated[str, typer.Argument(help=_("Dossier reference."))],
    language: Annotated[str, typer.Option("--lang", help=_("en or fr."))] = "en",
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        explained = engine.explain(reference, language=language)
    if not explained:
        typer.echo(_("%(reference)s has no deadline") % {"reference": reference})
    for _deadline, text in explained:
        typer.echo(text)
        typer.echo("")


def _change(
    action: Literal["add", "confirm", "remove"],
    day: str,
    name: str,
    kind: Literal["holiday", "day_off"],
    calendar: str,
    actor: str,
    database: str,
    workflows: list[str] | None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        change = HolidayChange(action, _day(day), name=name, kind=kind)
        result = engine.change_calendar(calendar, change, actor=actor)
    typer.echo(
        _(
            "%(calendar)s: %(action)s %(day)s; %(examined)d open deadlines examined, "
            "%(moved)d moved, %(kept)d kept because already acted on"
        )
        % {
            "calendar": calendar,
            "action": action,
            "day": day,
            "examined": result.examined,
            "moved": len(result.moved),
            "kept": len(result.kept_acted_on),
        }
    )
    _echo_moved(result)


def _echo_moved(result: CalendarChangeResult) -> None:
    for moved in result.moved:
        typer.echo(
            f"  {moved.reference}  {moved.deadline}  "
            f"{moved.previous_due_at.isoformat()} -> {moved.due_at.isoformat()}"
        )


@calendar_app.command("add", help=_("Declare a holiday or an exceptional day off."))
def add(
    day: Annotated[str, typer.Argument(help=_("The date, YYYY-MM-DD."))],
    name: Annotated[str, typer.Option(help=_("Name of the holiday."))],
    calendar: CalendarOption,
    actor: ActorOption,
    day_off: Annotated[
        bool, typer.Option(help=_("An exceptional day off, not a holiday."))
    ] = False,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    kind: Literal["holiday", "day_off"] = "day_off" if day_off else "holiday"
    _change("add", day, name, kind, calendar, actor, database, workflows)


@calendar_app.command("confirm", help=_("Confirm the observed date of an estimated holiday."))
def confirm(
    day: Annotated[str, typer.Argument(help=_("The observed first day, YYYY-MM-DD."))],
    calendar: CalendarOption,
    actor: ActorOption,
    name: Annotated[str, typer.Option(help=_("Holiday name, e.g. 'Eid al-Fitr'."))] = "",
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    _change("confirm", day, name, "holiday", calendar, actor, database, workflows)


@calendar_app.command("remove", help=_("Make a date a working day again."))
def remove(
    day: Annotated[str, typer.Argument(help=_("The date, YYYY-MM-DD."))],
    calendar: CalendarOption,
    actor: ActorOption,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    _change("remove", day, "", "holiday", calendar, actor, database, workflows)


@calendar_app.command(
    "recompute",
    help=_("Recompute open deadlines after editing holidays in a workflow file."),
)
def recompute(
    calendar: CalendarOption,
    actor: ActorOption,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        result = engine.recompute_deadlines(calendar, actor=actor)
    typer.echo(
        _(
            "%(calendar)s: %(examined)d open deadlines examined, %(moved)d moved, "
            "%(kept)d kept because already acted on"
        )
        % {
            "calendar": calendar,
            "examined": result.examined,
            "moved": len(result.moved),
            "kept": len(result.kept_acted_on),
        }
    )
    _echo_moved(result)


@calendar_app.command("list", help=_("List a calendar's non-working days of a year."))
def list_days(
    year: Annotated[int, typer.Argument(help=_("The year."))],
    calendar: CalendarOption,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise InvalidInput(
                f"year {year} is out of range; give one from {FIRST_YEAR} to {LAST_YEAR}"
            )
        engine.refresh_calendars()
        working = engine.calendar(calendar) if calendar in engine.calendar_names() else None
        if working is None:
            working = load_calendar(calendar)
        holidays = working.holidays_between(date(year, 1, 1), date(year, 12, 31))
    for holiday in holidays:
        typer.echo(f"{holiday.day.isoformat()}  {holiday.status.value:<11}  {holiday.name}")
