"""Static checks: each rule rejects a broken variant of the minimal fixture at the right place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from case_workflow.definition.checks import CHECKS, run_checks
from case_workflow.definition.loader import load_workflow
from case_workflow.definition.reader import read_file
from case_workflow.definition.validation import parse_definition
from case_workflow.errors import InvalidDefinition
from tests.workflow_files import MINIMAL, place, variant


@dataclass(frozen=True)
class Case:
    """A broken variant: its replacements, the error's expected position and message."""

    replacements: tuple[tuple[str, str], ...]
    needle: str
    value: object
    says: str
    occurrence: int = 1
    offset: int = 0


CASES: dict[str, Case] = {
    "no_initial_state": Case((("    initial: true\n", ""),), "states:", None, "no initial state"),
    "two_initial_states": Case(
        (("  paused:\n", "  paused:\n    initial: true\n"),),
        "true",
        "paused",
        "more than one initial state: new, paused",
        occurrence=2,
    ),
    "no_final_state": Case((("    final: true\n", ""),), "states:", None, "no final state"),
    "unknown_source_state": Case(
        (("from: paused, to: waiting", "from: pausd, to: waiting"),),
        "pausd",
        "pausd",
        "unknown state 'pausd' (did you mean 'paused'?)",
    ),
    "unknown_dest_state": Case(
        (("to: expired, roles: [system]", "to: expird, roles: [system]"),),
        "expird",
        "expird",
        "unknown state 'expird'",
    ),
    "unknown_role": Case(
        (("roles: [clerk]", "roles: [clerc]"),),
        "clerc]",
        "clerc",
        "unknown role 'clerc' (did you mean 'clerk'?); known roles: agent, clerk, system",
    ),
    "unknown_role_institution": Case(
        (("clerk: {institution: office}", "clerk: {institution: offce}"),),
        "offce",
        "offce",
        "role 'clerk' belongs to unknown institution 'offce'",
    ),
    "transition_leaves_final_state": Case(
        (
            (
                "transitions:\n",
                "transitions:\n  - {event: reopen, from: done, to: new, roles: [agent]}\n",
            ),
        ),
        "done, to: new",
        "done",
        "transition 'reopen' leaves final state 'done'",
    ),
    "unreachable_state": Case(
        (("  done:\n", "  orphan:\n    final: true\n  done:\n"),),
        "orphan:",
        "orphan",
        "unreachable state(s) orphan",
    ),
    "trap_state": Case(
        (
            ("from: [waiting, expired], to: done", "from: waiting, to: done"),
            ("from: [new, paused, expired]", "from: [new, paused]"),
        ),
        "expired: {}",
        "expired",
        "trap state(s) expired",
    ),
    "deadline_without_action": Case(
        (("      escalation:\n        - {after: 0 days, event: expire, letter: late}\n", ""),),
        "name: reply",
        "reply",
        "deadline 'reply' of state 'waiting' has no action path",
    ),
    "escalation_event_not_for_system": Case(
        (("event: expire, letter: late", "event: hold, letter: late"),),
        "hold, letter",
        "hold",
        "role 'system' may not fire from state 'waiting'; events 'system' may fire there: expire",
    ),
    "extends_without_extension_field": Case(
        (("requires: [extension], extends", "requires: [comment], extends"),),
        "[comment]",
        ["comment"],
        "does not require the payload field 'extension'",
    ),
    "extends_where_deadline_not_running": Case(
        (("{event: extend, from: waiting,", "{event: extend, from: [waiting, expired],"),),
        "reply}",
        "reply",
        "extends deadline 'reply', which does not run in state(s) expired; it runs in: waiting",
    ),
    "pauses_unknown_deadline": Case(
        (("pauses: [reply]", "pauses: [replies]"),),
        "replies",
        "replies",
        "pauses unknown deadline 'replies' (did you mean 'reply'?); deadlines: reply",
    ),
    "unknown_letter": Case(
        (("letters: [receipt]", "letters: [recipt]"),),
        "recipt",
        "recipt",
        "unknown letter 'recipt' (did you mean 'receipt'?); declared letters: receipt, late",
    ),
    "unknown_escalation_letter": Case(
        (("event: expire, letter: late", "event: expire, letter: lat"),),
        "lat}",
        "lat",
        "unknown letter 'lat'",
    ),
    "letter_from_unknown_institution": Case(
        (("receipt: {from: office,", "receipt: {from: ofice,"),),
        "ofice",
        "ofice",
        "sent from unknown institution 'ofice' (did you mean 'office'?)",
    ),
    "letter_to_unknown_recipient": Case(
        (("to: complainant, template: letters/receipt", "to: citizen, template: letters/receipt"),),
        "citizen",
        "citizen",
        "allowed: complainant, respondent, office",
    ),
    "required_field_not_identifier": Case(
        (("requires: [summary]", "requires: [answer summary]"),),
        "answer summary",
        "answer summary",
        "invalid payload field name 'answer summary'",
    ),
    "due_from_not_required": Case(
        (("within: 10 calendar_days", "due_from: reply_by"),),
        "send, from",
        "send",
        "does not require that field",
    ),
    "unknown_language": Case(
        (("languages: [fr]", "languages: [fr, xx]"),), "xx", "xx", "unknown language 'xx'"
    ),
    "unknown_timezone": Case(
        (("timezone: Africa/Casablanca", "timezone: Africa/Casablana"),),
        "Africa/Casablana",
        "Africa/Casablana",
        "unknown time zone 'Africa/Casablana'",
    ),
    "unknown_calendar": Case(
        (("calendar: ma-public-administration", "calendar: ma-publik"),),
        "ma-publik",
        "ma-publik",
        "unknown calendar 'ma-publik'",
    ),
    "outcomes_on_non_final_state": Case(
        (("  expired: {}", "  expired:\n    outcomes: [stalled]"),),
        "[stalled]",
        ["stalled"],
        "state 'expired' lists outcomes but is not final",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_rejects_variant(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    path = variant(tmp_path, *case.replacements)
    with pytest.raises(InvalidDefinition) as caught:
        load_workflow(path)
    error = caught.value
    line, column = place(path, case.needle, case.occurrence)
    assert error.file == str(path)
    assert (error.line, error.column) == (line, column + case.offset)
    assert case.says in error.message
    assert error.value == case.value
    assert error.fix


def test_minimal_fixture_passes_checks() -> None:
    document = read_file(MINIMAL)
    run_checks(parse_definition(document), document)


def test_every_check_is_run() -> None:
    names = {check.__name__ for check in CHECKS}
    assert len(names) == len(CHECKS)
    assert "check_no_trap_states" in names
    assert "check_calendar" in names


def test_system_role_must_be_declared(tmp_path: Path) -> None:
    path = tmp_path / "no_system.yaml"
    path.write_text(
        "workflow: x\nversion: 1\ntimezone: Africa/Casablanca\n"
        "calendar: ma-public-administration\nlanguages: [fr]\n"
        "roles:\n  agent: {institution: office}\n"
        "states:\n  a: {initial: true}\n  b: {final: true}\n"
        "transitions:\n  - {event: go, from: a, to: b, roles: [agent]}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidDefinition) as raised:
        load_workflow(path)
    assert raised.value.value == "system"
    assert raised.value.line == 7
    assert "under 'roles'" in str(raised.value)
