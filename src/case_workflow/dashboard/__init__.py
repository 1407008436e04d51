"""A read-only web dashboard of the escalation report, for managers.

:func:`create_app` builds a Starlette application over an :class:`~case_workflow.Engine`'s
store, and :func:`serve` runs it with uvicorn (``case-workflow dashboard`` does both). The pages
only read: GET requests, read-only transactions, and on SQLite ``PRAGMA query_only``. Starlette
and uvicorn are imported here only, so ``import case_workflow`` does not load them.
"""

from __future__ import annotations

from case_workflow.dashboard.app import create_app, serve
from case_workflow.dashboard.query import ReportQuery

__all__ = ["ReportQuery", "create_app", "serve"]
