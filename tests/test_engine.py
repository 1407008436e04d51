"""Engine: filing, firing, letters, deadlines, sweeps and the event chain, on every store."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from case_workflow import (
    ActionKind,
    ActionStatus,
    Actor,
    ActorNotAllowed,
    Complainant,
    ConcurrencyError,
    DeadlineStatus,
    DossierNotFound,
    Engine,
    GuardRejected,
    InvalidInput,
    SimulatedClock,
    TransitionNotAllowed,
)
from case_workflow.store.tables import deadlines, dossiers, events, letters
from tests.conftest import MEDIATOR_AGENT, RESPONDENT_AGENT

RESPONDENT = "al-omrane-rabat-sale-kenitra"


def file_dossier(engine: Engine, **overrides: object) -> str:
    arguments: dict[str, object] = {
        "actor": MEDIATOR_AGENT,
        "complainant": Complainant("Citoyen 00042", email="c42@example.org"),
        "subject": "Lot non attribué",
        "respondent": RESPONDENT,
    }
    arguments.update(overrides)
    return engine.file("mediator-alomrane", **arguments).reference  # type: ignore[arg-type]


def transmit(engine: Engine, clock: SimulatedClock, reference: str) -> None:
    engine.fire(reference, "start_review", actor=MEDIATOR_AGENT)
    clock.advance(timedelta(days=1))
    engine.fire(reference, "transmit", actor=MEDIATOR_AGENT, payload={"respondent": RESPONDENT})


def test_file_creates_dossier_in_initial_state(engine: Engine) -> None:
    reference = file_dossier(engine)
    dossier = engine.get(reference)
    assert dossier.state == "filed"
    assert dossier.version == 1
    assert dossier.region is not None
    history = engine.history(reference)
    assert [event.trigger for event in history] == ["file"]
    assert history[0].from_state is None


def test_file_generates_sequential_references(engine: Engine) -> None:
    first = file_dossier(engine)
    second = file_dossier(engine)
    assert first == "MA-2024-000001"
    assert second == "MA-2024-000002"


def test_file_rejects_unknown_respondent(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="unknown respondent 'nowhere'"):
        file_dossier(engine, respondent="nowhere")
    assert engine.references() == []


def test_acknowledgement_letters_in_both_languages(engine: Engine) -> None:
    reference = file_dossier(engine)
    stored = engine.letters(reference)
    assert {(letter.letter, letter.language) for letter in stored} == {
        ("acknowledgement", "fr"),
        ("acknowledgement", "ar"),
    }
    assert len({letter.registry_number for letter in stored}) == 1
    arabic = next(letter for letter in stored if letter.language == "ar")
    assert 'dir="rtl"' in arabic.html


def test_fire_moves_state_and_appends_event(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    clock.advance(timedelta(hours=3))
    dossier = engine.fire(reference, "start_review", actor=MEDIATOR_AGENT)
    assert dossier.state == "under_review"
    assert dossier.version == 2
    last = engine.history(reference)[-1]
    assert (last.from_state, last.to_state, last.actor) == ("filed", "under_review", "Agent Alaoui")
    assert last.occurred_at == clock.now()


def test_event_not_allowed_names_allowed_events(engine: Engine) -> None:
    reference = file_dossier(engine)
    with pytest.raises(TransitionNotAllowed) as raised:
        engine.fire(reference, "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "x"})
    assert raised.value.state == "filed"
    assert "start_review" in raised.value.allowed
    assert engine.get(reference).version == 1


def test_role_not_allowed(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    with pytest.raises(ActorNotAllowed):
        engine.fire(reference, "request_information", actor=RESPONDENT_AGENT)


def test_required_payload_field_missing(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    with pytest.raises(GuardRejected, match="answer_summary"):
        engine.fire(reference, "answer", actor=RESPONDENT_AGENT)
    assert engine.get(reference).state == "transmitted"


def test_unknown_dossier(engine: Engine) -> None:
    with pytest.raises(DossierNotFound, match="NOPE-1"):
        engine.fire("NOPE-1", "start_review", actor=MEDIATOR_AGENT)


def test_transmission_opens_answer_deadline(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    (deadline,) = engine.deadlines(reference)
    assert deadline.name == "answer"
    assert deadline.status is DeadlineStatus.RUNNING
    # Transmitted on Tue 2024-01-16 09:00 local (UTC+1): 60 calendar days later is
    # Sat 2024-03-16, due at 23:59:59 local, which is UTC+0 during Ramadan 2024.
    assert deadline.due_at == datetime(2024, 3, 16, 23, 59, 59, tzinfo=UTC)
    kinds = [(kind, level) for kind, level, _at, _status in deadline.actions]
    assert (ActionKind.REMINDER, 1) in kinds
    assert (ActionKind.ESCALATION, 1) in kinds


def test_answer_in_time_meets_deadline(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    clock.advance(timedelta(days=20))
    engine.fire(reference, "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"})
    (deadline,) = engine.deadlines(reference)
    assert deadline.status is DeadlineStatus.MET
    statuses = {status for _kind, _level, _at, status in deadline.actions}
    assert statuses == {ActionStatus.CANCELLED}


def stored_deadline(engine: Engine) -> tuple[str, int | None]:
    """Return the status and working-day count of the store's only deadline row."""
    with engine.database.connect() as connection:
        row = connection.execute(select(deadlines.c.status, deadlines.c.working_days)).one()
    return row.status, row.working_days


def test_answer_stores_working_days(engine: Engine, clock: SimulatedClock) -> None:
    # Filed Sun 2024-06-09, transmitted Mon 2024-06-10 09:00 local (UTC+1).
    clock.set(datetime(2024, 6, 9, 8, 0, tzinfo=UTC))
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    # Thu 2024-06-20 00:30 in Casablanca, still Wed 06-19 in UTC.
    clock.set(datetime(2024, 6, 19, 23, 30, tzinfo=UTC))
    engine.fire(reference, "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"})
    # Counted from Tue 06-11 to Thu 06-20: 15-16 June are a weekend and 17-18 June Eid
    # al-Adha, leaving 11, 12, 13, 14, 19 and 20 June.
    assert stored_deadline(engine) == ("met", 6)


def test_missed_deadline_stores_working_days(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    engine.sweep(datetime(2024, 5, 1, 9, tzinfo=UTC))
    assert engine.get(reference).state == "escalated"
    # Transmitted Tue 2024-01-16, escalated Wed 2024-05-01: 76 weekdays from 01-17, less
    # Eid al-Fitr (04-10, 04-11), the day off after it (04-12) and Labour Day (05-01).
    assert stored_deadline(engine) == ("missed", 72)


def test_sweep_reminds_then_escalates_once(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    reminded = engine.sweep(datetime(2024, 3, 7, 9, tzinfo=UTC))
    assert reminded.reminders == 1
    assert engine.sweep(datetime(2024, 3, 7, 9, tzinfo=UTC)).actions == 0
    formal = engine.sweep(datetime(2024, 3, 17, 9, tzinfo=UTC))
    assert formal.escalations == 1
    assert engine.get(reference).escalation_level == 1
    assert engine.get(reference).state == "transmitted"
    escalated = engine.sweep(datetime(2024, 5, 1, 9, tzinfo=UTC))
    assert escalated.escalations == 1
    dossier = engine.get(reference)
    assert dossier.state == "escalated"
    assert dossier.escalation_level == 2
    (deadline,) = engine.deadlines(reference)
    assert deadline.status is DeadlineStatus.MISSED
    names = [letter.letter for letter in engine.letters(reference) if letter.language == "fr"]
    assert names.count("reminder") == 1
    assert names.count("formal_notice") == 1
    assert names.count("escalation_notice") == 1


def test_sweep_twice_at_one_instant_writes_each_letter_once(
    engine: Engine, clock: SimulatedClock
) -> None:
    references = [file_dossier(engine) for _ in range(5)]
    for reference in references:
        transmit(engine, clock, reference)
    late = datetime(2024, 6, 1, tzinfo=UTC)
    first = engine.sweep(late)
    second = engine.sweep(late)
    assert first.actions == 5 * 3
    assert second.actions == 0
    with engine.database.connect() as connection:
        rows = connection.execute(select(letters.c.event_id, letters.c.letter, letters.c.language))
        keys = list(rows)
    assert len(keys) == len(set(keys))


def test_information_request_pauses_deadline(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    (before,) = engine.deadlines(reference)
    clock.advance(timedelta(days=10))
    engine.fire(reference, "request_information", actor=MEDIATOR_AGENT)
    (paused,) = engine.deadlines(reference)
    assert paused.status is DeadlineStatus.PAUSED
    assert engine.sweep(datetime(2024, 6, 1, tzinfo=UTC)).actions == 0
    clock.advance(timedelta(days=7))
    engine.fire(reference, "resume", actor=MEDIATOR_AGENT)
    (resumed,) = engine.deadlines(reference)
    assert resumed.status is DeadlineStatus.RUNNING
    assert resumed.due_at - before.due_at == timedelta(days=7)


def test_extension_moves_due_date(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    (before,) = engine.deadlines(reference)
    engine.fire(
        reference,
        "grant_extension",
        actor=MEDIATOR_AGENT,
        payload={"extension": "15 calendar_days", "reason": "documents volumineux"},
    )
    (after,) = engine.deadlines(reference)
    assert after.due_at - before.due_at == timedelta(days=15)
    assert after.explanation["extensions_granted"][0]["reason"] == "documents volumineux"
    assert [e.trigger for e in engine.history(reference)][-1] == "grant_extension"


def test_invalid_extension_writes_nothing(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    version = engine.get(reference).version
    with pytest.raises(InvalidInput, match="extension"):
        engine.fire(
            reference, "grant_extension", actor=MEDIATOR_AGENT, payload={"extension": "soon"}
        )
    assert engine.get(reference).version == version
    assert len(engine.history(reference)) == version


def test_expected_version_mismatch(engine: Engine) -> None:
    reference = file_dossier(engine)
    with pytest.raises(ConcurrencyError) as raised:
        engine.fire(reference, "start_review", actor=MEDIATOR_AGENT, expected_version=7)
    assert raised.value.expected_version == 7
    assert raised.value.found_version == 1


def test_eight_threads_one_winner_per_version(engine: Engine) -> None:
    reference = file_dossier(engine)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def clerk(index: int) -> None:
        actor = Actor(f"clerk {index}", "mediator_agent", "mediator")
        barrier.wait()
        try:
            engine.fire(reference, "start_review", actor=actor, expected_version=1)
            result = "won"
        except ConcurrencyError:
            result = "lost"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=clerk, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1
    assert outcomes.count("lost") == 7
    assert engine.get(reference).version == 2
    assert engine.verify().ok


def test_verify_detects_tampered_event(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    assert engine.verify(reference).ok
    with engine.database.begin() as connection:
        connection.execute(update(events).where(events.c.seq == 2).values(actor="someone else"))
    result = engine.verify(reference)
    assert not result.ok
    assert result.broken[0][:2] == (reference, 2)


def test_verify_counts_dossiers_and_events(engine: Engine, clock: SimulatedClock) -> None:
    for _ in range(3):
        transmit(engine, clock, file_dossier(engine))
    result = engine.verify()
    assert result.dossiers == 3
    assert result.events == 9


def test_close_records_outcome(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    engine.fire(reference, "answer", actor=RESPONDENT_AGENT, payload={"answer_summary": "ok"})
    clock.advance(timedelta(days=2))
    dossier = engine.fire(reference, "close", actor=MEDIATOR_AGENT, payload={"outcome": "resolved"})
    assert dossier.state == "closed"
    assert dossier.outcome == "resolved"
    assert dossier.closed_at == clock.now()


def test_database_is_source_of_truth(database_url: str, clock: SimulatedClock) -> None:
    with Engine(database_url, clock=clock, create_schema=True) as first:
        reference = file_dossier(first)
        first.fire(reference, "start_review", actor=MEDIATOR_AGENT)
    with Engine(database_url, clock=clock) as second:
        assert second.get(reference).state == "under_review"
        with second.database.connect() as connection:
            count = connection.execute(select(dossiers.c.id)).all()
        assert len(count) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"actor": Actor("x", "mediator_agent", "al-omrane")}, "belongs to institution"),
        ({"actor": Actor("x", "system", "mediator")}, "reserved for the engine"),
        ({"complainant": Complainant("   ")}, "name is empty"),
        ({"complainant": Complainant("Nom", language="de")}, "language 'de'"),
        ({"complainant": Complainant("Nom", email="not-an-address")}, "invalid e-mail"),
        ({"complainant": Complainant("Nom\x00")}, "control characters"),
        ({"subject": "x" * 2001}, "more than 2,000"),
        ({"reference": "../../etc/passwd"}, "invalid reference"),
    ],
)
def test_file_rejects_invalid_input(
    engine: Engine, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        file_dossier(engine, **overrides)
    assert engine.references() == []


def test_system_role_cannot_fire(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    with pytest.raises(ActorNotAllowed):
        engine.fire(reference, "escalate", actor=Actor("someone", "system", "mediator"))
    assert engine.get(reference).state == "transmitted"


def test_escalation_notice_explains_due_date(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    transmit(engine, clock, reference)
    engine.sweep(datetime(2024, 5, 1, 9, tzinfo=UTC))
    (notice,) = [
        letter
        for letter in engine.letters(reference)
        if letter.letter == "escalation_notice" and letter.language == "fr"
    ]
    assert "Calcul de l&#39;échéance" in notice.html or "Calcul de l'échéance" in notice.html
    assert "60 jours calendaires à compter du 16/01/2024" in notice.html
    assert "échéance le 16/03/2024 23:59:59" in notice.html
