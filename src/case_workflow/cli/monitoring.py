"""Monitoring commands: ``dashboard`` serves the escalation report as a read-only web page."""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated

import typer

from case_workflow.cli import app, reported_errors
from case_workflow.cli.i18n import gettext_ as _
from case_workflow.cli.options import DatabaseOption, WorkflowsOption, open_engine
from case_workflow.errors import InvalidInput
from case_workflow.store.database import DEFAULT_URL

__all__: list[str] = []

log = logging.getLogger(__name__)

MAX_PORT = 65_535


def _allowed_hosts(host: str) -> list[str]:
    """Return the Host header names to accept when bound to ``host``.

    A wildcard address (0.0.0.0 or ::) serves any name, so every Host header is accepted.
    """
    from case_workflow.dashboard.app import LOOPBACK_HOSTS

    try:
        if ipaddress.ip_address(host).is_unspecified:
            return ["*"]
    except ValueError:
        pass
    return sorted({*LOOPBACK_HOSTS, host})


@app.command(help=_("Serve the escalation report as a read-only web page until interrupted."))
def dashboard(
    host: Annotated[
        str, typer.Option(help=_("Address to listen on; keep 127.0.0.1 unless behind a proxy."))
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help=_("TCP port to listen on."))] = 8050,
    database: DatabaseOption = DEFAULT_URL,
    workflows: WorkflowsOption = None,
) -> None:
    from case_workflow.dashboard import create_app, serve
    from case_workflow.store.schema import check_schema

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with reported_errors():
        if not 0 < port <= MAX_PORT:
            raise InvalidInput(f"invalid --port {port}; give a TCP port from 1 to {MAX_PORT}")
        allowed = _allowed_hosts(host)
        if allowed == ["*"]:
            log.warning("dashboard bound to %s: every network interface can read it", host)
        with open_engine(database, workflows) as engine:
            check_schema(engine.database)
            serve(create_app(engine, allowed_hosts=allowed), host=host, port=port)
