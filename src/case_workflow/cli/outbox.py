"""Commands on the outbox: list, deliver, retry, purge and archive letters."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from case_workflow.cli import app, reported_errors
from case_workflow.cli.i18n import gettext_ as _
from case_workflow.cli.options import DatabaseOption, WorkflowsOption, open_engine
from case_workflow.errors import InvalidInput
from case_workflow.store.database import DEFAULT_URL

if TYPE_CHECKING:
    from case_workflow.delivery.config import DeliveryConfig

__all__: list[str] = []

outbox_app = typer.Typer(
    help=_("Deliver queued letters and inspect the outbox."), no_args_is_help=True
)
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("list", help=_("List outbox messages, newest first."))
def list_messages(
    status: Annotated[
        str | None, typer.Option(help=_("pending, sent or dead (default: all)."))
    ] = None,
    limit: Annotated[int, typer.Option(help=_("How many messages at most."))] = 50,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.delivery.commands import count_outbox, list_outbox

    with reported_errors(), open_engine(database, workflows) as engine:
        counts = count_outbox(engine)
        entries = list_outbox(engine, status=status, limit=limit)
    typer.echo("  ".join(f"{state.value}: {count}" for state, count in sorted(counts.items())))
    for entry in entries:
        typer.echo(
            f"{entry.id:>6}  {entry.status.value:<7}  {entry.channel:<8}  "
            f"{entry.registry_number or '-':<16}  {entry.dossier_reference}  "
            f"attempts {entry.attempts}  {entry.last_error or ''}"
        )


def _config(path: Path) -> DeliveryConfig:
    from case_workflow.delivery.config import load_delivery_config

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInput(
            f"cannot read delivery configuration {str(path)!r}: {error.strerror}"
        ) from None
    except yaml.YAMLError as error:
        raise InvalidInput(
            f"invalid YAML in delivery configuration {str(path)!r}: {error}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"delivery configuration {str(path)!r} must be a mapping with a 'channels' key"
        )
    return load_delivery_config(data)


@outbox_app.command("deliver", help=_("Deliver due messages once, or keep delivering."))
def deliver_messages(
    config: Annotated[
        Path, typer.Option(help=_("Delivery configuration (YAML): channels and retries."))
    ],
    loop: Annotated[bool, typer.Option(help=_("Keep delivering until SIGINT or SIGTERM."))] = False,
    interval: Annotated[
        float, typer.Option(help=_("Seconds to wait when nothing is due (with --loop)."))
    ] = 30.0,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.delivery.commands import deliver

    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with reported_errors(), open_engine(database, workflows) as engine:
        settings = _config(config)
        result = deliver(
            engine,
            settings.channels,
            policy=settings.policy,
            lease=settings.lease,
            batch_size=settings.batch_size,
            loop=loop,
            interval=interval,
            stop=stop,
        )
    typer.echo(
        _("%(sent)d sent, %(retried)d to retry, %(dead)d dead")
        % {"sent": result.sent, "retried": result.retried, "dead": result.dead}
    )


@outbox_app.command("retry", help=_("Give dead messages another round of attempts."))
def retry(
    message_id: Annotated[
        list[int] | None, typer.Option("--id", help=_("Only this message; repeat for several."))
    ] = None,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.delivery.commands import retry_dead

    with reported_errors(), open_engine(database, workflows) as engine:
        count = retry_dead(engine, now=engine.clock.now(), ids=message_id)
    typer.echo(_("%(count)d messages queued again") % {"count": count})


@outbox_app.command("purge", help=_("Delete sent messages older than some days."))
def purge(
    older_than: Annotated[int, typer.Option(help=_("Age in days."))] = 90,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.delivery.commands import purge_sent

    with reported_errors(), open_engine(database, workflows) as engine:
        count = purge_sent(engine, now=engine.clock.now(), older_than_days=older_than)
    typer.echo(_("%(count)d sent messages purged") % {"count": count})


@outbox_app.command(
    "archive", help=_("Render letters not yet archived as PDF and chain their hashes.")
)
def archive(
    limit: Annotated[int, typer.Option(help=_("How many letters at most."))] = 100,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.delivery.commands import archive_pending

    with reported_errors(), open_engine(database, workflows) as engine:
        count = archive_pending(engine, now=engine.clock.now(), limit=limit)
    typer.echo(_("%(count)d letters archived") % {"count": count})
