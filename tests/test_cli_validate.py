"""``case-workflow validate`` and ``schema`` run as a user runs them: one line per error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflow_files import FIXTURES, variant

SOURCE = Path(__file__).resolve().parents[1] / "src"
WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    # The source tree comes first, so the test runs the checkout whether or not it is installed.
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(SOURCE), environment.get("PYTHONPATH", "")) if part
    )
    return subprocess.run(
        [sys.executable, "-m", "case_workflow.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        ("mediator-alomrane", "11 states, 13 transitions, 12 letters x 2 languages"),
        ("boston-311", "4 states, 3 transitions, 2 letters x 1 language"),
    ],
)
def test_validate_shipped_workflow(name: str, summary: str) -> None:
    path = WORKFLOWS / f"{name}.yaml"
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"{path}: valid (workflow {name} version 1, {summary})")
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("fixture", "place"),
    [
        ("tab_indentation.yaml", "4:1"),
        ("bad_indentation.yaml", "6:4"),
        ("duplicate_key.yaml", "6:3"),
    ],
)
def test_validate_malformed_file(fixture: str, place: str) -> None:
    path = FIXTURES / fixture
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:{place}: ")
    assert "fix:" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_validate_model_error(tmp_path: Path) -> None:
    path = variant(tmp_path, ("    pauses: [reply]", "    pause: [reply]"))
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:25:5: unknown key 'pause'")
    assert "Traceback" not in result.stderr


def test_validate_template_error(tmp_path: Path) -> None:
    path = variant(tmp_path, ("template: letters/receipt", "template: letters/misspelt"))
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "misspelt.fr.html.j2:2:" in lines[0]
    assert "dossier.refrence" in lines[0]


def test_validate_missing_file(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    expected = f"{tmp_path / 'absent.yaml'}: workflow file not found; fix: check the path"
    assert result.stderr.splitlines() == [f"{expected} and the file name"]


def test_schema_prints_json() -> None:
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["title"] == "WorkflowDefinition"
    assert "from" in schema["$defs"]["TransitionSpec"]["properties"]


def test_package_import_skips_cli_stack() -> None:
    environment = dict(os.environ, PYTHONPATH=str(SOURCE))
    code = (
        "import sys, case_workflow; "
        "print('typer' in sys.modules, 'case_workflow.cli' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_escaped_validation_error_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    typer = pytest.importorskip("typer")
    from case_workflow.cli import reported_errors
    from case_workflow.definition.model import WorkflowDefinition

    with pytest.raises(typer.Exit) as caught, reported_errors():
        WorkflowDefinition.model_validate({"workflow": "x"})
    assert caught.value.exit_code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("invalid input at version: ")


def test_escaped_yaml_error_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    typer = pytest.importorskip("typer")
    import yaml

    from case_workflow.cli import reported_errors

    with pytest.raises(typer.Exit) as caught, reported_errors():
        yaml.safe_load("a: [1\nb: 2\n")
    assert caught.value.exit_code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("invalid YAML: ")
