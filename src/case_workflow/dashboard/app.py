"""The Starlette application that serves the dashboard, and :func:`serve` to run it with uvicorn.

Routes (GET and HEAD only; any other method gets 405):

- ``/``: the escalation report with its filter form (a plain GET form, no JavaScript);
- ``/report``, ``/report.csv``, ``/report.json``: the same report as the printable page of
  :func:`case_workflow.reports.render_html`, as CSV and as JSON;
- ``/dossiers/{reference}``: one dossier's facts, history, deadlines and letters;
- ``/dossiers/{reference}/letters/{id}``: a letter's stored HTML, served as it was stored.

Every response carries a Content-Security-Policy that allows no script. A letter's response
also carries the ``sandbox`` directive, because a letter's HTML was rendered from templates and
data that the dashboard does not control. Pages are rendered by a sandboxed Jinja2 environment with
autoescaping. A Host header check rejects names other than the ones served (a defence against
DNS rebinding when bound to a loopback address).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from case_workflow.calendars import load_zone
from case_workflow.clock import Clock, SystemClock
from case_workflow.dashboard.labels import page_labels
from case_workflow.dashboard.query import ReportQuery
from case_workflow.dashboard.views import (
    TOP,
    dossier_page,
    letter_html,
    make_read_only,
    read_snapshot,
    report_page,
)
from case_workflow.engine import Engine
from case_workflow.errors import CaseWorkflowError, DossierNotFound, InvalidInput
from case_workflow.reporting.html import TEMPLATES as REPORT_TEMPLATES
from case_workflow.reports import (
    EscalationReport,
    build_report,
    render_csv,
    render_html,
    render_json,
)

__all__ = ["LOOPBACK_HOSTS", "PAGE_POLICY", "STORED_HTML_POLICY", "create_app", "serve"]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

# Pages: inline styles and inline SVG only; the form submits to this server.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# Stored letters and the printable report: no script, no form, no navigation, own origin.
STORED_HTML_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'; sandbox"
)
_COMMON_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
    b"x-frame-options": b"DENY",
}


class SecurityHeaders:
    """ASGI middleware that adds the common security headers, and the page policy when unset."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                for name, value in _COMMON_HEADERS.items():
                    if name not in present:
                        headers.append((name, value))
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", PAGE_POLICY.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


@functools.cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(TEMPLATES), FileSystemLoader(REPORT_TEMPLATES)]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(template: str, context: dict[str, Any]) -> str:
    """Render one of the dashboard's templates with ``context``."""
    return _environment().get_template(template).render(context)


def create_app(
    engine: Engine,
    *,
    clock: Clock | None = None,
    allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
) -> Starlette:
    """Build the read-only dashboard application over ``engine``'s store.

    ``clock`` gives the default as-of instant (the system clock by default); ``allowed_hosts``
    lists the Host header names accepted (``"*"`` accepts any). The engine's SQLite
    connections are switched to ``PRAGMA query_only`` for the life of the engine.
    """
    moment = clock or SystemClock()
    make_read_only(engine.database)

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def guarded(build: Callable[[Request, ReportQuery], Response]) -> Callable[[Request], Response]:
        @functools.wraps(build)
        def endpoint(request: Request) -> Response:
            language = request.query_params.get("lang", "fr")
            language = language if language in ("fr", "ar", "en") else "fr"
            try:
                query = ReportQuery.parse(request.query_params)
                return build(request, query)
            except InvalidInput as error:
                log.info("dashboard request %s rejected: %s", request.url.path, error)
                return _error(400, "bad_request", str(error), language, root(request))
            except DossierNotFound as error:
                log.info("dashboard request %s: %s", request.url.path, error)
                return _error(404, "not_found", str(error), language, root(request))
            except CaseWorkflowError as error:
                log.warning("dashboard request %s failed: %s", request.url.path, error)
                return _error(503, "store_error", str(error), language, root(request))

        return endpoint

    def index(request: Request, query: ReportQuery) -> Response:
        context = report_page(engine, query, moment.now(), root(request))
        return HTMLResponse(render_page("index.html.j2", context))

    def report(request: Request, query: ReportQuery) -> Response:
        built = _report(engine, query, moment.now())
        suffix = request.url.path.rsplit("/", 1)[-1]
        if suffix == "report.csv":
            return Response(
                render_csv(built),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": 'attachment; filename="escalation-report.csv"'},
            )
        if suffix == "report.json":
            return Response(render_json(built), media_type="application/json")
        html = render_html(
            built,
            language=query.language,
            respondent_names=engine.respondent_names(query.language),
        )
        return HTMLResponse(html, headers={"content-security-policy": STORED_HTML_POLICY})

    def dossier(request: Request, query: ReportQuery) -> Response:
        reference = str(request.path_params["reference"])
        context = dossier_page(engine, reference, query, root(request))
        return HTMLResponse(render_page("dossier.html.j2", context))

    def letter(request: Request, query: ReportQuery) -> Response:
        reference = str(request.path_params["reference"])
        letter_id = int(request.path_params["letter_id"])
        html = letter_html(engine, reference, letter_id)
        if html is None:
            message = f"letter {letter_id} of dossier {reference!r} not found; pick a letter "
            message += "from the dossier's page"
            log.info("dashboard request %s: %s", request.url.path, message)
            return _error(404, "not_found", message, query.language, root(request))
        # The stored copy, byte for byte: never re-rendered from the request.
        return Response(
            html,
            media_type="text/html; charset=utf-8",
            headers={"content-security-policy": STORED_HTML_POLICY},
        )

    routes = [
        Route("/", guarded(index), methods=["GET"]),
        Route("/report", guarded(report), methods=["GET"]),
        Route("/report.csv", guarded(report), methods=["GET"]),
        Route("/report.json", guarded(report), methods=["GET"]),
        Route(
            "/dossiers/{reference:path}/letters/{letter_id:int}", guarded(letter), methods=["GET"]
        ),
        Route("/dossiers/{reference:path}", guarded(dossier), methods=["GET"]),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
    ]
    return Starlette(routes=routes, middleware=middleware)


def _report(engine: Engine, query: ReportQuery, now: datetime) -> EscalationReport:
    timezone = engine.default_timezone
    as_of = query.instant(now, load_zone(timezone))
    with read_snapshot(engine.database) as connection:
        return build_report(
            connection, as_of=as_of, timezone=timezone, filters=query.report_filter(), top=TOP
        )


def _error(status: int, title_key: str, message: str, language: str, root: str) -> Response:
    labels = page_labels(language)
    context = {
        "language": language,
        "direction": "rtl" if language == "ar" else "ltr",
        "labels": labels,
        "title": labels[title_key],
        "message": message,
        "back": f"{root}/?lang={language}",
    }
    return HTMLResponse(render_page("error.html.j2", context), status_code=status)


def serve(app: Starlette, *, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve ``app`` with uvicorn until SIGINT or SIGTERM."""
    import uvicorn

    log.info("dashboard serving on http://%s:%d/ (read-only)", host, port)
    config = uvicorn.Config(
        app, host=host, port=port, server_header=False, proxy_headers=False, log_level="info"
    )
    uvicorn.Server(config).run()
    log.info("dashboard stopped")
