"""Sweep: catch-up after downtime, due order, exactly-once actions, clerks racing sweeps.

``check_exactly_once`` is the store-wide invariant check that the process, crash and
stateful tests reuse.
"""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine as SQLAlchemyEngine
from sqlalchemy import select, text

from case_workflow import (
    ActionStatus,
    Complainant,
    ConcurrencyError,
    Engine,
    SimulatedClock,
    TransitionNotAllowed,
)
from case_workflow.store.tables import deadline_actions, deadlines, dossiers, events, letters
from tests.conftest import MEDIATOR_AGENT, RESPONDENT_AGENT

RESPONDENT = "al-omrane-rabat-sale-kenitra"
LATE = datetime(2024, 9, 1, tzinfo=UTC)
WAIT_SECONDS = 60


@dataclass(frozen=True)
class StoreSummary:
    dossiers: int
    events: int
    done_actions: int
    sweep_events: int
    letters: int


def check_exactly_once(database: SQLAlchemyEngine, *, now: datetime | None = None) -> StoreSummary:
    """Assert the sweep invariants over a whole store and return its counts.

    Every dossier's event count, version and last hash match its events; each done action
    has exactly one sweep event and each sweep event one done action; a sweep event carries
    exactly the letters its action names, each registry number is used by one letter only
    (in every language); with ``now``, no action due by then is still pending.
    """
    with database.connect() as connection:
        dossier_rows = connection.execute(
            select(dossiers.c.id, dossiers.c.version, dossiers.c.event_count, dossiers.c.last_hash)
        ).all()
        event_rows = connection.execute(
            select(
                events.c.id,
                events.c.dossier_id,
                events.c.seq,
                events.c.actor,
                events.c.trigger,
                events.c.payload,
                events.c.hash,
            ).order_by(events.c.dossier_id, events.c.seq)
        ).all()
        action_rows = connection.execute(
            select(
                deadline_actions.c.dossier_id,
                deadlines.c.name,
                deadline_actions.c.kind,
                deadline_actions.c.level,
                deadline_actions.c.status,
                deadline_actions.c.letter,
                deadline_actions.c.fire_at,
            ).join(deadlines, deadlines.c.id == deadline_actions.c.deadline_id)
        ).all()
        letter_rows = connection.execute(
            select(letters.c.event_id, letters.c.letter, letters.c.registry_number)
        ).all()

    last_event: dict[int, tuple[int, str]] = {}
    event_count: Counter[int] = Counter()
    for row in event_rows:
        event_count[row.dossier_id] += 1
        last_event[row.dossier_id] = (row.seq, row.hash)
    for row in dossier_rows:
        assert row.event_count == event_count[row.id], f"dossier #{row.id} event count"
        assert row.version == row.event_count, f"dossier #{row.id} version"
        assert last_event[row.id] == (row.event_count, row.last_hash), f"dossier #{row.id} hash"

    sweep_events = [row for row in event_rows if row.actor == "sweep"]
    keys = Counter(
        (row.dossier_id, row.payload["deadline"], row.payload["kind"], row.payload["level"])
        for row in sweep_events
    )
    doubled = {key: count for key, count in keys.items() if count > 1}
    assert doubled == {}, f"actions done more than once: {doubled}"
    done = {
        (row.dossier_id, row.name, row.kind, row.level): row.letter
        for row in action_rows
        if row.status == ActionStatus.DONE
    }
    assert set(keys) == set(done)
    if now is not None:
        overdue = [row for row in action_rows if row.status == "pending" and row.fire_at <= now]
        assert overdue == []

    names_by_event: defaultdict[int, set[str]] = defaultdict(set)
    events_by_number: defaultdict[str, set[tuple[int, str]]] = defaultdict(set)
    for row in letter_rows:
        names_by_event[row.event_id].add(row.letter)
        events_by_number[row.registry_number].add((row.event_id, row.letter))
    for row in sweep_events:
        key = (row.dossier_id, row.payload["deadline"], row.payload["kind"], row.payload["level"])
        expected = {done[key]} if done[key] else set()
        assert names_by_event.get(row.id, set()) == expected, f"letters of event #{row.id}"
    reused = {number: owners for number, owners in events_by_number.items() if len(owners) > 1}
    assert reused == {}, f"registry numbers used twice: {reused}"
    return StoreSummary(
        dossiers=len(dossier_rows),
        events=len(event_rows),
        done_actions=len(done),
        sweep_events=len(sweep_events),
        letters=len(letter_rows),
    )


def file_and_transmit(engine: Engine, clock: SimulatedClock, *, urgent: bool = False) -> str:
    reference = engine.file(
        "mediator-alomrane",
        actor=MEDIATOR_AGENT,
        complainant=Complainant("Citoyen 00042", email="c42@example.org"),
        subject="Attribution de lot",
        respondent=RESPONDENT,
        urgent=urgent,
    ).reference
    engine.fire(reference, "start_review", actor=MEDIATOR_AGENT)
    engine.fire(reference, "transmit", actor=MEDIATOR_AGENT, payload={"respondent": RESPONDENT})
    return reference


def sweep_events_in_order(engine: Engine) -> list[tuple[str, str, int, datetime]]:
    with engine.database.connect() as connection:
        rows = connection.execute(
            select(dossiers.c.reference, events.c.payload)
            .join(dossiers, dossiers.c.id == events.c.dossier_id)
            .where(events.c.actor == "sweep")
            .order_by(events.c.id)
        ).all()
    return [
        (
            row.reference,
            row.payload["kind"],
            row.payload["level"],
            datetime.fromisoformat(row.payload["fire_at"]),
        )
        for row in rows
    ]


# -- downtime -----------------------------------------------------------------------------


def test_catch_up_sweep_acts_in_due_order(engine: Engine, clock: SimulatedClock) -> None:
    references = []
    for index in range(6):
        references.append(file_and_transmit(engine, clock, urgent=index % 3 == 0))
        clock.advance(timedelta(days=3, hours=5))
    # The scheduler was down from before the first reminder until LATE.
    result = engine.sweep(LATE, batch_size=4)
    assert result.reminders == 6
    assert result.escalations == 12
    assert result.skipped == 0
    done = sweep_events_in_order(engine)
    assert len(done) == 18
    fire_times = [fire_at for _reference, _kind, _level, fire_at in done]
    assert fire_times == sorted(fire_times)
    for reference in references:
        steps = [(kind, level) for ref, kind, level, _at in done if ref == reference]
        assert steps == [("reminder", 1), ("escalation", 1), ("escalation", 2)]
        dossier = engine.get(reference)
        assert dossier.state == "escalated"
        assert dossier.escalation_level == 2
    summary = check_exactly_once(engine.database, now=LATE)
    assert summary.sweep_events == 18
    assert engine.verify().ok


def test_repeated_catch_up_does_nothing(engine: Engine, clock: SimulatedClock) -> None:
    for _ in range(3):
        file_and_transmit(engine, clock)
    first = engine.sweep(LATE, batch_size=2)
    events_after_first = check_exactly_once(engine.database, now=LATE).events
    second = engine.sweep(LATE, batch_size=2)
    third = engine.sweep(LATE + timedelta(days=30))
    assert first.actions == 9
    assert second.actions == 0
    assert third.actions == 0
    assert check_exactly_once(engine.database, now=LATE).events == events_after_first


def test_sweeps_day_by_day_match_one_late_sweep(database_url: str, clock: SimulatedClock) -> None:
    with Engine(database_url, clock=clock, create_schema=True) as engine:
        references = [file_and_transmit(engine, clock) for _ in range(3)]
        day = clock.now()
        while day < LATE:
            day += timedelta(days=1)
            engine.sweep(day)
        daily = [(ref, kind, level) for ref, kind, level, _at in sweep_events_in_order(engine)]
    assert len(daily) == 9
    for reference in references:
        assert [(kind, level) for ref, kind, level in daily if ref == reference] == [
            ("reminder", 1),
            ("escalation", 1),
            ("escalation", 2),
        ]


def test_paused_deadline_not_swept(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_and_transmit(engine, clock)
    engine.fire(reference, "request_information", actor=MEDIATOR_AGENT)
    assert engine.sweep(LATE).actions == 0
    check_exactly_once(engine.database)


def test_answered_dossier_not_swept(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_and_transmit(engine, clock)
    clock.advance(timedelta(days=55))
    engine.sweep(clock.now())
    engine.fire(reference, "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"})
    assert engine.sweep(LATE).actions == 0
    triggers = [event.trigger for event in engine.history(reference)]
    assert triggers.count("reminder") == 1
    assert "escalation" not in triggers
    check_exactly_once(engine.database, now=LATE)


# -- clerks and sweeps --------------------------------------------------------------------


def test_clerk_loses_race_then_retries(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_and_transmit(engine, clock)
    seen = engine.get(reference).version
    engine.sweep(LATE)
    with pytest.raises(ConcurrencyError) as raised:
        engine.fire(
            reference,
            "answer",
            actor=RESPONDENT_AGENT,
            payload={"answer_summary": "réponse"},
            expected_version=seen,
        )
    assert raised.value.expected_version == seen
    assert raised.value.found_version == seen + 3
    fresh = engine.get(reference)
    answered = engine.fire(
        reference,
        "answer",
        actor=RESPONDENT_AGENT,
        payload={"answer_summary": "réponse"},
        expected_version=fresh.version,
    )
    assert answered.state == "answered"
    assert answered.version == fresh.version + 1
    check_exactly_once(engine.database, now=LATE)


def test_clerk_blocked_by_sweep_gets_concurrency_error(
    database_url: str, clock: SimulatedClock
) -> None:
    """On PostgreSQL a clerk who read a dossier that a sweep holds loses with ConcurrencyError.

    On SQLite the clerk's transaction waits for the sweep's write lock before reading, so
    the clerk fires on the swept version and wins.
    """
    with Engine(database_url, clock=clock, create_schema=True) as engine:
        reference = file_and_transmit(engine, clock)
        sweep_holds = threading.Event()
        release = threading.Event()
        outcome: list[object] = []

        def hold_after_claim(conn: object, cursor: object, statement: str, *_args: object) -> None:
            if threading.current_thread().name == "sweeper" and "UPDATE cw_dossiers" in statement:
                sweep_holds.set()
                assert release.wait(WAIT_SECONDS)

        def sweeper() -> None:
            engine.sweep(LATE, batch_size=10)

        def clerk() -> None:
            try:
                engine.fire(
                    reference, "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"}
                )
                outcome.append("answered")
            except ConcurrencyError as error:
                outcome.append(error)

        from sqlalchemy import event

        event.listen(engine.database, "after_cursor_execute", hold_after_claim)
        sweep_thread = threading.Thread(target=sweeper, name="sweeper")
        sweep_thread.start()
        assert sweep_holds.wait(WAIT_SECONDS)
        clerk_thread = threading.Thread(target=clerk, name="clerk")
        clerk_thread.start()
        if engine.database.dialect.name == "postgresql":
            wait_until_blocked_on_lock(engine.database)
        release.set()
        sweep_thread.join(WAIT_SECONDS)
        clerk_thread.join(WAIT_SECONDS)
        event.remove(engine.database, "after_cursor_execute", hold_after_claim)

        assert len(outcome) == 1
        if engine.database.dialect.name == "postgresql":
            assert isinstance(outcome[0], ConcurrencyError)
            retried = engine.fire(
                reference, "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"}
            )
            assert retried.state == "answered"
        else:
            assert outcome[0] == "answered"
        assert engine.get(reference).state == "answered"
        check_exactly_once(engine.database)
        assert engine.verify().ok


def wait_until_blocked_on_lock(database: SQLAlchemyEngine) -> None:
    """Wait (bounded) until some other session of this database waits for a row lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(WAIT_SECONDS * 20):
        with database.connect() as connection:
            if connection.execute(query).scalar_one() > 0:
                return
        threading.Event().wait(0.05)
    raise AssertionError("the clerk never waited for the sweep's row lock")


def test_clerks_and_sweepers_in_threads(database_url: str, clock: SimulatedClock) -> None:
    with Engine(database_url, clock=clock, create_schema=True) as engine:
        references = [file_and_transmit(engine, clock) for _ in range(24)]
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []
        answered: Counter[str] = Counter()
        lost_races: Counter[str] = Counter()

        def sweeper(seed: int) -> None:
            try:
                barrier.wait(WAIT_SECONDS)
                rng = random.Random(seed)
                moments = sorted(
                    clock.now() + timedelta(days=rng.randint(40, 120)) for _ in range(6)
                )
                for moment in moments:
                    engine.sweep(moment, batch_size=rng.choice([1, 3, 10]))
            except BaseException as error:  # reported by the assertion below
                errors.append(error)

        def clerk(seed: int) -> None:
            try:
                barrier.wait(WAIT_SECONDS)
                rng = random.Random(seed)
                for reference in rng.sample(references, 10):
                    for _attempt in range(20):
                        version = engine.get(reference).version
                        try:
                            engine.fire(
                                reference,
                                "answer",
                                actor=RESPONDENT_AGENT,
                                payload={"answer_summary": f"clerk {seed}"},
                                expected_version=version,
                            )
                            answered[reference] += 1
                            break
                        except ConcurrencyError:
                            lost_races[reference] += 1
                        except TransitionNotAllowed:
                            break
            except BaseException as error:  # reported by the assertion below
                errors.append(error)

        threads = [
            threading.Thread(target=sweeper, args=(1,)),
            threading.Thread(target=sweeper, args=(2,)),
            threading.Thread(target=clerk, args=(3,)),
            threading.Thread(target=clerk, args=(4,)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_SECONDS * 2)
        assert errors == []
        assert all(count == 1 for count in answered.values())
        engine.sweep(LATE)
        for reference in references:
            history = engine.history(reference)
            triggers = [event.trigger for event in history]
            assert triggers.count("answer") == answered[reference]
            if answered[reference]:
                assert engine.get(reference).state == "answered"
            else:
                assert engine.get(reference).state == "escalated"
        check_exactly_once(engine.database, now=LATE)
        assert engine.verify().ok


def test_failing_action_does_not_stop_sweep(database_url: str, tmp_path: Path) -> None:
    """A letter template that fails at render time postpones its action; the others go on."""
    import shutil

    from case_workflow import load_workflow
    from case_workflow.definition.loader import builtin_workflows_dir

    folder = tmp_path / "workflow"
    shutil.copytree(builtin_workflows_dir(), folder)
    clock = SimulatedClock(datetime(2024, 1, 15, 8, 0, tzinfo=UTC))
    with Engine(
        database_url,
        workflows=[load_workflow(folder / "mediator-alomrane.yaml")],
        clock=clock,
        create_schema=True,
    ) as engine:
        references = []
        for _ in range(3):
            reference = engine.file(
                "mediator-alomrane",
                actor=MEDIATOR_AGENT,
                complainant=Complainant("Citoyen"),
                subject="s",
                respondent="al-omrane-rabat-sale-kenitra",
            ).reference
            engine.fire(reference, "start_review", actor=MEDIATOR_AGENT)
            engine.fire(
                reference,
                "transmit",
                actor=MEDIATOR_AGENT,
                payload={"respondent": "al-omrane-rabat-sale-kenitra"},
            )
            references.append(reference)
        # Break the reminder template after loading: rendering it now raises.
        (folder / "letters" / "reminder.fr.html.j2").write_text("{{ 1 / 0 }}", encoding="utf-8")
        result = engine.sweep(datetime(2024, 3, 20, tzinfo=UTC))
        assert result.failed == 3
        assert result.escalations == 3
        for reference in references:
            (deadline,) = engine.deadlines(reference)
            statuses = {
                (kind.value, status.value) for kind, _level, _at, status in deadline.actions
            }
            assert ("reminder", "pending") in statuses
            assert ("escalation", "done") in statuses
        assert engine.verify().ok
