"""Tests of the sweep metrics: a real sweep through SweepScheduler, scraped over loopback.

Scenario (Engine, shipped mediator-alomrane workflow): four dossiers transmitted on
2024-01-16, due on 2024-03-16 at 23:59:59 local time (UTC+0 then, during Ramadan). One is
answered on time and one is withdrawn (closed). The sweep of 2024-03-18 sends a reminder and a
formal notice (escalation level 1) for each of the two still waiting, so: 3 open dossiers,
2 overdue, 2 escalated, 2 reminders and 2 escalations.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from case_workflow import Complainant, Engine, SimulatedClock
from case_workflow.metrics import SweepMetrics
from case_workflow.scheduler import SweepScheduler
from case_workflow.store.tables import outbox
from tests.conftest import MEDIATOR_AGENT, RESPONDENT_AGENT

WORKFLOW = "mediator-alomrane"
RESPONDENT = "al-omrane-rabat-sale-kenitra"
TRANSMITTED = datetime(2024, 1, 16, 10, 0, tzinfo=UTC)
SWEEP_AT = datetime(2024, 3, 18, 10, 0, tzinfo=UTC)
BEFORE_DUE = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
START_SECONDS = 120

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def fill(engine: Engine) -> None:
    references = []
    for _ in range(4):
        dossier = engine.file(
            WORKFLOW,
            actor=MEDIATOR_AGENT,
            complainant=Complainant("Citoyen"),
            subject="Lot non attribué",
            respondent=RESPONDENT,
            at=TRANSMITTED,
        )
        engine.fire(dossier.reference, "start_review", actor=MEDIATOR_AGENT, at=TRANSMITTED)
        engine.fire(
            dossier.reference,
            "transmit",
            actor=MEDIATOR_AGENT,
            payload={"respondent": RESPONDENT},
            at=TRANSMITTED,
        )
        references.append(dossier.reference)
    engine.fire(
        references[0],
        "answer",
        actor=RESPONDENT_AGENT,
        payload={"answer_summary": "Réponse"},
        at=datetime(2024, 2, 1, 10, 0, tzinfo=UTC),
    )
    engine.fire(
        references[1],
        "withdraw",
        actor=MEDIATOR_AGENT,
        payload={"outcome": "withdrawn"},
        at=datetime(2024, 2, 2, 10, 0, tzinfo=UTC),
    )


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        body = answer.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def pending_outbox(engine: Engine) -> int:
    with engine.database.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(outbox).where(outbox.c.status == "pending")
            ).scalar_one()
        )


@pytest.fixture
def metered(engine: Engine, clock: SimulatedClock) -> Iterator[tuple[SweepMetrics, int]]:
    fill(engine)
    clock.set(SWEEP_AT)
    metrics = SweepMetrics(engine)
    server = metrics.serve(0)
    try:
        yield metrics, int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()


def test_sweep_metrics_scraped(engine: Engine, metered: tuple[SweepMetrics, int]) -> None:
    metrics, port = metered
    runner = SweepScheduler(
        engine,
        schedule="every 1 hours",
        timezone=engine.default_timezone,
        background=True,
        after_sweep=metrics.record_sweep,
    )
    runner.run_now()
    assert runner.runs == 1
    samples = scrape(port)
    flow = (("workflow", WORKFLOW),)
    assert samples[("case_workflow_open_dossiers", flow)] == 3
    assert samples[("case_workflow_overdue_dossiers", flow)] == 2
    assert samples[("case_workflow_escalated_dossiers", flow)] == 2
    assert samples[("case_workflow_sweep_actions_total", (("kind", "reminder"),))] == 2
    assert samples[("case_workflow_sweep_actions_total", (("kind", "escalation"),))] == 2
    assert samples[("case_workflow_sweep_actions_total", (("kind", "skipped"),))] == 0
    assert samples[("case_workflow_sweep_duration_seconds_count", ())] == 1
    assert samples[("case_workflow_sweep_failures_total", ())] == 0
    assert samples[("case_workflow_sweep_letters_total", ())] > 0
    assert samples[("case_workflow_outbox_pending", ())] == pending_outbox(engine)
    assert samples[("case_workflow_metrics_refreshed_timestamp_seconds", ())] == (
        SWEEP_AT.timestamp()
    )


def test_second_sweep_adds_nothing(engine: Engine, metered: tuple[SweepMetrics, int]) -> None:
    metrics, port = metered
    runner = SweepScheduler(
        engine,
        schedule="every 1 hours",
        timezone=engine.default_timezone,
        after_sweep=metrics.record_sweep,
    )
    runner.run_now()
    runner.run_now()
    samples = scrape(port)
    assert samples[("case_workflow_sweep_actions_total", (("kind", "escalation"),))] == 2
    assert samples[("case_workflow_sweep_duration_seconds_count", ())] == 2


def test_gauge_back_to_zero(engine: Engine, metered: tuple[SweepMetrics, int]) -> None:
    metrics, port = metered
    assert metrics.refresh(SWEEP_AT)
    assert metrics.refresh(BEFORE_DUE)
    samples = scrape(port)
    # The workflow's series stays, at 0, instead of vanishing.
    assert samples[("case_workflow_overdue_dossiers", (("workflow", WORKFLOW),))] == 0


def test_failed_sweep_counted(tmp_path: Path) -> None:
    clock = SimulatedClock(SWEEP_AT)
    # No schema: the sweep and the gauge refresh both fail.
    with Engine(f"sqlite:///{tmp_path}/empty.db", workflows=[WORKFLOW], clock=clock) as engine:
        metrics = SweepMetrics(engine)
        runner = SweepScheduler(
            engine, schedule="every 1 hours", timezone="UTC", after_sweep=metrics.record_sweep
        )
        runner.run_now()
        assert runner.runs == 0
        assert metrics.registry.get_sample_value("case_workflow_sweep_failures_total") == 1
        assert not metrics.refresh(SWEEP_AT)


def test_hook_error_logged(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    def broken(_result: object, _seconds: float) -> None:
        raise RuntimeError("hook broke")

    runner = SweepScheduler(engine, schedule="every 1 hours", timezone="UTC", after_sweep=broken)
    runner.run_now()
    assert runner.runs == 1
    assert "after-sweep hook" in caplog.text


def test_serve_port_in_use(engine: Engine) -> None:
    from case_workflow.errors import InvalidInput

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InvalidInput, match=f"127.0.0.1:{port}"):
            SweepMetrics(engine).serve(port)


def test_scheduler_command_metrics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    with Engine(url, workflows=[WORKFLOW], create_schema=True) as engine:
        fill(engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "case_workflow.cli",
            "scheduler",
            "--db",
            url,
            "--workflow",
            WORKFLOW,
            "--schedule",
            "every 1 hours",
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        started = time.monotonic()
        samples: Samples = {}
        key = ("case_workflow_sweep_duration_seconds_count", ())
        while samples.get(key, 0) < 1:
            with contextlib.suppress(urllib.error.URLError, ConnectionError):
                samples = scrape(port)
            if process.poll() is not None or time.monotonic() - started > START_SECONDS:
                process.kill()
                pytest.fail(f"no sweep metrics on port {port}:\n{process.communicate()[0]!r}")
            time.sleep(0.25)
        # The system clock is years past the due date, so the sweep escalated both waiting
        # dossiers, which closed their deadline: escalated, no longer overdue.
        flow = (("workflow", WORKFLOW),)
        assert samples[("case_workflow_open_dossiers", flow)] == 3
        assert samples[("case_workflow_escalated_dossiers", flow)] == 2
        assert samples[("case_workflow_overdue_dossiers", flow)] == 0
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    assert process.returncode == 0, output
