"""Reading, validating and loading workflow files: every error is located and explains the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from case_workflow.definition.loader import (
    builtin_workflows_dir,
    load_builtin,
    load_workflow,
    workflow_json_schema,
)
from case_workflow.definition.reader import read_document
from case_workflow.errors import InvalidDefinition, InvalidInput
from tests.workflow_files import FIXTURES, MINIMAL, place, variant


def load_error(path: Path) -> InvalidDefinition:
    with pytest.raises(InvalidDefinition) as caught:
        load_workflow(path)
    return caught.value


def test_bad_indentation_located() -> None:
    error = load_error(FIXTURES / "bad_indentation.yaml")
    assert error.file == str(FIXTURES / "bad_indentation.yaml")
    assert error.line == 6
    assert error.column == 4
    assert "indentation" in (error.fix or "")
    assert str(error).startswith(f"{FIXTURES / 'bad_indentation.yaml'}:6:4: invalid YAML")


def test_tab_indentation_located() -> None:
    error = load_error(FIXTURES / "tab_indentation.yaml")
    assert (error.line, error.column) == (4, 1)
    assert "tab" in str(error)
    assert "spaces" in (error.fix or "")


def test_duplicate_key_rejected() -> None:
    error = load_error(FIXTURES / "duplicate_key.yaml")
    assert (error.line, error.column) == (6, 3)
    assert "duplicate key 'filed'" in error.message
    assert "line 4" in error.message
    assert error.fix


def test_reader_keeps_marks() -> None:
    document = read_document(MINIMAL.read_text(encoding="utf-8"), str(MINIMAL))
    assert document.marks.values[("states", "waiting", "deadline", "within")] == place(
        MINIMAL, "10 calendar_days"
    )
    assert document.marks.keys[("states", "paused")] == place(MINIMAL, "paused:")
    assert document.marks.values[("transitions", 4, "from", 1)] == place(MINIMAL, "expired]")


def test_reader_scalars_follow_yaml_1_2() -> None:
    document = read_document("a: yes\nb: no\nc: on\nd: 2024-01-14\ne: 08:30\nf: true\ng: 7\n")
    assert document.data == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": "2024-01-14",
        "e": "08:30",
        "f": True,
        "g": 7,
    }


def test_reader_rejects_merge_keys() -> None:
    with pytest.raises(InvalidDefinition, match="merge keys"):
        read_document("base: &b {x: 1}\nother:\n  <<: *b\n", "f.yaml")


def test_reader_rejects_empty_file() -> None:
    with pytest.raises(InvalidDefinition, match="empty") as caught:
        read_document("# only a comment\n", "f.yaml")
    assert caught.value.fix


def test_reader_rejects_top_level_list() -> None:
    with pytest.raises(InvalidDefinition, match="must be a mapping"):
        read_document("- a\n- b\n", "f.yaml")


def test_missing_file_named(tmp_path: Path) -> None:
    error = load_error(tmp_path / "absent.yaml")
    assert error.file == str(tmp_path / "absent.yaml")
    assert "not found" in error.message


def test_unknown_state_in_transition(tmp_path: Path) -> None:
    path = variant(tmp_path, ("to: done, roles: [agent], guard", "to: dnoe, roles: [agent], guard"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "dnoe")
    assert error.value == "dnoe"
    assert "did you mean 'done'" in error.message
    assert "known states: new, waiting, paused, expired, done" in error.message
    assert error.fix


def test_unknown_key_suggests_closest(tmp_path: Path) -> None:
    path = variant(tmp_path, ("    pauses: [reply]", "    pause: [reply]"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "pause:")
    assert error.value == "pause"
    assert "valid keys: initial, final" in error.message
    assert "did you mean 'pauses'?" in (error.fix or "")


def test_unknown_alias_key_in_transition(tmp_path: Path) -> None:
    path = variant(tmp_path, ("{event: send, from: new,", "{event: send, form: new,"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "form")
    assert "from" in error.message
    assert "source" not in error.message


def test_missing_required_key(tmp_path: Path) -> None:
    path = variant(tmp_path, ("receipt: {from: office, ", "receipt: {"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "receipt: {")
    assert "missing required key 'from' in letters.receipt" in error.message
    assert error.fix == "add 'from: ...' to letters.receipt"


def test_enum_value_lists_allowed(tmp_path: Path) -> None:
    within = "      within: 10 calendar_days\n"
    path = variant(tmp_path, (within, f"{within}      at: noon\n"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "noon")
    assert error.value == "noon"
    assert "'end_of_day' or 'same_time'" in error.message


def test_invalid_duration_located(tmp_path: Path) -> None:
    path = variant(tmp_path, ("within: 10 calendar_days", "within: 10 calendar_dys"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "10 calendar_dys")
    assert "invalid duration '10 calendar_dys'" in error.message
    assert "working_days" in error.message


def test_union_reports_matching_branch(tmp_path: Path) -> None:
    path = variant(tmp_path, ("calendar: ma-public-administration", "calendar: {bse: x}"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "bse")
    assert "unknown key 'bse' in calendar" in error.message
    assert "did you mean 'base'?" in (error.fix or "")


def test_missing_template_located(tmp_path: Path) -> None:
    path = variant(tmp_path, ("template: letters/late", "template: letters/lat"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "letters/lat,")
    assert error.value == "letters/lat"
    assert "letters/lat.fr.html.j2" in error.message
    assert "create letters/lat.fr.html.j2" in (error.fix or "")


def test_template_name_with_suffix(tmp_path: Path) -> None:
    path = variant(tmp_path, ("template: letters/late", "template: letters/late.fr.html.j2"))
    error = load_error(path)
    assert (error.line, error.column) == place(path, "letters/late.fr")
    assert "letters/reminder" in (error.fix or "")


def test_misspelt_template_variable(tmp_path: Path) -> None:
    pytest.importorskip("case_workflow.notifications")
    path = variant(tmp_path, ("template: letters/receipt", "template: letters/misspelt"))
    error = load_error(path)
    assert error.file is not None
    assert error.file.endswith("misspelt.fr.html.j2")
    assert error.line == 2
    assert "dossier.refrence" in str(error)
    assert "dossier.reference" in (error.fix or "")


def test_deadline_variable_outside_deadline(tmp_path: Path) -> None:
    pytest.importorskip("case_workflow.notifications")
    path = variant(tmp_path, ("letters: [receipt]", "letters: [late]"))
    error = load_error(path)
    assert error.file is not None
    assert error.file.endswith("late.fr.html.j2")
    assert "deadline" in str(error)


def test_minimal_fixture_loads() -> None:
    workflow = load_workflow(MINIMAL)
    assert workflow.key == "minimal@1"
    assert workflow.source == MINIMAL.resolve()
    assert workflow.template_dirs[0] == FIXTURES.resolve()
    assert workflow.template_dirs[-1] == builtin_workflows_dir().resolve()


@pytest.mark.parametrize("name", ["mediator-alomrane", "boston-311"])
def test_builtin_workflows_load(name: str) -> None:
    workflow = load_builtin(name)
    assert workflow.definition.workflow == name
    assert workflow.source == (builtin_workflows_dir() / f"{name}.yaml").resolve()


def test_builtin_dir_holds_workflows() -> None:
    folder = builtin_workflows_dir()
    assert (folder / "mediator-alomrane.yaml").is_file()
    assert (folder / "letters").is_dir()


def test_unknown_builtin_lists_shipped() -> None:
    with pytest.raises(InvalidInput, match="alomrane-respondent, boston-311, mediator-alomrane"):
        load_builtin("mediator")


def test_json_schema_uses_yaml_names() -> None:
    schema = workflow_json_schema()
    definitions = schema["$defs"]
    assert isinstance(definitions, dict)
    transition = definitions["TransitionSpec"]["properties"]
    assert "from" in transition
    assert "to" in transition
    assert "source" not in transition
    reminder = definitions["Reminder"]["properties"]["before"]
    assert reminder["type"] == "string"
    assert definitions["StateSpec"]["additionalProperties"] is False
    json.dumps(schema)


def test_alias_bomb_rejected(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for previous, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidDefinition, match="expands to more than"):
        load_workflow(path)


def test_oversized_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a" * 5_000_001, encoding="utf-8")
    with pytest.raises(InvalidDefinition, match="bytes, more than"):
        load_workflow(path)
