"""Static checks of a workflow definition, one small function per rule.

The pydantic model checks the shape of each value. These checks relate the parts of a file to
each other: states named by transitions exist, every deadline has an action path, and so on.
Each raises :class:`InvalidDefinition` located at the offending value in the YAML file, naming
that value, the allowed values and the fix. :func:`run_checks` runs them in an order where
earlier checks guarantee what later ones rely on (known states before the graph checks, for
example). The graph checks live in :mod:`case_workflow.definition.graph`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator

from babel import Locale, UnknownLocaleError

from case_workflow.definition.graph import (
    check_final_state_exists,
    check_final_states_have_no_exits,
    check_no_trap_states,
    check_no_unreachable_states,
    check_one_initial_state,
    source_paths,
)
from case_workflow.definition.model import WorkflowDefinition
from case_workflow.definition.reader import DataPath, Document
from case_workflow.errors import CaseWorkflowError

__all__ = [
    "CHECKS",
    "check_calendar",
    "check_deadline_actions",
    "check_due_from_fields",
    "check_extensions",
    "check_final_state_exists",
    "check_final_states_have_no_exits",
    "check_languages",
    "check_letter_parties",
    "check_letter_references",
    "check_no_trap_states",
    "check_no_unreachable_states",
    "check_one_initial_state",
    "check_outcomes_on_final_states",
    "check_pauses",
    "check_required_fields",
    "check_role_institutions",
    "check_timezone",
    "check_transition_roles",
    "check_transition_states",
    "run_checks",
]

PARTY_RECIPIENTS = ("complainant", "respondent")
"""Letter recipients that are parties of the dossier rather than institutions."""

EXTENSION_FIELD = "extension"
"""Payload field holding the duration by which an ``extends`` transition extends a deadline."""


def _choices(values: Iterable[str]) -> str:
    listed = ", ".join(values)
    return listed or "none declared"


def _closest(value: str, values: Iterable[str]) -> str:
    matches = difflib.get_close_matches(value, list(values), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def check_transition_states(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every transition's ``from`` and ``to`` name declared states."""
    states = definition.states
    for index, source, path in source_paths(definition, document):
        if source not in states:
            event = definition.transitions[index].event
            raise document.error(
                path,
                f"transition {event!r} starts from unknown state {source!r}"
                f"{_closest(source, states)}; known states: {_choices(states)}",
                value=source,
                fix="use one of the known states or declare the state under 'states'",
            )
    for index, spec in enumerate(definition.transitions):
        if spec.dest not in states:
            raise document.error(
                ("transitions", index, "to"),
                f"transition {spec.event!r} goes to unknown state {spec.dest!r}"
                f"{_closest(spec.dest, states)}; known states: {_choices(states)}",
                value=spec.dest,
                fix="use one of the known states or declare the state under 'states'",
            )


def check_transition_roles(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every role named by a transition is declared under ``roles``."""
    roles = definition.roles
    for index, spec in enumerate(definition.transitions):
        if not spec.roles:
            raise document.error(
                ("transitions", index, "roles"),
                f"transition {spec.event!r} names no role, so nobody could fire it",
                value=[],
                fix=f"list at least one of the roles: {_choices(roles)}",
            )
        for position, role in enumerate(spec.roles):
            if role not in roles:
                raise document.error(
                    ("transitions", index, "roles", position),
                    f"transition {spec.event!r} names unknown role {role!r}"
                    f"{_closest(role, roles)}; known roles: {_choices(roles)}",
                    value=role,
                    fix="use one of the known roles or declare the role under 'roles'",
                )


def check_role_institutions(definition: WorkflowDefinition, document: Document) -> None:
    """Check that roles and respondents name declared institutions, if any are declared."""
    institutions = definition.institutions
    if not institutions:
        return
    owners = [(("roles", name), spec.institution) for name, spec in definition.roles.items()]
    owners += [
        (("respondents", name), spec.institution) for name, spec in definition.respondents.items()
    ]
    for owner, institution in owners:
        if institution not in institutions:
            raise document.error(
                (*owner, "institution"),
                f"{owner[0][:-1]} {owner[1]!r} belongs to unknown institution {institution!r}"
                f"{_closest(institution, institutions)}; "
                f"known institutions: {_choices(institutions)}",
                value=institution,
                fix="use one of the known institutions or declare it under 'institutions'",
            )


def check_system_role(definition: WorkflowDefinition, document: Document) -> None:
    """Check that ``system_role``, the role of sweeps and calendar changes, is a declared role."""
    if definition.system_role not in definition.roles:
        declared = ("system_role",) in document.marks.keys
        raise document.error(
            ("system_role",) if declared else ("roles",),
            f"system role {definition.system_role!r} is not among the roles: "
            f"{_choices(list(definition.roles))}",
            value=definition.system_role,
            fix=f"declare '{definition.system_role}: {{institution: ...}}' under 'roles', "
            "or set 'system_role' to one of the roles",
        )


def check_deadline_actions(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every deadline has a reminder or escalation level, and its events can fire.

    An escalation ``event`` is fired by the system actor, so a transition of that event must
    leave the deadline's state and list ``system_role`` among its roles.
    """
    system = definition.system_role
    for state, spec in definition.states.items():
        rule = spec.deadline
        if rule is None:
            continue
        path: DataPath = ("states", state, "deadline")
        if not rule.reminders and not rule.escalation:
            raise document.error(
                path,
                f"deadline {rule.name!r} of state {state!r} has no action path: "
                "no reminder and no escalation level",
                value=rule.name,
                fix="add 'reminders' or 'escalation' levels, for example "
                "'escalation: [{after: 0 days, letter: formal_notice}]'",
            )
        for level, step in enumerate(rule.escalation):
            if step.event is None:
                continue
            allowed = [t.event for t in definition.transitions if state in t.source]
            fired_by_system = [
                t.event for t in definition.transitions if state in t.source and system in t.roles
            ]
            if step.event not in fired_by_system:
                raise document.error(
                    (*path, "escalation", level, "event"),
                    f"escalation level {level + 1} of deadline {rule.name!r} fires "
                    f"{step.event!r}, which role {system!r} may not fire from state {state!r}; "
                    f"events {system!r} may fire there: {_choices(fired_by_system)}",
                    value=step.event,
                    fix=(
                        f"add {system!r} to the roles of transition {step.event!r}"
                        if step.event in allowed
                        else f"add a transition {{event: {step.event}, from: {state}, "
                        f"roles: [{system}]}} or use one of: {_choices(allowed)}"
                    ),
                )


def check_due_from_fields(definition: WorkflowDefinition, document: Document) -> None:
    """Check that transitions into a state whose deadline is ``due_from`` a field require it."""
    for index, spec in enumerate(definition.transitions):
        rule = definition.states[spec.dest].deadline
        if rule is None or rule.due_from is None or rule.due_from in spec.requires:
            continue
        raise document.error(
            ("transitions", index, "event"),
            f"transition {spec.event!r} enters {spec.dest!r}, whose deadline {rule.name!r} "
            f"is due at payload field {rule.due_from!r}, but does not require that field; "
            f"it requires: {_choices(spec.requires)}",
            value=spec.event,
            fix=f"add {rule.due_from!r} to the transition's 'requires'",
        )


def check_extensions(definition: WorkflowDefinition, document: Document) -> None:
    """Check that an ``extends`` transition leaves only states where that deadline runs.

    A deadline's clock runs only in the state that defines it (a pausing state stops it), and
    only a running deadline can be extended. The extra time comes from the payload field
    ``extension``, so the transition must require it.
    """
    for index, transition in enumerate(definition.transitions):
        name = transition.extends
        if name is None:
            continue
        running = [
            state
            for state, spec in definition.states.items()
            if spec.deadline is not None and spec.deadline.name == name
        ]
        outside = [state for state in transition.source if state not in running]
        if outside:
            raise document.error(
                ("transitions", index, "extends"),
                f"transition {transition.event!r} extends deadline {name!r}, which does not run "
                f"in state(s) {', '.join(outside)}; it runs in: {_choices(running)}",
                value=name,
                fix="name a deadline of the transition's 'from' states, or fire the transition "
                "only from states where that deadline runs",
            )
        if EXTENSION_FIELD not in transition.requires:
            raise document.error(
                ("transitions", index, "requires"),
                f"transition {transition.event!r} extends deadline {name!r} but does not require "
                f"the payload field {EXTENSION_FIELD!r} that holds the extra time",
                value=list(transition.requires),
                fix=f"add {EXTENSION_FIELD!r} to 'requires'",
            )


def check_pauses(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every name under ``pauses`` is a deadline defined on some state."""
    deadlines = {spec.deadline.name for spec in definition.states.values() if spec.deadline}
    for state, spec in definition.states.items():
        for position, name in enumerate(spec.pauses):
            if name not in deadlines:
                raise document.error(
                    ("states", state, "pauses", position),
                    f"state {state!r} pauses unknown deadline {name!r}"
                    f"{_closest(name, deadlines)}; deadlines: {_choices(sorted(deadlines))}",
                    value=name,
                    fix="name the 'deadline: {name: ...}' of another state",
                )


def _letter_uses(definition: WorkflowDefinition) -> Iterator[tuple[DataPath, str]]:
    """Yield ``(path, letter name)`` for every place that sends a letter."""
    for state, spec in definition.states.items():
        for position, letter in enumerate(spec.letters):
            yield ("states", state, "letters", position), letter
        if spec.deadline is None:
            continue
        base: DataPath = ("states", state, "deadline")
        for position, reminder in enumerate(spec.deadline.reminders):
            if reminder.letter is not None:
                yield (*base, "reminders", position, "letter"), reminder.letter
        for position, level in enumerate(spec.deadline.escalation):
            if level.letter is not None:
                yield (*base, "escalation", position, "letter"), level.letter
    for index, transition in enumerate(definition.transitions):
        for position, letter in enumerate(transition.letters):
            yield ("transitions", index, "letters", position), letter


def check_letter_references(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every letter a state, transition, reminder or level names is declared."""
    letters = definition.letters
    for path, letter in _letter_uses(definition):
        if letter not in letters:
            raise document.error(
                path,
                f"unknown letter {letter!r}{_closest(letter, letters)}; "
                f"declared letters: {_choices(letters)}",
                value=letter,
                fix="use a declared letter or declare it under 'letters' with its template",
            )


def check_letter_parties(definition: WorkflowDefinition, document: Document) -> None:
    """Check that letters come from an institution and go to a party or an institution."""
    institutions = list(definition.institutions)
    recipients = [*PARTY_RECIPIENTS, *institutions]
    for name, letter in definition.letters.items():
        if letter.sender not in definition.institutions:
            raise document.error(
                ("letters", name, "from"),
                f"letter {name!r} is sent from unknown institution {letter.sender!r}"
                f"{_closest(letter.sender, institutions)}; "
                f"institutions: {_choices(institutions)}",
                value=letter.sender,
                fix="use a declared institution or declare it under 'institutions'",
            )
        if letter.to not in recipients:
            raise document.error(
                ("letters", name, "to"),
                f"letter {name!r} is addressed to unknown recipient {letter.to!r}"
                f"{_closest(letter.to, recipients)}; allowed: {_choices(recipients)}",
                value=letter.to,
                fix="address it to 'complainant', 'respondent' or a declared institution",
            )


def check_required_fields(definition: WorkflowDefinition, document: Document) -> None:
    """Check that payload field names (``requires``, ``due_from``) are Python identifiers."""
    fields: list[tuple[DataPath, str]] = []
    for index, transition in enumerate(definition.transitions):
        for position, name in enumerate(transition.requires):
            fields.append((("transitions", index, "requires", position), name))
    for state, spec in definition.states.items():
        if spec.deadline is not None and spec.deadline.due_from is not None:
            fields.append((("states", state, "deadline", "due_from"), spec.deadline.due_from))
    for path, name in fields:
        if not name.isidentifier():
            raise document.error(
                path,
                f"invalid payload field name {name!r}; a field name is an identifier "
                "(letters, digits and '_', not starting with a digit)",
                value=name,
                fix=f"rename it, for example {_identifier(name)!r}",
            )


def _identifier(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name).strip("_") or "field"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def check_languages(definition: WorkflowDefinition, document: Document) -> None:
    """Check that every language is a Babel locale (``fr``, ``ar``, ``en``, ``ar_MA``, ...)."""
    for position, language in enumerate(definition.languages):
        try:
            Locale.parse(language)
        except (UnknownLocaleError, ValueError, TypeError):
            raise document.error(
                ("languages", position),
                f"unknown language {language!r}; it is not a locale known to Babel",
                value=language,
                fix="use a language code such as 'fr', 'ar' or 'en' (or 'ar_MA')",
            ) from None


def check_timezone(definition: WorkflowDefinition, document: Document) -> None:
    """Check that the time zone exists in the pinned ``tzdata`` package."""
    from case_workflow.calendars import load_zone

    try:
        load_zone(definition.timezone)
    except CaseWorkflowError:
        raise document.error(
            ("timezone",),
            f"unknown time zone {definition.timezone!r}",
            value=definition.timezone,
            fix="use an IANA zone name such as 'Africa/Casablanca' or 'America/New_York'",
        ) from None


def check_calendar(definition: WorkflowDefinition, document: Document) -> None:
    """Check that the calendar is shipped, ``holidays:CC[-SUB]``, or a valid inline one."""
    from case_workflow.calendars import load_calendar

    try:
        load_calendar(definition.calendar)
    except CaseWorkflowError as error:
        raise document.error(
            ("calendar",),
            f"invalid calendar: {error}",
            value=definition.calendar,
            fix="use 'ma-public-administration', 'ma-private-sector', 'holidays:CC' such as "
            "'holidays:US-MA', or an inline calendar mapping",
        ) from None


def check_outcomes_on_final_states(definition: WorkflowDefinition, document: Document) -> None:
    """Check that only final states list ``outcomes``, since an outcome is how a dossier ended."""
    for state, spec in definition.states.items():
        if spec.outcomes and not spec.final:
            raise document.error(
                ("states", state, "outcomes"),
                f"state {state!r} lists outcomes but is not final",
                value=spec.outcomes,
                fix=f"add 'final: true' to {state!r} or move the outcomes to a final state",
            )


Check = Callable[[WorkflowDefinition, Document], None]

CHECKS: tuple[Check, ...] = (
    check_one_initial_state,
    check_final_state_exists,
    check_transition_states,
    check_transition_roles,
    check_role_institutions,
    check_system_role,
    check_final_states_have_no_exits,
    check_outcomes_on_final_states,
    check_no_unreachable_states,
    check_no_trap_states,
    check_letter_references,
    check_letter_parties,
    check_deadline_actions,
    check_pauses,
    check_extensions,
    check_required_fields,
    check_due_from_fields,
    check_languages,
    check_timezone,
    check_calendar,
)
"""Every check, in the order :func:`run_checks` runs them."""


def run_checks(definition: WorkflowDefinition, document: Document) -> None:
    """Run every check in order, so the first failing one raises :class:`InvalidDefinition`."""
    for check in CHECKS:
        check(definition, document)
