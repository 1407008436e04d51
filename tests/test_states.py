"""The compiled state machine: allowed transitions, roles, guards, one Machine per version."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from case_workflow.definition.loader import load_workflow
from case_workflow.definition.model import WorkflowDefinition
from case_workflow.errors import (
    ActorNotAllowed,
    GuardRejected,
    InvalidInput,
    TransitionNotAllowed,
)
from case_workflow.states import Actor, CompiledWorkflow, Guard, GuardContext
from tests.workflow_files import MINIMAL

AGENT = Actor(name="Agent A", role="agent", institution="office")
CLERK = Actor(name="Clerk C", role="clerk", institution="office")
SYSTEM = Actor(name="sweep", role="system", institution="office")

WORKFLOW = load_workflow(MINIMAL)


def fire(
    state: str,
    event: str,
    actor: Actor = AGENT,
    payload: Mapping[str, object] | None = None,
    guards: Mapping[str, Guard] | None = None,
) -> str:
    spec = WORKFLOW.check_fire(
        reference="D-1",
        state=state,
        event=event,
        actor=actor,
        payload=payload or {},
        guards=guards or {},
    )
    return spec.dest


def test_allowed_transition_returns_spec() -> None:
    spec = WORKFLOW.check_fire(
        reference="D-1", state="new", event="send", actor=AGENT, payload={}, guards={}
    )
    assert spec.event == "send"
    assert spec.dest == "waiting"


def test_event_from_other_state_rejected() -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        fire("new", "reply", CLERK, {"summary": "done"})
    error = caught.value
    assert error.reference == "D-1"
    assert error.state == "new"
    assert error.event == "reply"
    assert error.allowed == ("send", "drop")
    assert "allowed events: send, drop" in str(error)


def test_unknown_event_rejected() -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        fire("waiting", "teleport")
    assert caught.value.allowed == ("hold", "expire", "reply", "approve", "extend")


def test_final_state_allows_nothing() -> None:
    with pytest.raises(TransitionNotAllowed, match="none \\(the state is final\\)"):
        fire("done", "send")


def test_unknown_state_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown state 'limbo'"):
        fire("limbo", "send")


def test_wrong_role_rejected() -> None:
    with pytest.raises(ActorNotAllowed) as caught:
        fire("waiting", "reply", AGENT, {"summary": "ok"})
    assert caught.value.role == "agent"
    assert caught.value.allowed_roles == ("clerk",)


def test_wrong_institution_rejected() -> None:
    outsider = Actor(name="Mallory", role="clerk", institution="elsewhere")
    with pytest.raises(ActorNotAllowed, match="institution elsewhere"):
        fire("waiting", "reply", outsider, {"summary": "ok"})


def test_system_role_fires_escalation_event() -> None:
    assert fire("waiting", "expire", SYSTEM) == "expired"


def test_missing_required_field_rejected() -> None:
    with pytest.raises(GuardRejected, match="missing payload field\\(s\\) summary"):
        fire("waiting", "reply", CLERK, {})


def test_blank_required_field_rejected() -> None:
    with pytest.raises(GuardRejected, match="summary"):
        fire("waiting", "reply", CLERK, {"summary": "  "})


def test_required_field_present_allows() -> None:
    assert fire("expired", "reply", CLERK, {"summary": "answered late"}) == "done"


def test_guard_false_rejects() -> None:
    with pytest.raises(GuardRejected, match="guard 'approved' returned false"):
        fire("waiting", "approve", guards={"approved": lambda context: False})


def test_guard_sees_context() -> None:
    seen: list[GuardContext] = []

    def approved(context: GuardContext) -> bool:
        seen.append(context)
        return True

    spec = WORKFLOW.check_fire(
        reference="D-7",
        state="waiting",
        event="approve",
        actor=AGENT,
        payload={"note": "fine"},
        guards={"approved": approved},
        data={"region": "souss-massa"},
    )
    assert spec.dest == "done"
    assert len(seen) == 1
    assert seen[0].reference == "D-7"
    assert seen[0].state == "waiting"
    assert seen[0].event == "approve"
    assert seen[0].actor == AGENT
    assert seen[0].payload == {"note": "fine"}
    assert seen[0].data == {"region": "souss-massa"}


def test_unregistered_guard_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="guard 'approved', which was not registered"):
        fire("waiting", "approve")


def test_queries() -> None:
    assert WORKFLOW.allowed_events("waiting") == ["hold", "expire", "reply", "approve", "extend"]
    assert WORKFLOW.allowed_events("waiting", role="agent") == ["hold", "approve", "extend"]
    transition = WORKFLOW.transition("expired", "drop")
    assert transition is not None
    assert transition.dest == "done"
    assert WORKFLOW.transition("done", "drop") is None
    deadline = WORKFLOW.deadline_of("waiting")
    assert deadline is not None
    assert deadline.name == "reply"
    assert WORKFLOW.deadline_of("new") is None
    assert WORKFLOW.paused_by("paused") == ["reply"]
    assert WORKFLOW.paused_by("waiting") == []
    assert WORKFLOW.is_final("done")
    assert not WORKFLOW.is_final("expired")


SHARED_EVENT = WorkflowDefinition.model_validate(
    {
        "workflow": "shared-event",
        "version": 3,
        "timezone": "UTC",
        "calendar": "holidays:US",
        "languages": ["en"],
        "roles": {
            "agent": {"institution": "office"},
            "clerk": {"institution": "office"},
            "guest": {"institution": "office"},
        },
        "states": {
            "open": {"initial": True},
            "parked": {},
            "closed": {"final": True},
        },
        "transitions": [
            {"event": "decide", "from": "open", "to": "closed", "roles": ["agent"]},
            {"event": "decide", "from": "open", "to": "parked", "roles": ["clerk"]},
            {"event": "finish", "from": "parked", "to": "closed", "roles": ["agent"]},
        ],
    }
)


def test_same_event_chosen_by_role() -> None:
    workflow = CompiledWorkflow(SHARED_EVENT)
    for actor, dest in ((AGENT, "closed"), (CLERK, "parked")):
        spec = workflow.check_fire(
            reference="D-2", state="open", event="decide", actor=actor, payload={}, guards={}
        )
        assert spec.dest == dest


def test_same_event_lists_every_role() -> None:
    workflow = CompiledWorkflow(SHARED_EVENT)
    guest = Actor(name="G", role="guest", institution="office")
    with pytest.raises(ActorNotAllowed) as caught:
        workflow.check_fire(
            reference="D-2", state="open", event="decide", actor=guest, payload={}, guards={}
        )
    assert caught.value.allowed_roles == ("agent", "clerk")


def test_one_machine_for_many_dossiers() -> None:
    workflow = CompiledWorkflow(SHARED_EVENT)
    machine = workflow.machine
    for number in range(2000):
        workflow.check_fire(
            reference=f"D-{number}",
            state="open",
            event="decide",
            actor=AGENT if number % 2 else CLERK,
            payload={},
            guards={},
        )
    assert workflow.machine is machine
    assert machine.models == []
    assert set(machine.events) == {"decide", "finish"}
    assert workflow.key == "shared-event@3"


def test_machine_has_no_auto_transitions() -> None:
    assert not any(name.startswith("to_") for name in WORKFLOW.machine.events)
    assert set(WORKFLOW.machine.states) == set(WORKFLOW.definition.states)


STATES = list(WORKFLOW.definition.states)
EVENTS = sorted({spec.event for spec in WORKFLOW.definition.transitions} | {"unknown"})
ACTORS = {"agent": AGENT, "clerk": CLERK, "system": SYSTEM}


@given(state=st.sampled_from(STATES), event=st.sampled_from(EVENTS))
def test_fire_agrees_with_definition(state: str, event: str) -> None:
    spec = WORKFLOW.transition(state, event)
    if spec is None:
        with pytest.raises(TransitionNotAllowed):
            fire(state, event)
        return
    actor = ACTORS[spec.roles[0]]
    payload = {name: "value" for name in spec.requires}
    taken = fire(state, event, actor, payload, {"approved": lambda context: True})
    assert taken == spec.dest
