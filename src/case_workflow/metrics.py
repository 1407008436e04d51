"""Prometheus metrics of a sweep process: dossier gauges, sweep timings and action counters.

:class:`SweepMetrics` owns a registry of its own. Passed as ``after_sweep`` to
:class:`~case_workflow.scheduler.SweepScheduler` (``metrics.record_sweep``), it observes each
run's duration and actions, then refreshes the gauges with a few aggregate SQL queries (GROUP
BY workflow, so their cost does not include a Python loop over dossiers). :meth:`serve`
exposes ``/metrics`` with prometheus_client's HTTP server on 127.0.0.1 by default.

Metrics (gauges as of the last sweep's instant):

- ``case_workflow_open_dossiers{workflow}``: dossiers not closed (no final state reached);
- ``case_workflow_overdue_dossiers{workflow}``: dossiers with a running deadline past its due
  time (paused deadlines are not overdue);
- ``case_workflow_escalated_dossiers{workflow}``: open dossiers whose escalation level is 1 or
  more (the level never goes back down while the dossier is open);
- ``case_workflow_outbox_pending``: outbox messages not yet delivered nor given up;
- ``case_workflow_sweep_duration_seconds``: histogram of sweep run durations;
- ``case_workflow_sweep_actions_total{kind}``: reminders, escalations and skipped actions;
- ``case_workflow_sweep_letters_total`` and ``case_workflow_sweep_failures_total``;
- ``case_workflow_metrics_refreshed_timestamp_seconds``: when the gauges were last refreshed.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from sqlalchemy import Connection, Select, distinct, func, select
from sqlalchemy.exc import SQLAlchemyError

from case_workflow.errors import CaseWorkflowError, InvalidInput
from case_workflow.records import DeadlineStatus, SweepResult
from case_workflow.store.database import read_transaction
from case_workflow.store.tables import deadlines, dossiers, outbox

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from case_workflow.engine import Engine

__all__ = ["DURATION_BUCKETS", "SweepMetrics"]

log = logging.getLogger(__name__)

# Seconds: a sweep over a few due actions takes well under a second, a catch-up after days of
# downtime can take minutes.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
PENDING = "pending"
MAX_PORT = 65_535


class SweepMetrics:
    """The metrics of one sweep process over ``engine``'s store, in a registry of their own."""

    def __init__(self, engine: Engine, *, registry: CollectorRegistry | None = None) -> None:
        self.engine = engine
        self.registry = registry if registry is not None else CollectorRegistry()
        self.open_dossiers = Gauge(
            "case_workflow_open_dossiers",
            "Dossiers not closed, by workflow.",
            ["workflow"],
            registry=self.registry,
        )
        self.overdue_dossiers = Gauge(
            "case_workflow_overdue_dossiers",
            "Dossiers with a running deadline past its due time, by workflow.",
            ["workflow"],
            registry=self.registry,
        )
        self.escalated_dossiers = Gauge(
            "case_workflow_escalated_dossiers",
            "Open dossiers at escalation level 1 or more, by workflow.",
            ["workflow"],
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "case_workflow_outbox_pending",
            "Outbox messages waiting for delivery (status pending).",
            registry=self.registry,
        )
        self.refreshed = Gauge(
            "case_workflow_metrics_refreshed_timestamp_seconds",
            "Unix time of the sweep instant at which the gauges were last refreshed.",
            registry=self.registry,
        )

        self.sweep_duration = Histogram(
            "case_workflow_sweep_duration_seconds",
            "Duration of sweep runs, failed ones included.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.sweep_actions = Counter(
            "case_workflow_sweep_actions",
            "Deadline actions handled by sweeps, by kind (reminder, escalation, skipped).",
            ["kind"],
            registry=self.registry,
        )
        self.sweep_letters = Counter(
            "case_workflow_sweep_letters",
            "Letters issued by sweeps.",
            registry=self.registry,
        )
        self.sweep_failures = Counter(
            "case_workflow_sweep_failures",
            "Sweep runs that raised an error (their actions stay pending).",
            registry=self.registry,
        )

        for kind in ("reminder", "escalation", "skipped"):
            self.sweep_actions.labels(kind=kind)
        self._workflows: set[str] = set()
        self._lock = threading.Lock()

    def record_sweep(self, result: SweepResult | None, seconds: float) -> None:
        """Record one sweep run (``result`` None when it failed), then refresh the gauges."""
        self.sweep_duration.observe(seconds)
        if result is None:
            self.sweep_failures.inc()
            self.refresh(self.engine.clock.now())
            return
        self.sweep_actions.labels(kind="reminder").inc(result.reminders)
        self.sweep_actions.labels(kind="escalation").inc(result.escalations)
        self.sweep_actions.labels(kind="skipped").inc(result.skipped)
        self.sweep_letters.inc(result.letters)
        self.refresh(result.now)

    def refresh(self, now: datetime) -> bool:
        """Set the gauges from SQL counts as of ``now``; return False when the store failed.

        A failure is logged and leaves the gauges at their previous values.
        """
        try:
            with read_transaction(self.engine.database) as connection:
                counts = _counts(connection, now)
        except (SQLAlchemyError, CaseWorkflowError) as error:
            log.error("metrics refresh failed, gauges keep their previous values: %s", error)
            return False
        open_counts, overdue_counts, escalated_counts, pending = counts
        with self._lock:
            self._workflows |= set(open_counts) | set(overdue_counts) | set(escalated_counts)
            # A workflow seen before and absent now has no dossier in that gauge any more.
            for workflow in self._workflows:
                self.open_dossiers.labels(workflow=workflow).set(open_counts.get(workflow, 0))
                self.overdue_dossiers.labels(workflow=workflow).set(overdue_counts.get(workflow, 0))
                self.escalated_dossiers.labels(workflow=workflow).set(
                    escalated_counts.get(workflow, 0)
                )
            self.outbox_pending.set(pending)
            self.refreshed.set(now.timestamp())
        return True

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        """Start prometheus_client's HTTP server for ``/metrics`` in a daemon thread.

        Port 0 picks a free port; read it from the returned server's ``server_port``. Stop
        the server with its ``shutdown()`` method. Raises :class:`InvalidInput` for a port
        outside 0 to 65535 or one already in use.
        """
        if not 0 <= port <= MAX_PORT:
            raise InvalidInput(f"invalid metrics port {port}; give a TCP port from 1 to {MAX_PORT}")
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as error:
            raise InvalidInput(
                f"cannot serve metrics on {host}:{port} ({error.strerror}); "
                "choose a free port with --metrics-port"
            ) from None
        log.info("metrics served on http://%s:%d/metrics", host, server.server_port)
        return server


def _counts(
    connection: Connection, now: datetime
) -> tuple[dict[str, int], dict[str, int], dict[str, int], int]:
    """Return open, overdue and escalated dossiers per workflow, and the pending outbox rows."""
    still_open = dossiers.c.closed_at.is_(None)
    open_counts = _per_workflow(
        connection,
        select(dossiers.c.workflow, func.count()).where(still_open).group_by(dossiers.c.workflow),
    )
    escalated_counts = _per_workflow(
        connection,
        select(dossiers.c.workflow, func.count())
        .where(still_open, dossiers.c.escalation_level > 0)
        .group_by(dossiers.c.workflow),
    )
    overdue_counts = _per_workflow(
        connection,
        select(dossiers.c.workflow, func.count(distinct(deadlines.c.dossier_id)))
        .select_from(deadlines.join(dossiers, dossiers.c.id == deadlines.c.dossier_id))
        .where(deadlines.c.status == DeadlineStatus.RUNNING, deadlines.c.due_at < now)
        .group_by(dossiers.c.workflow),
    )
    pending = connection.execute(
        select(func.count()).select_from(outbox).where(outbox.c.status == PENDING)
    ).scalar_one()
    return open_counts, overdue_counts, escalated_counts, int(pending)


def _per_workflow(connection: Connection, query: Select[Any]) -> dict[str, int]:
    return {str(workflow): int(count) for workflow, count in connection.execute(query)}
