"""Options shared by the commands that open a store, and the engine they build."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated

import typer

from case_workflow.cli.i18n import gettext_ as _
from case_workflow.clock import Clock
from case_workflow.definition.loader import shipped_workflows
from case_workflow.engine import Engine
from case_workflow.errors import InvalidInput, StoreError
from case_workflow.store.database import DEFAULT_URL

__all__ = ["DatabaseOption", "WorkflowsOption", "open_engine", "parse_instant"]

DatabaseOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="CASE_WORKFLOW_DB",
        help=_("Database URL or SQLite file path."),
        show_default=True,
    ),
]
WorkflowsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--workflow",
        "-w",
        help=_(
            "Workflow file or shipped workflow name; repeat for several (default: all shipped)."
        ),
    ),
]


DEFAULT_WORKFLOW = "mediator-alomrane"
# Dates a back office can mean; beyond them time zone arithmetic overflows.
FIRST_YEAR = 1900
LAST_YEAR = 2200


def shipped_workflow_names() -> list[str]:
    """Return the shipped workflows, the default one first (it sets the default time zone)."""
    return sorted(shipped_workflows(), key=lambda name: name != DEFAULT_WORKFLOW)


def open_engine(
    database: str = DEFAULT_URL,
    workflows: list[str] | None = None,
    *,
    clock: Clock | None = None,
    create_schema: bool = False,
) -> Engine:
    """Build an engine on ``database`` with the given workflows (all shipped ones by default)."""
    _check_sqlite_file(database, create_schema)
    engine = Engine(
        database,
        workflows=workflows or shipped_workflow_names(),
        clock=clock,
        create_schema=create_schema,
    )
    try:
        engine.check_schema()
    except BaseException:
        engine.close()
        raise
    return engine


def _check_sqlite_file(database: str, create_schema: bool) -> None:
    """Refuse a SQLite file that does not exist, instead of creating an empty one to read."""
    if create_schema:
        return
    url = database if "://" in database else f"sqlite:///{database}"
    if not url.startswith("sqlite:///") or "?" in url or url == "sqlite:///:memory:":
        return
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        raise StoreError(
            f"database file {str(path)!r} not found; run 'case-workflow init' with the same "
            "--db to create it, or check the path"
        )


def parse_instant(
    text: str | None, *, end_of_day: bool = False, zone: tzinfo = UTC
) -> datetime | None:
    """Parse an ISO date or instant given on the command line.

    A value without offset is read in ``zone``; with ``end_of_day`` a bare date means its
    last second (23:59:59 local).
    """
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"invalid date or instant {text!r}; write e.g. 2024-12-31 or 2024-12-31T18:00:00+01:00"
        ) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise InvalidInput(
            f"date {text!r} is out of range; give a year from {FIRST_YEAR} to {LAST_YEAR}"
        )
    if moment.tzinfo is None:
        if end_of_day and len(text) <= 10:
            moment = moment.replace(hour=23, minute=59, second=59)
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
