"""Commands that run over many dossiers: report, replay and demo.

Long runs show a progress bar on a terminal and stay quiet when the output is piped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from case_workflow.calendars import load_zone
from case_workflow.cli import app, reported_errors
from case_workflow.cli.i18n import gettext_ as _
from case_workflow.cli.options import DatabaseOption, WorkflowsOption, open_engine, parse_instant
from case_workflow.clock import SimulatedClock
from case_workflow.errors import InvalidInput
from case_workflow.store.database import DEFAULT_URL

__all__: list[str] = []


@contextmanager
def _progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """Yield a callback that sets the number of items done; a no-op when not on a terminal."""
    if not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import Progress

    # Drawn on standard error, the stream checked above, so that standard output stays clean
    # for the printed file names even on a terminal.
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


def _parse_date(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"invalid {option} {text!r}; write a date such as 2024-01-31") from None


@app.command(help=_("Write the escalation report as of a date (default: now)."))
def report(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help=_("Date or instant; a bare date means the end of that day.")),
    ] = None,
    output_format: Annotated[
        list[str] | None,
        typer.Option("--format", help=_("html, csv, json or pdf; repeat for several.")),
    ] = None,
    language: Annotated[
        list[str] | None, typer.Option("--lang", help=_("fr, ar or en; repeat for several."))
    ] = None,
    respondent: Annotated[str | None, typer.Option(help=_("Only this respondent."))] = None,
    region: Annotated[str | None, typer.Option(help=_("Only this region."))] = None,
    only_workflow: Annotated[
        str | None, typer.Option("--only-workflow", help=_("Only dossiers of this workflow."))
    ] = None,
    filed_from: Annotated[str | None, typer.Option(help=_("Filed on or after (date)."))] = None,
    filed_to: Annotated[str | None, typer.Option(help=_("Filed on or before (date)."))] = None,
    deadline: Annotated[
        str | None, typer.Option(help=_("Only deadlines of this name, e.g. answer."))
    ] = None,
    output: Annotated[Path, typer.Option(help=_("Folder to write into."))] = Path("reports"),
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.reports import ReportFilter, build_report, write_report

    with reported_errors(), open_engine(database, workflows) as engine:
        timezone = (
            engine.workflow(only_workflow).definition.timezone
            if only_workflow is not None
            else engine.default_timezone
        )
        known = engine.respondent_names("fr")
        if respondent is not None and known and respondent not in known:
            raise InvalidInput(
                f"unknown respondent {respondent!r}; choose one of: {', '.join(sorted(known))}"
            )
        moment = parse_instant(as_of, end_of_day=True, zone=load_zone(timezone))
        filters = ReportFilter(
            respondent=respondent,
            region=region,
            workflow=only_workflow,
            filed_from=_parse_date(filed_from, "--filed-from"),
            filed_to=_parse_date(filed_to, "--filed-to"),
        )
        # A spinner on a terminal: over a large store the queries take seconds.
        with _progress(_("building the report"), None):
            built = build_report(
                engine.database,
                as_of=moment or engine.clock.now(),
                timezone=timezone,
                deadline_name=deadline,
                filters=filters,
            )
            paths = write_report(
                built,
                output,
                languages=language or ["fr"],
                formats=output_format or ["html", "csv", "json"],
                respondent_names=engine.respondent_names(language[0] if language else "fr"),
            )
    for path in paths:
        typer.echo(str(path))


@app.command(help=_("Replay the City of Boston 311 export through the boston-311 workflow."))
def replay(
    csv_file: Annotated[Path, typer.Argument(help=_("The 311 CSV export."))],
    as_of: Annotated[
        str, typer.Option("--as-of", help=_("End of the replay, Boston local date or instant."))
    ] = "2011-12-31",
    limit: Annotated[int | None, typer.Option(help=_("Replay only the first N cases."))] = None,
    output: Annotated[Path, typer.Option(help=_("Folder for the report and the database."))] = Path(
        "replay-output"
    ),
    database: Annotated[
        str | None, typer.Option("--db", help=_("Database URL (default: OUTPUT/replay.db, new)."))
    ] = None,
) -> None:
    from case_workflow.replay import replay_boston
    from case_workflow.reports import write_report

    with reported_errors():
        if not csv_file.is_file():
            raise InvalidInput(f"CSV file {str(csv_file)!r} not found; give the 311 export's path")
        zone = load_zone("America/New_York")
        end = parse_instant(as_of, end_of_day=True, zone=zone)
        assert end is not None
        output.mkdir(parents=True, exist_ok=True)
        url = database
        if url is None:
            path = output / "replay.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        clock = SimulatedClock(datetime(2011, 1, 1, tzinfo=zone))
        with (
            open_engine(url, ["boston-311"], clock=clock, create_schema=True) as engine,
            _progress(_("replaying"), limit) as advance,
        ):
            result = replay_boston(engine, csv_file, as_of=end, limit=limit, progress=advance)
            paths = []
            if result.report is not None:
                paths = write_report(result.report, output, languages=["en"])
    typer.echo(result.summary())
    for path in paths:
        typer.echo(str(path))


@app.command(help=_("Simulate a year of Mediator dossiers and write letters and the report."))
def demo(
    output: Annotated[Path, typer.Option(help=_("Folder to write into."))] = Path("demo-output"),
    dossiers: Annotated[int, typer.Option(help=_("Number of complaints to simulate."))] = 5700,
    year: Annotated[int, typer.Option(help=_("Year to simulate."))] = 2024,
    seed: Annotated[int, typer.Option(help=_("Random seed (same seed, same run)."))] = 2024,
    database: Annotated[
        str | None, typer.Option("--db", help=_("Database URL (default: OUTPUT/demo.db, new)."))
    ] = None,
    two_sides: Annotated[
        bool,
        typer.Option(
            "--two-sides",
            help=_("Run the Mediator and Al Omrane engines side by side, exchanging messages."),
        ),
    ] = False,
) -> None:
    if two_sides:
        from case_workflow.exchange.demo import run_two_sided_demo

        with reported_errors():
            two_sided = run_two_sided_demo(output, dossiers=min(dossiers, 200), seed=seed)
        typer.echo(two_sided.summary())
        return

    from case_workflow.demo import run_demo

    with reported_errors(), _progress(_("simulating"), None) as advance:

        def progress(_phase: str, done: int, _total: int) -> None:
            advance(done)

        result = run_demo(
            output, url=database, seed=seed, dossiers=dossiers, year=year, progress=progress
        )
    typer.echo(result.summary())
