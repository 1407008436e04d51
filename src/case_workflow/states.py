"""The state machine: one compiled ``transitions.Machine`` per workflow version.

:class:`CompiledWorkflow` builds a single :class:`transitions.Machine` when a definition is
loaded, with ``auto_transitions=False`` and no model bound. A dossier is never bound to it:
:meth:`CompiledWorkflow.check_fire` drives the machine's event object on a throwaway subject
whose state is set to the dossier's state, so the machine decides which transition applies
while the dossier itself stays a database row. The role, institution, required payload fields
and the guard of each candidate transition are the machine's conditions, registered as
callables (no callbacks named by strings, no ``on_enter_<state>`` convention).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast

from transitions import EventData, Machine, MachineError

from case_workflow.definition.model import (
    DeadlineRule,
    StateSpec,
    TransitionSpec,
    WorkflowDefinition,
)
from case_workflow.errors import (
    ActorNotAllowed,
    CaseWorkflowError,
    GuardRejected,
    InvalidInput,
    TransitionNotAllowed,
)

__all__ = ["Actor", "CompiledWorkflow", "Guard", "GuardContext"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """A person or process firing events: a name, the role it plays and its institution."""

    name: str
    role: str
    institution: str


@dataclass(frozen=True)
class GuardContext:
    """Arguments passed to a guard callable that decides whether a transition may happen."""

    reference: str
    state: str
    event: str
    actor: Actor
    payload: Mapping[str, object]
    data: Mapping[str, object]


Guard = Callable[[GuardContext], bool]
"""A guard named by a transition's ``guard:`` key; returns True to let the transition happen."""


class _Subject:
    """Throwaway object carrying one firing attempt through the shared machine."""

    __slots__ = ("actor", "data", "guards", "payload", "reference", "rejections", "state", "taken")

    def __init__(
        self,
        *,
        reference: str,
        state: str,
        actor: Actor,
        payload: Mapping[str, object],
        data: Mapping[str, object],
        guards: Mapping[str, Guard],
    ) -> None:
        self.reference = reference
        self.state = state
        self.actor = actor
        self.payload = payload
        self.data = data
        self.guards = guards
        self.rejections: list[CaseWorkflowError] = []
        self.taken: TransitionSpec | None = None


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class CompiledWorkflow:
    """A loaded workflow definition and its one shared state machine.

    Instances are immutable after construction and safe to share between threads: firing only
    reads the machine and writes to a per-call subject.
    """

    def __init__(
        self,
        definition: WorkflowDefinition,
        *,
        source: Path | None = None,
        template_dirs: tuple[Path, ...] = (),
    ) -> None:
        self.definition = definition
        self.source = source
        self.template_dirs = template_dirs
        self.key = definition.key
        self._by_source: dict[tuple[str, str], list[TransitionSpec]] = {}
        for spec in definition.transitions:
            for state in spec.source:
                self._by_source.setdefault((state, spec.event), []).append(spec)
        self._machine = self._build_machine()

    @property
    def machine(self) -> Machine:
        """The shared ``transitions.Machine``; it has no models bound."""
        return self._machine

    def _build_machine(self) -> Machine:
        machine = Machine(
            model=None,
            states=list(self.definition.states),
            initial=self.definition.initial_state,
            auto_transitions=False,
            send_event=True,
            name=f"{self.key} ",
        )
        for spec in self.definition.transitions:
            machine.add_transition(
                trigger=spec.event,
                source=list(spec.source),
                dest=spec.dest,
                conditions=[partial(self._may_take, spec)],
                after=[partial(self._record_taken, spec)],
            )
        return machine

    # -- queries -------------------------------------------------------------------------

    def transition(self, state: str, event: str) -> TransitionSpec | None:
        """Return the first transition of ``event`` leaving ``state`` in file order, if any."""
        candidates = self._by_source.get((state, event))
        return candidates[0] if candidates else None

    def allowed_events(self, state: str, role: str | None = None) -> list[str]:
        """Return the events that leave ``state`` (only those ``role`` may fire, if given)."""
        events = [
            spec.event
            for spec in self.definition.transitions
            if state in spec.source and (role is None or role in spec.roles)
        ]
        return list(dict.fromkeys(events))

    def deadline_of(self, state: str) -> DeadlineRule | None:
        """Return the deadline that starts when a dossier enters ``state``, if any."""
        return self._state(state).deadline

    def paused_by(self, state: str) -> list[str]:
        """Return the names of the deadlines whose clock stops while a dossier is in ``state``."""
        return list(self._state(state).pauses)

    def is_final(self, state: str) -> bool:
        """Return True when no event may leave ``state``."""
        return self._state(state).final

    def _state(self, state: str) -> StateSpec:
        try:
            return self.definition.states[state]
        except KeyError:
            raise InvalidInput(
                f"unknown state {state!r} in workflow {self.key}; "
                f"known states: {', '.join(self.definition.states)}"
            ) from None

    # -- firing --------------------------------------------------------------------------

    def check_fire(
        self,
        *,
        reference: str,
        state: str,
        event: str,
        actor: Actor,
        payload: Mapping[str, object],
        guards: Mapping[str, Guard],
        data: Mapping[str, object] | None = None,
    ) -> TransitionSpec:
        """Decide which transition ``event`` takes from ``state`` for ``actor``; change nothing.

        Raises :class:`TransitionNotAllowed` when no transition of ``event`` leaves ``state``,
        :class:`ActorNotAllowed` when the actor's role or institution does not match,
        :class:`GuardRejected` when a required payload field is missing or a guard returns
        False, and :class:`InvalidInput` when a transition names a guard absent from
        ``guards``. ``data`` is the dossier's stored data, passed on to guards.
        """
        self._state(state)
        if (state, event) not in self._by_source:
            raise TransitionNotAllowed(reference, state, event, self.allowed_events(state))
        subject = _Subject(
            reference=reference,
            state=state,
            actor=actor,
            payload=payload,
            data=data if data is not None else {},
            guards=guards,
        )
        try:
            self._machine.events[event].trigger(subject)
        except MachineError:
            raise TransitionNotAllowed(
                reference, state, event, self.allowed_events(state)
            ) from None
        if subject.taken is None:
            raise _strongest(subject.rejections, reference, event, actor)
        logger.debug("%s: %s allows %s -> %s", reference, event, state, subject.taken.dest)
        return subject.taken

    def _may_take(self, spec: TransitionSpec, event_data: EventData) -> bool:
        subject = cast(_Subject, event_data.model)
        rejection = self._rejection(spec, subject)
        if rejection is None:
            return True
        subject.rejections.append(rejection)
        return False

    def _rejection(self, spec: TransitionSpec, subject: _Subject) -> CaseWorkflowError | None:
        actor = subject.actor
        if actor.role not in spec.roles:
            return ActorNotAllowed(subject.reference, spec.event, actor.role, spec.roles)
        role = self.definition.roles.get(actor.role)
        if role is not None and role.institution != actor.institution:
            return ActorNotAllowed(
                subject.reference,
                spec.event,
                f"{actor.role} (institution {actor.institution})",
                [
                    f"{name} (institution {self.definition.roles[name].institution})"
                    for name in spec.roles
                    if name in self.definition.roles
                ],
            )
        missing = [name for name in spec.requires if _is_missing(subject.payload.get(name))]
        if missing:
            return GuardRejected(
                subject.reference,
                spec.event,
                f"missing payload field(s) {', '.join(missing)}; "
                f"{spec.event!r} requires: {', '.join(spec.requires)}",
            )
        if spec.guard is None:
            return None
        guard = subject.guards.get(spec.guard)
        if guard is None:
            raise InvalidInput(
                f"transition {spec.event!r} of workflow {self.key} names guard {spec.guard!r}, "
                f"which was not registered; registered guards: "
                f"{', '.join(sorted(subject.guards)) or 'none'}; pass it in 'guards'"
            )
        context = GuardContext(
            reference=subject.reference,
            state=subject.state,
            event=spec.event,
            actor=actor,
            payload=subject.payload,
            data=subject.data,
        )
        if not guard(context):
            return GuardRejected(
                subject.reference, spec.event, f"guard {spec.guard!r} returned false"
            )
        return None

    @staticmethod
    def _record_taken(spec: TransitionSpec, event_data: EventData) -> None:
        subject = cast(_Subject, event_data.model)
        subject.taken = spec


def _strongest(
    rejections: list[CaseWorkflowError], reference: str, event: str, actor: Actor
) -> CaseWorkflowError:
    """Pick the error to report when every candidate transition was rejected.

    A guard rejection means the actor passed the role check, so it is more precise than a role
    mismatch. Role mismatches are merged, so the message lists every role that may fire.
    """
    if not rejections:
        return GuardRejected(reference, event, "no transition applied")
    for rejection in rejections:
        if isinstance(rejection, GuardRejected):
            return rejection
    role_errors = [r for r in rejections if isinstance(r, ActorNotAllowed)]
    if len(role_errors) > 1:
        roles = [role for error in role_errors for role in error.allowed_roles]
        return ActorNotAllowed(reference, event, role_errors[0].role, list(dict.fromkeys(roles)))
    return rejections[0]
