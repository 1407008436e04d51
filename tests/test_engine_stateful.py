"""Engine invariants under random clerk events, clock advances and sweeps (Hypothesis).

Each example runs on a fresh SQLite store; after every step the store must hold: a dossier's
version equals its number of events, the event chains verify, a dossier has at most one
running deadline per name, no action is done twice, each state is one the workflow defines,
dossiers in a final state have no pending action, and a second sweep at the same instant does
nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)
from sqlalchemy import select

from case_workflow import (
    ActorNotAllowed,
    Complainant,
    Engine,
    GuardRejected,
    InvalidInput,
    SimulatedClock,
    TransitionNotAllowed,
)
from case_workflow.definition.loader import load_builtin
from case_workflow.records import ActionStatus, DeadlineStatus
from case_workflow.store.tables import deadline_actions, deadlines, dossiers
from tests.conftest import MEDIATOR_AGENT, RESPONDENT_AGENT
from tests.test_sweep import check_exactly_once

WORKFLOW = load_builtin("mediator-alomrane")
STATES = set(WORKFLOW.definition.states)
FINAL_STATES = {name for name in STATES if WORKFLOW.is_final(name)}
RESPONDENT = "al-omrane-rabat-sale-kenitra"

# The events of the workflow with a payload that satisfies their required fields.
PAYLOADS: dict[str, dict[str, Any]] = {
    "start_review": {},
    "declare_inadmissible": {"reason": "hors compétence"},
    "redirect": {"redirected_to": "tribunal administratif"},
    "transmit": {"respondent": RESPONDENT},
    "request_information": {},
    "resume": {},
    "grant_extension": {"extension": "15 calendar_days", "reason": "dossier volumineux"},
    "answer": {"answer_summary": "lot attribué"},
    "escalate": {},
    "issue_recommendation": {"recommendation_summary": "délivrer le titre"},
    "follow_up": {},
    "close": {"outcome": "resolved"},
    "withdraw": {"outcome": "withdrawn"},
}
REJECTED = (TransitionNotAllowed, ActorNotAllowed, GuardRejected, InvalidInput)


class SweepsAndClerks(RuleBasedStateMachine):
    dossiers = Bundle("dossiers")

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="cw-stateful-")
        self.clock = SimulatedClock(datetime(2024, 1, 15, 8, 0, tzinfo=UTC))
        self.engine = Engine(
            f"sqlite:///{self.directory}/store.db",
            workflows=[WORKFLOW],
            clock=self.clock,
            create_schema=True,
        )
        self.rejected = 0
        self.swept = 0

    def teardown(self) -> None:
        event(f"sweeps acted: {'yes' if self.swept else 'no'}")
        self.engine.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @initialize(target=dossiers)
    def file_first(self) -> str:
        reference = self._file()
        self.transmit(reference)
        return reference

    @rule(target=dossiers)
    def file(self) -> str:
        return self._file()

    def _file(self) -> str:
        return self.engine.file(
            "mediator-alomrane",
            actor=MEDIATOR_AGENT,
            complainant=Complainant("Citoyen 00042"),
            subject="Indemnisation d'expropriation",
            respondent=RESPONDENT,
        ).reference

    @rule(
        reference=dossiers,
        by_respondent=st.booleans(),
        allowed_only=st.booleans(),
        complete=st.sampled_from([True, True, True, False]),
        data=st.data(),
    )
    def fire(
        self,
        reference: str,
        by_respondent: bool,
        allowed_only: bool,
        complete: bool,
        data: st.DataObject,
    ) -> None:
        actor = RESPONDENT_AGENT if by_respondent else MEDIATOR_AGENT
        # Half the draws pick among the events the actor may fire now, so dossiers move on.
        allowed = self.engine.allowed_events(reference, actor.role)
        choices = sorted(allowed) if allowed_only and allowed else sorted(PAYLOADS)
        event = data.draw(st.sampled_from(choices), label="event")
        payload = PAYLOADS[event] if complete else {}
        before = self.engine.get(reference)
        try:
            after = self.engine.fire(reference, event, actor=actor, payload=payload)
        except REJECTED:
            self.rejected += 1
            assert self.engine.get(reference) == before
            return
        assert after.version == before.version + 1

    @rule(reference=dossiers)
    def transmit(self, reference: str) -> None:
        """Take a dossier the usual way to Al Omrane, which starts its answer deadline."""
        state = self.engine.get(reference).state
        if state == "filed":
            self.engine.fire(reference, "start_review", actor=MEDIATOR_AGENT)
            state = "under_review"
        if state == "under_review":
            dossier = self.engine.fire(
                reference, "transmit", actor=MEDIATOR_AGENT, payload=PAYLOADS["transmit"]
            )
            assert dossier.state == "transmitted"

    @rule(days=st.integers(0, 75), hours=st.integers(0, 23))
    def advance(self, days: int, hours: int) -> None:
        self.clock.advance(timedelta(days=days, hours=hours))

    @rule(
        batch_size=st.sampled_from([1, 2, 200]),
        days_later=st.sampled_from([0, 0, 52, 61, 90]),
    )
    def sweep(self, batch_size: int, days_later: int) -> None:
        # The non-zero delays reach the reminder, the formal notice and the escalation.
        now = self.clock.advance(timedelta(days=days_later))
        result = self.engine.sweep(now, batch_size=batch_size)
        self.swept += result.actions
        assert self.engine.sweep(now).actions == 0
        check_exactly_once(self.engine.database, now=now)

    @invariant()
    def versions_and_actions_consistent(self) -> None:
        check_exactly_once(self.engine.database)

    @invariant()
    def chains_verify(self) -> None:
        assert self.engine.verify().ok

    @invariant()
    def states_defined_and_final_ones_quiet(self) -> None:
        with self.engine.database.connect() as connection:
            states = dict(connection.execute(select(dossiers.c.id, dossiers.c.state)).all())
            running = Counter(
                (row.dossier_id, row.name)
                for row in connection.execute(
                    select(deadlines.c.dossier_id, deadlines.c.name).where(
                        deadlines.c.status == DeadlineStatus.RUNNING
                    )
                )
            )
            open_actions = set(
                connection.execute(
                    select(deadline_actions.c.dossier_id).where(
                        deadline_actions.c.status.in_(
                            [ActionStatus.PENDING, ActionStatus.SUSPENDED]
                        )
                    )
                ).scalars()
            )
        assert set(states.values()) <= STATES
        assert all(count == 1 for count in running.values())
        closed = {dossier_id for dossier_id, state in states.items() if state in FINAL_STATES}
        assert closed & open_actions == set()
        assert closed & {dossier_id for dossier_id, _name in running} == set()


SweepsAndClerks.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_sweeps_and_clerks = SweepsAndClerks.TestCase
