"""Sweeps in several OS processes, and sweep processes killed with SIGKILL at random points.

Large stores are built fast: a realistic sample of dossiers goes through the engine, the rest
is bulk-inserted with SQLAlchemy Core into the real tables exactly as the engine would have
written them (events with their hash chain, the running answer deadline and its actions).
``insert_due_dossiers`` is also used by ``benchmarks/sweep_throughput.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Barrier, Event
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select

from case_workflow import (
    Complainant,
    ConcurrencyError,
    Engine,
    SimulatedClock,
    TransitionNotAllowed,
)
from case_workflow.calendars import load_calendar, load_zone
from case_workflow.definition.loader import load_builtin
from case_workflow.planning import plan_actions, plan_deadline
from case_workflow.records import ActionStatus, DeadlineStatus
from case_workflow.states import CompiledWorkflow
from case_workflow.store.history import GENESIS_HASH, event_hash
from case_workflow.store.tables import deadline_actions, deadlines, dossiers, events
from tests.conftest import MEDIATOR_AGENT, RESPONDENT_AGENT, _postgresql_schema_url
from tests.test_sweep import check_exactly_once, file_and_transmit

WORKFLOW = "mediator-alomrane"
RESPONDENT = "al-omrane-rabat-sale-kenitra"
REGION = "rabat-sale-kenitra"
TRANSMITTED_AT = datetime(2024, 1, 16, 8, 0, tzinfo=UTC)
LATE = datetime(2024, 9, 1, tzinfo=UTC)
WAIT_SECONDS = 120
CHUNK = 2000


# -- building large stores ----------------------------------------------------------------


def insert_due_dossiers(
    engine: Engine,
    count: int,
    *,
    with_letters: bool,
    transmitted_at: datetime = TRANSMITTED_AT,
    prefix: str = "BULK",
) -> int:
    """Insert ``count`` dossiers transmitted to Al Omrane and return how many actions they have.

    Each dossier gets the three events file, start_review and transmit (hash-chained), the
    running ``answer`` deadline and its reminder and two escalation levels, planned as the
    engine plans them. Transmission days are spread over 20 days from ``transmitted_at``.
    Without ``with_letters`` the actions name no letter (flag-only actions).
    """
    workflow = engine.workflow(WORKFLOW)
    definition = workflow.definition
    calendar = load_calendar(definition.calendar)
    zone = load_zone(definition.timezone)
    rule = workflow.deadline_of("transmitted")
    assert rule is not None
    plans: dict[int, tuple[Any, list[Any]]] = {}
    actions_inserted = 0
    for start in range(0, count, CHUNK):
        numbers = range(start, min(count, start + CHUNK))
        dossier_rows = []
        event_rows: list[dict[str, Any]] = []
        offsets = []
        for number in numbers:
            offset = number % 20
            offsets.append(offset)
            sent = transmitted_at + timedelta(days=offset, seconds=number % 3600)
            reference = f"{prefix}-{number:07d}"
            steps = [
                ("file", None, "filed", {}, sent - timedelta(days=1)),
                ("start_review", "filed", "under_review", {}, sent - timedelta(hours=2)),
                ("transmit", "under_review", "transmitted", {"respondent": RESPONDENT}, sent),
            ]
            previous = GENESIS_HASH
            chain = []
            for seq, (trigger, source, target, payload, moment) in enumerate(steps, start=1):
                digest = event_hash(
                    previous,
                    reference=reference,
                    seq=seq,
                    trigger=trigger,
                    from_state=source,
                    to_state=target,
                    actor=MEDIATOR_AGENT.name,
                    role=MEDIATOR_AGENT.role,
                    institution=MEDIATOR_AGENT.institution,
                    occurred_at=moment,
                    payload=payload,
                )
                chain.append(
                    {
                        "seq": seq,
                        "trigger": trigger,
                        "from_state": source,
                        "to_state": target,
                        "actor": MEDIATOR_AGENT.name,
                        "role": MEDIATOR_AGENT.role,
                        "institution": MEDIATOR_AGENT.institution,
                        "occurred_at": moment,
                        "payload": payload,
                        "prev_hash": previous,
                        "hash": digest,
                    }
                )
                previous = digest
            event_rows.append({"reference": reference, "chain": chain})
            dossier_rows.append(
                {
                    "reference": reference,
                    "workflow": definition.workflow,
                    "workflow_version": definition.version,
                    "state": "transmitted",
                    "version": 3,
                    "respondent": RESPONDENT,
                    "region": REGION,
                    "urgent": False,
                    "escalation_level": 0,
                    "subject": "Retard de livraison d'un lot",
                    "external_reference": None,
                    "complainant": Complainant(f"Citoyen {number:05d}").to_dict(),
                    "data": {},
                    "filed_at": sent - timedelta(days=1),
                    "updated_at": sent,
                    "event_count": 3,
                    "last_hash": previous,
                }
            )
        with engine.database.begin() as connection:
            ids = connection.execute(
                insert(dossiers).returning(dossiers.c.id, sort_by_parameter_order=True),
                dossier_rows,
            ).scalars()
            dossier_ids = list(ids)
            connection.execute(
                insert(events),
                [
                    {"dossier_id": dossier_id, **step}
                    for dossier_id, item in zip(dossier_ids, event_rows, strict=True)
                    for step in item["chain"]
                ],
            )
            deadline_rows = []
            for dossier_id, offset in zip(dossier_ids, offsets, strict=True):
                if offset not in plans:
                    sent = transmitted_at + timedelta(days=offset)
                    planned = plan_deadline(
                        rule,
                        started_at=sent,
                        urgent=False,
                        payload={},
                        calendar=calendar,
                        zone=zone,
                    )
                    actions = plan_actions(
                        rule, started_at=sent, due_at=planned.due_at, calendar=calendar, zone=zone
                    )
                    plans[offset] = (planned, actions)
                planned, _actions = plans[offset]
                deadline_rows.append(
                    {
                        "dossier_id": dossier_id,
                        "name": rule.name,
                        "state": "transmitted",
                        "status": DeadlineStatus.RUNNING,
                        "rule": planned.rule,
                        "started_at": transmitted_at + timedelta(days=offset),
                        "due_at": planned.due_at,
                        "rests_on_estimate": planned.rests_on_estimate,
                        "explanation": planned.explanation,
                    }
                )
            deadline_ids = list(
                connection.execute(
                    insert(deadlines).returning(deadlines.c.id, sort_by_parameter_order=True),
                    deadline_rows,
                ).scalars()
            )
            action_rows = [
                {
                    "deadline_id": deadline_id,
                    "dossier_id": dossier_id,
                    "kind": action.kind,
                    "level": action.level,
                    "fire_at": action.fire_at,
                    "status": ActionStatus.PENDING,
                    "letter": action.letter if with_letters else None,
                    "event": action.event,
                }
                for deadline_id, dossier_id, offset in zip(
                    deadline_ids, dossier_ids, offsets, strict=True
                )
                for action in plans[offset][1]
            ]
            connection.execute(insert(deadline_actions), action_rows)
            actions_inserted += len(action_rows)
    return actions_inserted


def pending_actions(engine: Engine) -> int:
    with engine.database.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(deadline_actions)
                .where(deadline_actions.c.status == ActionStatus.PENDING)
            ).scalar_one()
        )


def build_store(url: str, *, sampled: int, bulk: int, with_letters: bool) -> int:
    """Create the schema, file ``sampled`` dossiers through the engine, bulk-insert the rest."""
    clock = SimulatedClock(TRANSMITTED_AT - timedelta(days=1))
    with Engine(url, clock=clock, create_schema=True) as engine:
        for _ in range(sampled):
            file_and_transmit(engine, clock)
        insert_due_dossiers(engine, bulk, with_letters=with_letters)
        return pending_actions(engine)


@pytest.fixture
def postgresql_url(postgresql_server: str) -> Iterator[str]:
    yield from _postgresql_schema_url(postgresql_server)


# -- several sweep processes --------------------------------------------------------------


@dataclass(frozen=True)
class ProcessReport:
    pid: int
    actions: int
    letters: int
    error: str | None


def sweep_process(url: str, now: datetime, batch_size: int, barrier: Barrier, out: Any) -> None:
    """Body of a spawned sweep process: wait for the others, sweep once, report."""
    try:
        with Engine(url) as engine:
            barrier.wait(WAIT_SECONDS)
            result = engine.sweep(now, batch_size=batch_size)
        out.put(ProcessReport(os.getpid(), result.actions, result.letters, None))
    except BaseException as error:  # reported to the test, which fails on it
        out.put(ProcessReport(os.getpid(), 0, 0, repr(error)))


def clerk_process(url: str, references: list[str], barrier: Barrier, out: Any) -> None:
    """Body of a spawned clerk: answer dossiers, retrying each race it loses."""
    answered = 0
    try:
        with Engine(url) as engine:
            barrier.wait(WAIT_SECONDS)
            for reference in references:
                for _attempt in range(50):
                    version = engine.get(reference).version
                    try:
                        engine.fire(
                            reference,
                            "answer",
                            actor=RESPONDENT_AGENT,
                            payload={"answer_summary": "réponse"},
                            expected_version=version,
                            at=LATE,
                        )
                        answered += 1
                        break
                    except ConcurrencyError:
                        continue
                    except TransitionNotAllowed:
                        break
        out.put(ProcessReport(os.getpid(), answered, 0, None))
    except BaseException as error:  # reported to the test, which fails on it
        out.put(ProcessReport(os.getpid(), answered, 0, repr(error)))


def collect(processes: list[Any], out: Any) -> list[ProcessReport]:
    reports = [out.get(timeout=WAIT_SECONDS * 3) for _ in processes]
    for process in processes:
        process.join(WAIT_SECONDS)
    return reports


@pytest.mark.slow
@pytest.mark.postgresql
def test_four_processes_share_postgresql_sweep(postgresql_url: str) -> None:
    due = build_store(postgresql_url, sampled=40, bulk=6700, with_letters=False)
    assert due >= 20_000
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(4)
    out = spawn.Queue()
    processes = [
        spawn.Process(target=sweep_process, args=(postgresql_url, LATE, 100, barrier, out))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    reports = collect(processes, out)
    assert [report.error for report in reports] == [None] * 4
    assert sum(report.actions for report in reports) == due
    with Engine(postgresql_url) as engine:
        assert pending_actions(engine) == 0
        assert engine.sweep(LATE).actions == 0
        summary = check_exactly_once(engine.database, now=LATE)
        assert summary.done_actions == due
        assert summary.sweep_events == due
        # Only the 40 dossiers filed through the engine have letters: five, in two languages.
        assert summary.letters == 40 * 5 * 2
        assert engine.verify().ok


@pytest.mark.slow
def test_sqlite_sweepers_and_clerks_wait_their_turn(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    due = build_store(url, sampled=20, bulk=580, with_letters=True)
    with Engine(url) as engine, engine.database.connect() as connection:
        references = list(
            connection.execute(select(dossiers.c.reference).order_by(dossiers.c.id)).scalars()
        )
    rng = random.Random(7)
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(5)
    out = spawn.Queue()
    processes = [
        spawn.Process(target=sweep_process, args=(url, LATE, 25, barrier, out)),
        spawn.Process(target=sweep_process, args=(url, LATE, 7, barrier, out)),
        spawn.Process(target=clerk_process, args=(url, rng.sample(references, 60), barrier, out)),
        spawn.Process(target=clerk_process, args=(url, rng.sample(references, 60), barrier, out)),
    ]
    for process in processes:
        process.start()
    thread_errors: list[BaseException] = []

    def sweep_thread() -> None:
        try:
            with Engine(url) as engine:
                barrier.wait(WAIT_SECONDS)
                engine.sweep(LATE, batch_size=10)
                engine.sweep(LATE, batch_size=3)
        except BaseException as error:  # reported by the assertion below
            thread_errors.append(error)

    threads = [threading.Thread(target=sweep_thread)]
    for thread in threads:
        thread.start()
    reports = collect(processes, out)
    for thread in threads:
        thread.join(WAIT_SECONDS)
    assert thread_errors == []
    assert [report.error for report in reports] == [None] * 4
    with Engine(url) as engine:
        engine.sweep(LATE)
        summary = check_exactly_once(engine.database, now=LATE)
        answers = Counter(
            reference
            for reference in references
            for step in engine.history(reference)
            if step.trigger == "answer"
        )
        assert engine.verify().ok
    # Reports arrive in completion order, so clerks are told apart by process id.
    clerk_pids = {process.pid for process in processes[2:]}
    clerk_answers = sum(report.actions for report in reports if report.pid in clerk_pids)
    assert sum(answers.values()) == clerk_answers
    assert set(answers.values()) <= {1}
    assert summary.done_actions <= due


# -- crashes ------------------------------------------------------------------------------


KILL_MODES = ("after_statement", "before_statement", "before_commit", "external")


def crash_child(
    url: str, workflow: CompiledWorkflow, mode: str, point: int, batch_size: int, ready: Event
) -> None:
    """Body of a forked sweep process that SIGKILLs itself at ``point`` (or is killed)."""
    engine = Engine(url, workflows=[workflow])
    counter = [0]

    def count(*_args: object) -> None:
        counter[0] += 1
        if counter[0] == point:
            os.kill(os.getpid(), signal.SIGKILL)

    if mode == "after_statement":
        event.listen(engine.database, "after_cursor_execute", count)
    elif mode == "before_statement":
        event.listen(engine.database, "before_cursor_execute", count)
    elif mode == "before_commit":
        event.listen(engine.database, "commit", count)
    ready.set()
    engine.sweep(LATE, batch_size=batch_size)


@dataclass(frozen=True)
class CrashReport:
    kills: int
    clean_exits: int
    modes: dict[str, int]
    final_actions: int
    error: str | None


def crash_driver(url: str, kills_required: int, seed: int, out: Any) -> None:
    """Body of a spawned driver: fork sweepers and kill them until ``kills_required`` kills.

    Forking from this single-threaded process (with the workflow compiled once) makes each
    sweeper start in milliseconds. Afterwards one sweep runs to completion.
    """
    try:
        workflow = load_builtin(WORKFLOW)
        rng = random.Random(seed)
        fork = multiprocessing.get_context("fork")
        kills = 0
        clean_exits = 0
        modes: Counter[str] = Counter()
        for _round in range(kills_required * 5):
            if kills >= kills_required:
                break
            mode = rng.choice(KILL_MODES)
            point = rng.randint(1, 4) if mode == "before_commit" else rng.randint(1, 300)
            ready = fork.Event()
            child = fork.Process(
                target=crash_child,
                args=(url, workflow, mode, point, rng.choice([1, 4, 16]), ready),
            )
            child.start()
            if mode == "external" and ready.wait(WAIT_SECONDS):
                time.sleep(rng.uniform(0.0, 0.03))
                child.kill()
            child.join(WAIT_SECONDS)
            if child.exitcode == -signal.SIGKILL:
                kills += 1
                modes[mode] += 1
            else:
                clean_exits += 1
        with Engine(url, workflows=[workflow]) as engine:
            final = engine.sweep(LATE)
        out.put(CrashReport(kills, clean_exits, dict(modes), final.actions, None))
    except BaseException as error:  # reported to the test, which fails on it
        out.put(CrashReport(0, 0, {}, 0, repr(error)))


@pytest.mark.slow
def test_sweeps_killed_at_random_points(database_url: str) -> None:
    on_sqlite = database_url.startswith("sqlite")
    kills_required = 110 if on_sqlite else 40
    due = build_store(database_url, sampled=60, bulk=940, with_letters=True)
    assert due == 3000
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    driver = spawn.Process(target=crash_driver, args=(database_url, kills_required, 2024, out))
    driver.start()
    report: CrashReport = out.get(timeout=WAIT_SECONDS * 4)
    driver.join(WAIT_SECONDS)
    assert report.error is None
    assert report.kills >= kills_required
    assert set(report.modes) == set(KILL_MODES)
    # Work was left for the final sweep, so every kill hit a sweep with actions to do.
    assert report.final_actions > 0
    with Engine(database_url) as engine:
        assert pending_actions(engine) == 0
        summary = check_exactly_once(engine.database, now=LATE)
        assert summary.done_actions == due
        # Every action has a letter; the 60 dossiers filed through the engine also have their
        # acknowledgement and transmission; each letter exists in French and Arabic.
        assert summary.letters == 2 * (60 * 2 + due)
        with engine.database.connect() as connection:
            states = Counter(connection.execute(select(dossiers.c.state)).scalars())
        assert states == {"escalated": 1000}
        assert engine.verify().ok
