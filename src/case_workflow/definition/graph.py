"""Checks of the state graph: one initial state, final states, reachability, no trap states.

Each check raises :class:`InvalidDefinition` at the offending state or transition, like the
other checks in :mod:`case_workflow.definition.checks`, which runs them all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from case_workflow.definition.model import WorkflowDefinition
from case_workflow.definition.reader import DataPath, Document

__all__ = [
    "check_final_state_exists",
    "check_final_states_have_no_exits",
    "check_no_trap_states",
    "check_no_unreachable_states",
    "check_one_initial_state",
    "source_paths",
]


def check_one_initial_state(definition: WorkflowDefinition, document: Document) -> None:
    """Check that exactly one state has ``initial: true``."""
    initial = [name for name, spec in definition.states.items() if spec.initial]
    if not initial:
        raise document.error(
            ("states",),
            "no initial state; one state must have 'initial: true'",
            fix="add 'initial: true' to the state where new dossiers start, such as 'filed'",
            at_key=True,
        )
    if len(initial) > 1:
        raise document.error(
            ("states", initial[1], "initial"),
            f"more than one initial state: {', '.join(initial)}",
            value=initial[1],
            fix=f"keep 'initial: true' on one state only, for example {initial[0]!r}",
        )


def check_final_state_exists(definition: WorkflowDefinition, document: Document) -> None:
    """Check that at least one state has ``final: true``."""
    if not any(spec.final for spec in definition.states.values()):
        raise document.error(
            ("states",),
            "no final state; at least one state must have 'final: true'",
            fix="add 'final: true' to the state where dossiers end, such as 'closed'",
            at_key=True,
        )


def source_paths(
    definition: WorkflowDefinition, document: Document
) -> Iterator[tuple[int, str, DataPath]]:
    """Yield ``(transition index, source state, path of that source)`` for every transition."""
    for index, spec in enumerate(definition.transitions):
        written_as_list = isinstance(_raw(document, ("transitions", index, "from")), list)
        for position, source in enumerate(spec.source):
            path: DataPath = ("transitions", index, "from")
            yield index, source, (*path, position) if written_as_list else path


def _raw(document: Document, path: DataPath) -> object:
    try:
        return document.get(path)
    except KeyError:
        return None


def check_final_states_have_no_exits(definition: WorkflowDefinition, document: Document) -> None:
    """Check that no transition leaves a final state."""
    for index, source, path in source_paths(definition, document):
        if definition.states[source].final:
            event = definition.transitions[index].event
            raise document.error(
                path,
                f"transition {event!r} leaves final state {source!r}",
                value=source,
                fix=f"remove {source!r} from the transition's 'from', or drop 'final: true' "
                f"from state {source!r}",
            )


def _successors(definition: WorkflowDefinition) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in definition.states}
    for spec in definition.transitions:
        for source in spec.source:
            graph[source].add(spec.dest)
    return graph


def _reachable(graph: dict[str, set[str]], starts: Iterable[str]) -> set[str]:
    seen = set(starts)
    queue = deque(seen)
    while queue:
        for following in graph[queue.popleft()]:
            if following not in seen:
                seen.add(following)
                queue.append(following)
    return seen


def check_no_unreachable_states(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every state can be reached from the initial state."""
    initial = definition.initial_state
    reached = _reachable(_successors(definition), [initial])
    unreachable = [name for name in definition.states if name not in reached]
    if unreachable:
        raise document.error(
            ("states", unreachable[0]),
            f"unreachable state(s) {', '.join(unreachable)}: no chain of transitions leads "
            f"there from the initial state {initial!r}",
            value=unreachable[0],
            fix=f"add a transition into {unreachable[0]!r} or remove the state",
            at_key=True,
        )


def check_no_trap_states(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every non-final state can reach a final state, so no dossier gets stuck."""
    predecessors: dict[str, set[str]] = {name: set() for name in definition.states}
    for source, targets in _successors(definition).items():
        for target in targets:
            predecessors[target].add(source)
    finals = [name for name, spec in definition.states.items() if spec.final]
    can_finish = _reachable(predecessors, finals)
    trapped = [name for name in definition.states if name not in can_finish]
    if trapped:
        raise document.error(
            ("states", trapped[0]),
            f"trap state(s) {', '.join(trapped)}: no chain of transitions leads from there "
            f"to a final state ({', '.join(finals)})",
            value=trapped[0],
            fix=f"add a transition from {trapped[0]!r} towards a final state, "
            "or mark it 'final: true'",
            at_key=True,
        )
