"""The exchange mapping: which steps of one institution's workflow travel to the other's.

A mapping file names two parties (institutions) and the workflow each one runs. It lists the
messages, each a step of the sender and the receiver's action (create the dossier, fire an
event, or record a history entry), and the states in which both sides agree on a dossier.
:func:`load_mapping` reads it with the workflow files' reader and checks it against both
workflows, raising :class:`InvalidDefinition` at ``FILE:LINE:COLUMN`` for an unknown party,
event, state or role.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from case_workflow.definition.loader import load_builtin, load_workflow
from case_workflow.definition.reader import DataPath, Document, read_file
from case_workflow.errors import InvalidDefinition
from case_workflow.records import ActionKind
from case_workflow.states import CompiledWorkflow

__all__ = ["ExchangeMapping", "MessageRule", "load_mapping"]

SWEEP_TRIGGERS = tuple(kind.value for kind in ActionKind)
"""Triggers of the sweep's flag-only actions, which are no workflow events."""

SWEEP_PAYLOAD = frozenset({"deadline", "kind", "level", "due_at", "fire_at"})
"""Payload fields of every step the sweep takes."""

OneOrMany = Annotated[list[str], Field(min_length=1)]


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PartySpec(_Strict):
    workflow: str


class MessageSpec(_Strict):
    sender: str = Field(alias="from")
    on: str
    role: str
    create: bool = False
    fire: str | None = None
    record: str | None = None
    states: list[str] = Field(default_factory=list)

    @field_validator("states", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return _listed(value)


class MappingFile(_Strict):
    exchange: str
    version: int = Field(ge=1)
    parties: dict[str, PartySpec] = Field(min_length=2, max_length=2)
    messages: list[MessageSpec] = Field(min_length=1)
    agreeing_states: list[dict[str, OneOrMany]] = Field(default_factory=list)

    @field_validator("agreeing_states", mode="before")
    @classmethod
    def _states_one_or_many(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [
            {key: _listed(item) for key, item in entry.items()}
            if isinstance(entry, dict)
            else entry
            for entry in value
        ]


@dataclass(frozen=True)
class MessageRule:
    """One message of the mapping: the sender's step and the receiver's action."""

    sender: str
    receiver: str
    on: str
    role: str
    create: bool
    fire: str | None
    record: str | None
    states: frozenset[str]

    def sends_from(self, state: str | None) -> bool:
        return not self.states or state in self.states


class ExchangeMapping:
    """A checked mapping between two parties' workflows."""

    def __init__(self, spec: MappingFile, workflows: Mapping[str, CompiledWorkflow]) -> None:
        self.name = spec.exchange
        self.version = spec.version
        self.workflows = dict(workflows)
        self.parties = {party: item.workflow for party, item in spec.parties.items()}
        first, second = self.parties
        self._peer = {first: second, second: first}
        self._rules: dict[tuple[str, str], MessageRule] = {}
        for item in spec.messages:
            rule = MessageRule(
                sender=item.sender,
                receiver=self._peer[item.sender],
                on=item.on,
                role=item.role,
                create=item.create,
                fire=item.fire,
                record=item.record,
                states=frozenset(item.states),
            )
            self._rules[(item.sender, item.on)] = rule
        self._agreeing = [
            {party: frozenset(states) for party, states in entry.items()}
            for entry in spec.agreeing_states
        ]

    def peer_of(self, institution: str) -> str:
        return self._peer[institution]

    def workflow_of(self, institution: str) -> CompiledWorkflow:
        return self.workflows[self.parties[institution]]

    def rule(self, sender: str, on: str) -> MessageRule | None:
        """Return the message rule for the sender's step ``on``, if that step travels."""
        return self._rules.get((sender, on))

    def rules(self) -> list[MessageRule]:
        return list(self._rules.values())

    def agree(self, states: Mapping[str, str | None]) -> bool:
        """Return True when the parties' states of one dossier agree.

        ``states`` maps each party to its dossier's state, or None when it has no dossier; a
        state listed in no agreeing entry agrees only with no dossier on the other side.
        """
        present = {party: state for party, state in states.items() if state is not None}
        if len(present) < len(self.parties):
            return all(
                not any(state in entry.get(party, ()) for entry in self._agreeing)
                for party, state in present.items()
            )
        return any(
            all(state in entry.get(party, ()) for party, state in present.items())
            for entry in self._agreeing
        )


def load_mapping(
    path: str | Path, workflows: Iterable[CompiledWorkflow] | None = None
) -> ExchangeMapping:
    """Load and check the mapping file at ``path`` against the parties' workflows.

    Workflows not passed in ``workflows`` are loaded from ``NAME.yaml`` beside the mapping
    file, or else from the shipped workflows. Raise InvalidDefinition at the bad value.
    """
    source = Path(path)
    document = read_file(source)
    try:
        spec = MappingFile.model_validate(document.data)
    except ValidationError as error:
        raise _located(error, document) from None
    given = {workflow.definition.workflow: workflow for workflow in workflows or ()}
    loaded: dict[str, CompiledWorkflow] = {}
    for party, item in spec.parties.items():
        if item.workflow not in given:
            sibling = source.parent / f"{item.workflow}.yaml"
            try:
                given[item.workflow] = (
                    load_workflow(sibling) if sibling.is_file() else load_builtin(item.workflow)
                )
            except InvalidDefinition:
                raise
            except Exception as error:
                raise document.error(
                    ("parties", party, "workflow"),
                    f"party {party!r} names workflow {item.workflow!r}, which cannot be loaded "
                    f"({error})",
                    value=item.workflow,
                    fix=f"put {item.workflow}.yaml beside the mapping file or name a shipped one",
                ) from None
        loaded[item.workflow] = given[item.workflow]
    _check(spec, loaded, document)
    return ExchangeMapping(spec, loaded)


def _located(error: ValidationError, document: Document) -> InvalidDefinition:
    detail = error.errors()[0]
    path: DataPath = tuple(detail["loc"])
    where = ".".join(str(step) for step in path) or "the top level"
    if detail["type"] == "missing":
        return document.error(
            path[:-1],
            f"missing required key {path[-1]!r} in {where.rpartition('.')[0] or 'the top level'}",
            fix=f"add '{path[-1]}: ...'",
            at_key=True,
        )
    if detail["type"] == "extra_forbidden":
        return document.error(
            path,
            f"unknown key {path[-1]!r} in {where.rpartition('.')[0] or 'the top level'}",
            value=path[-1],
            fix="remove it or correct its spelling",
            at_key=True,
        )
    return document.error(
        path,
        f"invalid value {detail.get('input')!r} for {where}: {detail['msg']}",
        value=detail.get("input"),
        fix=f"correct {where}",
    )


def _hint(value: str, choices: Iterable[str]) -> str:
    listed = sorted(choices)
    close = difflib.get_close_matches(value, listed, n=1)
    suffix = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{suffix}; known: {', '.join(listed) or 'none'}"


def _check(
    spec: MappingFile, workflows: Mapping[str, CompiledWorkflow], document: Document
) -> None:
    parties = {party: workflows[item.workflow] for party, item in spec.parties.items()}
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(spec.messages):
        place: DataPath = ("messages", index)
        if item.sender not in parties:
            raise document.error(
                (*place, "from"),
                f"message {index + 1} is sent by unknown party {item.sender!r}"
                f"{_hint(item.sender, parties)}",
                value=item.sender,
                fix="name one of the parties declared under 'parties'",
            )
        if (item.sender, item.on) in seen:
            raise document.error(
                (*place, "on"),
                f"a message for {item.sender!r} step {item.on!r} is already declared",
                value=item.on,
                fix="keep one entry per sender and step",
            )
        seen.add((item.sender, item.on))
        receiver = next(party for party in parties if party != item.sender)
        _check_message(item, place, parties[item.sender], parties[receiver], document)
    for index, entry in enumerate(spec.agreeing_states):
        for party, states in entry.items():
            if party not in parties:
                raise document.error(
                    ("agreeing_states", index, party),
                    f"unknown party {party!r}{_hint(party, parties)}",
                    value=party,
                    fix="name one of the parties declared under 'parties'",
                    at_key=True,
                )
            known = parties[party].definition.states
            for position, state in enumerate(states):
                if state not in known:
                    raise document.error(
                        ("agreeing_states", index, party, position),
                        f"unknown state {state!r} of workflow "
                        f"{parties[party].key}{_hint(state, known)}",
                        value=state,
                        fix="use a state declared in that workflow",
                    )


def _check_message(
    item: MessageSpec,
    place: DataPath,
    sender: CompiledWorkflow,
    receiver: CompiledWorkflow,
    document: Document,
) -> None:
    sent_events = {spec.event for spec in sender.definition.transitions}
    if item.on not in sent_events and item.on not in SWEEP_TRIGGERS:
        raise document.error(
            (*place, "on"),
            f"unknown event {item.on!r} of workflow {sender.key}"
            f"{_hint(item.on, sent_events | set(SWEEP_TRIGGERS))}",
            value=item.on,
            fix="name an event of the sending workflow, 'reminder' or 'escalation'",
        )
    for position, state in enumerate(item.states):
        if state not in sender.definition.states:
            raise document.error(
                (*place, "states", position),
                f"unknown state {state!r} of workflow {sender.key}"
                f"{_hint(state, sender.definition.states)}",
                value=state,
                fix="use a state declared in the sending workflow",
            )
    actions = [
        name
        for name, used in (("create", item.create), ("fire", item.fire), ("record", item.record))
        if used
    ]
    if len(actions) != 1:
        raise document.error(
            place,
            f"message {item.sender}:{item.on} must have exactly one of create, fire or record, "
            f"found {', '.join(actions) or 'none'}",
            fix="keep one of 'create: true', 'fire: EVENT' or 'record: NAME'",
        )
    roles = receiver.definition.roles
    if item.role not in roles:
        raise document.error(
            (*place, "role"),
            f"unknown role {item.role!r} of workflow {receiver.key}{_hint(item.role, roles)}",
            value=item.role,
            fix="name a role declared in the receiving workflow",
        )
    if item.fire is None:
        return
    transitions = [spec for spec in receiver.definition.transitions if spec.event == item.fire]
    if not transitions:
        events = {spec.event for spec in receiver.definition.transitions}
        raise document.error(
            (*place, "fire"),
            f"unknown event {item.fire!r} of workflow {receiver.key}{_hint(item.fire, events)}",
            value=item.fire,
            fix="name an event of the receiving workflow",
        )
    if not any(item.role in spec.roles for spec in transitions):
        allowed = sorted({role for spec in transitions for role in spec.roles})
        raise document.error(
            (*place, "role"),
            f"role {item.role!r} may not fire {item.fire!r} in workflow {receiver.key}; "
            f"roles allowed: {', '.join(allowed)}",
            value=item.role,
            fix=f"use one of: {', '.join(allowed)}",
        )
    provided = (
        set(SWEEP_PAYLOAD)
        if item.on in SWEEP_TRIGGERS
        else {
            field
            for spec in sender.definition.transitions
            if spec.event == item.on
            for field in spec.requires
        }
    )
    needed = {field for spec in transitions for field in spec.requires}
    if not needed <= provided:
        missing = ", ".join(sorted(needed - provided))
        raise document.error(
            (*place, "fire"),
            f"event {item.fire!r} of workflow {receiver.key} requires payload field(s) "
            f"{missing}, which step {item.on!r} of workflow {sender.key} does not require",
            value=item.fire,
            fix=f"add {missing} to the 'requires' of {item.on!r} in the sending workflow",
        )
