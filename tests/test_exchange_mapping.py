"""The exchange mapping: the shipped file loads, and a bad one fails at its line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from case_workflow.errors import InvalidDefinition
from case_workflow.exchange import load_mapping
from tests.exchange_helpers import ALOMRANE, MAPPING_FILE, MEDIATOR


def test_shipped_mapping_loads() -> None:
    mapping = load_mapping(MAPPING_FILE)
    assert mapping.parties == {MEDIATOR: "mediator-alomrane", ALOMRANE: "alomrane-respondent"}
    assert mapping.peer_of(MEDIATOR) == ALOMRANE
    transmit = mapping.rule(MEDIATOR, "transmit")
    assert transmit is not None and transmit.create
    answer = mapping.rule(ALOMRANE, "answer")
    assert answer is not None
    assert answer.fire == "answer"
    assert answer.receiver == MEDIATOR
    assert mapping.rule(MEDIATOR, "start_review") is None


def test_escalation_sent_only_from_listed_states() -> None:
    rule = load_mapping(MAPPING_FILE).rule(MEDIATOR, "escalation")
    assert rule is not None
    assert rule.sends_from("transmitted")
    assert not rule.sends_from("recommendation_follow_up")


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({MEDIATOR: "transmitted", ALOMRANE: "acknowledged"}, True),
        ({MEDIATOR: "recommendation_follow_up", ALOMRANE: "recommendation_received"}, True),
        ({MEDIATOR: "closed", ALOMRANE: "answered"}, False),
        ({MEDIATOR: "under_review", ALOMRANE: None}, True),
        ({MEDIATOR: "transmitted", ALOMRANE: None}, False),
    ],
)
def test_agree(states: dict[str, str | None], expected: bool) -> None:
    assert load_mapping(MAPPING_FILE).agree(states) is expected


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = MAPPING_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "exchange.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def line_of(path: Path, fragment: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if fragment in line)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("fire: provide_information", "fire: provide_informations", "unknown event"),
        ("on: resume,", "on: resumed,", "unknown event 'resumed'"),
        ("states: [transmitted]", "states: [transmited]", "unknown state 'transmited'"),
        ("al-omrane: [received, acknowledged]", "al-omrane: [received, acked]", "unknown state"),
        ("fire: answer, role: respondent_agent", "fire: answer, role: clerk", "unknown role"),
        (
            "fire: provide_information, role: mediator_agent",
            "fire: provide_information, role: respondent_agent",
            "may not fire",
        ),
        ("on: transmit, create: true", "on: transmit, create: true, fire: close", "exactly one"),
        ("- {from: al-omrane, on: answer", "- {from: alomrane, on: answer", "unknown party"),
        (
            "fire: close, role: mediator_agent}\n  - {from: al-omrane",
            "fire: answer, role: respondent_agent}\n  - {from: al-omrane",
            "requires payload field",
        ),
    ],
)
def test_bad_mapping_fails_at_its_place(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = broken(tmp_path, old, new)
    with pytest.raises(InvalidDefinition, match=message) as raised:
        load_mapping(path)
    error = raised.value
    assert error.file == str(path)
    assert error.line == line_of(path, new.split("\n", maxsplit=1)[0].strip().split(",")[0])
    assert error.column is not None


def test_unknown_key_is_reported(tmp_path: Path) -> None:
    path = broken(tmp_path, "exchange: mediator-alomrane", "exchange: mediator-alomrane\nextra: 1")
    with pytest.raises(InvalidDefinition, match="unknown key 'extra'") as raised:
        load_mapping(path)
    assert raised.value.line == line_of(path, "extra: 1")


def test_duplicate_message_is_reported_at_second(tmp_path: Path) -> None:
    path = broken(tmp_path, "on: withdraw,", "on: close,")
    with pytest.raises(InvalidDefinition, match="already declared") as raised:
        load_mapping(path)
    assert raised.value.line == line_of(path, "on: close,") + 1
