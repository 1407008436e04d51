"""Commands on the store: init, file, fire, show, verify, sweep and scheduler."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import typer

from case_workflow.calendars import load_zone
from case_workflow.cli import app, reported_errors
from case_workflow.cli.i18n import gettext_ as _
from case_workflow.cli.options import DatabaseOption, WorkflowsOption, open_engine, parse_instant
from case_workflow.errors import InvalidInput
from case_workflow.records import Complainant
from case_workflow.states import Actor
from case_workflow.store.database import DEFAULT_URL

__all__: list[str] = []


def _reject_constant(name: str) -> object:
    raise InvalidInput(f"invalid --payload: {name} is not valid JSON; use a number or null")


def _payload(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidInput("invalid --payload: nested too deeply; flatten the JSON") from None
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"invalid --payload {text!r} ({error.msg}); give a JSON object such as "
            '\'{"outcome": "resolved"}\''
        ) from None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"invalid --payload {text!r}; give a JSON object, not {type(value).__name__}"
        )
    return value


@app.command(help=_("Create or upgrade the database schema."))
def init(database: DatabaseOption = DEFAULT_URL) -> None:
    with reported_errors(), open_engine(database, create_schema=True):
        pass
    typer.echo(_("database ready: %(url)s") % {"url": database})


@app.command("file", help=_("File a new dossier and print its reference."))
def file_dossier(
    workflow: Annotated[str, typer.Argument(help=_("Workflow name, e.g. mediator-alomrane."))],
    subject: Annotated[str, typer.Option(help=_("Subject of the complaint."))],
    complainant: Annotated[str, typer.Option(help=_("Complainant's name."))],
    actor: Annotated[str, typer.Option(help=_("Name of the person filing."))],
    role: Annotated[str, typer.Option(help=_("Role of that person in the workflow."))],
    institution: Annotated[str, typer.Option(help=_("Institution of that person."))],
    respondent: Annotated[str | None, typer.Option(help=_("Respondent code."))] = None,
    email: Annotated[str, typer.Option(help=_("Complainant's e-mail address."))] = "",
    language: Annotated[str, typer.Option(help=_("Complainant's language (fr, ar)."))] = "fr",
    urgent: Annotated[bool, typer.Option(help=_("Apply the urgent delay."))] = False,
    reference: Annotated[
        str | None, typer.Option(help=_("Reference (default: generated)."))
    ] = None,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        dossier = engine.file(
            workflow,
            actor=Actor(actor, role, institution),
            complainant=Complainant(complainant, email=email, language=language),
            subject=subject,
            respondent=respondent,
            urgent=urgent,
            reference=reference,
        )
    typer.echo(dossier.reference)


@app.command(help=_("Fire an event on a dossier."))
def fire(
    reference: Annotated[str, typer.Argument(help=_("Dossier reference."))],
    event: Annotated[str, typer.Argument(help=_("Event name."))],
    actor: Annotated[str, typer.Option(help=_("Name of the person firing the event."))],
    role: Annotated[str, typer.Option(help=_("Role of that person in the workflow."))],
    institution: Annotated[str, typer.Option(help=_("Institution of that person."))],
    payload: Annotated[str | None, typer.Option(help=_("Event payload as a JSON object."))] = None,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        dossier = engine.fire(
            reference, event, actor=Actor(actor, role, institution), payload=_payload(payload)
        )
    typer.echo(
        _("%(reference)s: %(state)s (version %(version)d)")
        % {"reference": dossier.reference, "state": dossier.state, "version": dossier.version}
    )


@app.command("list", help=_("List dossiers in filing order."))
def list_dossiers(
    state: Annotated[str | None, typer.Option(help=_("Only dossiers in this state."))] = None,
    respondent: Annotated[str | None, typer.Option(help=_("Only this respondent."))] = None,
    workflow: Annotated[str | None, typer.Option(help=_("Only this workflow."))] = None,
    limit: Annotated[int, typer.Option(help=_("How many dossiers at most."))] = 100,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        found = engine.dossiers(state=state, respondent=respondent, workflow=workflow, limit=limit)
    for dossier in found:
        typer.echo(
            f"{dossier.reference}  {dossier.state:<24}  {dossier.respondent or '-':<32}  "
            f"{dossier.escalation_level}  {dossier.filed_at.date().isoformat()}"
        )


@app.command(help=_("Show a dossier: state, deadlines, history and letters."))
def show(
    reference: Annotated[str, typer.Argument(help=_("Dossier reference."))],
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        dossier = engine.get(reference)
        deadlines = engine.deadlines(reference)
        history = engine.history(reference)
        letters = engine.letters(reference)
    typer.echo(
        _(
            "%(reference)s  %(workflow)s  state %(state)s  version %(version)d  escalation level %(level)d"
        )
        % {
            "reference": dossier.reference,
            "workflow": dossier.workflow,
            "state": dossier.state,
            "version": dossier.version,
            "level": dossier.escalation_level,
        }
    )
    typer.echo(_("Deadlines:"))
    for deadline in deadlines:
        typer.echo(
            f"  {deadline.name}  {deadline.status.value}  {deadline.rule}  "
            f"due {deadline.due_at.isoformat()}"
        )
    typer.echo(_("History:"))
    for event in history:
        typer.echo(
            f"  {event.seq:>3}  {event.occurred_at.isoformat()}  {event.trigger}  "
            f"{event.from_state or '-'} -> {event.to_state}  {event.role}"
        )
    typer.echo(_("Letters:"))
    for letter in letters:
        typer.echo(f"  {letter.registry_number}  {letter.letter}  {letter.language}")


@app.command(help=_("Recompute the event hash chains; exit status 1 if one is broken."))
def verify(
    reference: Annotated[str | None, typer.Argument(help=_("One dossier (default: all)."))] = None,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        result = engine.verify(reference)
    for broken_reference, seq, reason in result.broken:
        typer.echo(
            _("broken: %(reference)s event %(seq)d: %(reason)s")
            % {"reference": broken_reference, "seq": seq, "reason": reason},
            err=True,
        )
    typer.echo(
        _("%(dossiers)d dossiers, %(events)d events checked: %(verdict)s")
        % {
            "dossiers": result.dossiers,
            "events": result.events,
            "verdict": _("chains intact") if result.ok else _("CHAINS BROKEN"),
        }
    )
    if not result.ok:
        raise typer.Exit(1)


@app.command(help=_("Run one sweep: act once on every due reminder and escalation."))
def sweep(
    at: Annotated[
        str | None,
        typer.Option(help=_("Sweep as of this instant (ISO 8601; without offset, local time).")),
    ] = None,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    with reported_errors(), open_engine(database, workflows) as engine:
        zone = load_zone(engine.default_timezone)
        result = engine.sweep(parse_instant(at, zone=zone))
    typer.echo(
        _(
            "sweep at %(at)s: %(reminders)d reminders, %(escalations)d escalations, %(skipped)d skipped, %(letters)d letters"
        )
        % {
            "at": result.now.isoformat(),
            "reminders": result.reminders,
            "escalations": result.escalations,
            "skipped": result.skipped,
            "letters": result.letters,
        }
    )


@app.command(help=_("Run sweeps on a schedule until SIGINT or SIGTERM."))
def scheduler(
    schedule: Annotated[
        str,
        typer.Option(help=_("'every N minutes' or a cron expression in the workflow's time zone.")),
    ] = "every 5 minutes",
    timezone: Annotated[
        str | None,
        typer.Option(help=_("Time zone of a cron schedule (default: the first workflow's).")),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help=_("Serve Prometheus metrics at http://127.0.0.1:PORT/metrics.")),
    ] = None,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.scheduler import SweepScheduler

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with reported_errors(), open_engine(database, workflows) as engine:
        zone_name = timezone or engine.default_timezone
        after_sweep = None
        if metrics_port is not None:
            from case_workflow.metrics import SweepMetrics

            metrics = SweepMetrics(engine)
            metrics.serve(metrics_port)
            after_sweep = metrics.record_sweep
        runner = SweepScheduler(
            engine,
            schedule=schedule,
            timezone=zone_name,
            background=False,
            after_sweep=after_sweep,
        )
        # The scheduler's first run is at start-up: a catch-up after any downtime.
        runner.start()
    typer.echo(_("scheduler stopped"))
