"""Hostile and malformed input that the engine and the command line already handle correctly.

The command-line cases run ``python -m case_workflow.cli`` in a subprocess and check that a
user's mistake gives exit status 2 and a one-line message, never a Python traceback.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from case_workflow import Actor, Complainant, Engine, SimulatedClock
from case_workflow.definition.loader import builtin_workflows_dir

SOURCE = Path(__file__).resolve().parents[1] / "src"
MEDIATOR = ("--actor", "Agent Alaoui", "--role", "mediator_agent", "--institution", "mediator")
MEDIATOR_AGENT = Actor("Agent Alaoui", role="mediator_agent", institution="mediator")
RESPONDENT = "al-omrane-oriental"


def cli_environment() -> dict[str, str]:
    """Return the environment for a command-line subprocess: this checkout, English messages."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(SOURCE), environment.get("PYTHONPATH", "")) if part
    )
    environment["LANGUAGE"] = "en"
    environment.pop("CASE_WORKFLOW_DB", None)
    return environment


def run_cli(*arguments: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "case_workflow.cli", *arguments],
        capture_output=True,
        text=True,
        env=cli_environment(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def shipped_workflow_text() -> str:
    return (builtin_workflows_dir() / "mediator-alomrane.yaml").read_text(encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text, f"the shipped workflow no longer contains {old!r}"
    return text.replace(old, new, 1)


# --- Workflow files -------------------------------------------------------------------------


def _alias_bomb() -> str:
    lines = ["workflow: bomb", "version: 1", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\n"


ANSWER_LEVELS = """      reminders:
        - {before: 10 calendar_days, letter: reminder}
      escalation:
        - {after: 0 days, letter: formal_notice}
        - {after: 15 working_days, event: escalate, letter: escalation_notice}
"""

# Each case: a name, a function from the shipped workflow text to the broken text, and a phrase
# that the one-line error must contain.
BROKEN_WORKFLOWS = [
    (
        "tab indentation",
        lambda text: replace_once(text, "  under_review:\n", "\tunder_review:\n"),
        "indent with spaces",
    ),
    (
        "duplicate state key",
        lambda text: replace_once(
            text,
            "  under_review:\n",
            "  filed:\n    description: {fr: x, ar: y}\n  under_review:\n",
        ),
        "duplicate key 'filed'",
    ),
    (
        "unknown target state",
        lambda text: replace_once(text, "    to: under_review", "    to: under_revieww"),
        "did you mean 'under_review'?",
    ),
    (
        "missing template",
        lambda text: replace_once(text, "template: letters/closure", "template: letters/closur"),
        "template file 'letters/closur.fr.html.j2' not found",
    ),
    (
        "unreachable state",
        lambda text: replace_once(
            text,
            "  under_review:\n",
            "  orphan:\n    description: {fr: x, ar: y}\n  under_review:\n",
        ),
        "unreachable state(s) orphan",
    ),
    (
        "deadline without reminder or escalation",
        lambda text: replace_once(text, ANSWER_LEVELS, ""),
        "deadline 'answer' of state 'transmitted' has no action path",
    ),
    ("empty file", lambda text: "", "the workflow file is empty"),
    ("alias bomb", lambda text: _alias_bomb(), "expands to more than"),
]


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [pytest.param(edit, phrase, id=name) for name, edit, phrase in BROKEN_WORKFLOWS],
)
def test_validate_rejects_broken_workflow(
    tmp_path: Path, edit: Callable[[str], str], phrase: str
) -> None:
    workflow = tmp_path / "broken.yaml"
    workflow.write_text(edit(shipped_workflow_text()), encoding="utf-8")

    started = time.monotonic()
    result = run_cli("validate", str(workflow), cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - started

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert phrase in output
    assert output.strip().startswith(str(workflow)), output
    assert len(output.strip().splitlines()) == 1, output
    assert elapsed < 30, f"validate took {elapsed:.1f} s"


def test_validate_rejects_binary_file(tmp_path: Path) -> None:
    workflow = tmp_path / "binary.yaml"
    workflow.write_bytes(b"\x00\x01\xff\xfe binary")

    result = run_cli("validate", str(workflow), cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert "not valid UTF-8" in output


def test_validate_rejects_oversized_file(tmp_path: Path) -> None:
    workflow = tmp_path / "huge.yaml"
    padding = ("# " + "x" * 98 + "\n") * 60_000
    workflow.write_text(shipped_workflow_text() + padding, encoding="utf-8")

    result = run_cli("validate", str(workflow), cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert "more than the 5,000,000 allowed" in output


@pytest.mark.parametrize(
    ("original", "misspelt", "phrase"),
    [
        ("dossier.subject|isolate", "dossier.subjet|isolate", "unknown attribute dossier.subjet"),
        (
            "{% if event.comment %}",
            "{{ complainant_nme }}{% if event.comment %}",
            "unknown variable 'complainant_nme'",
        ),
        (
            "{% if event.comment %}",
            "{{ event.outcom }}{% if event.comment %}",
            "unknown attribute event.outcom",
        ),
    ],
)
def test_validate_rejects_misspelt_template_name(
    tmp_path: Path, original: str, misspelt: str, phrase: str
) -> None:
    (tmp_path / "wf.yaml").write_text(shipped_workflow_text(), encoding="utf-8")
    shipped_template = builtin_workflows_dir() / "letters" / "closure.fr.html.j2"
    template = tmp_path / "letters" / "closure.fr.html.j2"
    template.parent.mkdir()
    template.write_text(
        replace_once(shipped_template.read_text(encoding="utf-8"), original, misspelt),
        encoding="utf-8",
    )

    result = run_cli("validate", str(tmp_path / "wf.yaml"), cwd=tmp_path)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert phrase in output
    assert output.startswith(str(template)), output


# --- Command-line input ---------------------------------------------------------------------


@pytest.fixture
def reviewed_dossier(tmp_path: Path) -> tuple[Path, str]:
    """A SQLite file with one dossier under review, filed through the command line."""
    database = tmp_path / "store.db"
    assert run_cli("init", "--db", str(database), cwd=tmp_path).returncode == 0
    filed = run_cli(
        "file",
        "mediator-alomrane",
        "--db",
        str(database),
        *MEDIATOR,
        "--complainant",
        "Citoyen 1",
        "--subject",
        "Titre foncier",
        cwd=tmp_path,
    )
    assert filed.returncode == 0, filed.stderr
    reference = filed.stdout.strip()
    reviewed = run_cli(
        "fire", reference, "start_review", "--db", str(database), *MEDIATOR, cwd=tmp_path
    )
    assert reviewed.returncode == 0, reviewed.stderr
    return database, reference


@pytest.mark.parametrize(
    ("payload", "phrase"),
    [
        ("not json", "invalid --payload 'not json'"),
        ("[1, 2]", "give a JSON object, not list"),
        ('"text"', "give a JSON object, not str"),
        ("{}", "missing payload field(s) respondent"),
    ],
)
def test_fire_rejects_bad_payload(
    reviewed_dossier: tuple[Path, str], payload: str, phrase: str
) -> None:
    database, reference = reviewed_dossier

    result = run_cli(
        "fire",
        reference,
        "transmit",
        "--db",
        str(database),
        *MEDIATOR,
        "--payload",
        payload,
        cwd=database.parent,
    )

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert phrase in result.stderr
    history_output = run_cli("show", reference, "--db", str(database), cwd=database.parent)
    assert "state under_review  version 2" in history_output.stdout


@pytest.mark.parametrize("instant", ["2023-02-29", "2024-13-01", "tomorrow", "", "10000-01-01"])
def test_sweep_rejects_invalid_instant(reviewed_dossier: tuple[Path, str], instant: str) -> None:
    database, _ = reviewed_dossier

    result = run_cli("sweep", "--db", str(database), "--at", instant, cwd=database.parent)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"invalid date or instant {instant!r}" in result.stderr


def test_file_rejects_duplicate_reference(reviewed_dossier: tuple[Path, str]) -> None:
    database, reference = reviewed_dossier

    result = run_cli(
        "file",
        "mediator-alomrane",
        "--db",
        str(database),
        *MEDIATOR,
        "--reference",
        reference,
        "--complainant",
        "Someone else",
        "--subject",
        "s",
        cwd=database.parent,
    )

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"dossier {reference!r} already exists" in result.stderr


def test_fire_rejects_wrong_institution(reviewed_dossier: tuple[Path, str]) -> None:
    database, reference = reviewed_dossier

    result = run_cli(
        "fire",
        reference,
        "declare_inadmissible",
        "--db",
        str(database),
        "--actor",
        "Agent",
        "--role",
        "mediator_agent",
        "--institution",
        "al-omrane",
        "--payload",
        '{"reason": "r"}',
        cwd=database.parent,
    )

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "may not fire 'declare_inadmissible'" in result.stderr


def test_conflicting_fires_apply_once(reviewed_dossier: tuple[Path, str]) -> None:
    database, reference = reviewed_dossier
    environment = cli_environment()
    events = ["declare_inadmissible", "redirect"] * 3
    payloads = {"declare_inadmissible": '{"reason": "r"}', "redirect": '{"redirected_to": "x"}'}

    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "case_workflow.cli",
                "fire",
                reference,
                name,
                "--db",
                str(database),
                *MEDIATOR,
                "--payload",
                payloads[name],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for name in events
    ]
    results = [(process.wait(timeout=120), *process.communicate()) for process in processes]

    succeeded = [stdout for status, stdout, _ in results if status == 0]
    rejected = [stderr for status, _, stderr in results if status != 0]
    assert len(succeeded) == 1, results
    assert len(rejected) == len(events) - 1
    for stderr in rejected:
        assert "Traceback" not in stderr
        assert "is not allowed for dossier" in stderr
    history = run_cli("show", reference, "--db", str(database), cwd=database.parent).stdout
    assert history.count("under_review -> ") == 1
    verified = run_cli("verify", "--db", str(database), cwd=database.parent)
    assert verified.returncode == 0, verified.stdout


# --- Due dates across Morocco's clock changes ------------------------------------------------


@pytest.mark.parametrize(
    ("transmitted_at", "urgent", "due_at"),
    [
        # 00:30 on 10 March in Morocco (UTC+1), before the Ramadan change to UTC+0 at 03:00 that night.
        (
            datetime(2024, 3, 9, 23, 30, tzinfo=UTC),
            False,
            datetime(2024, 5, 9, 22, 59, 59, tzinfo=UTC),
        ),
        (
            datetime(2024, 3, 9, 22, 30, tzinfo=UTC),
            False,
            datetime(2024, 5, 8, 22, 59, 59, tzinfo=UTC),
        ),
        # Africa/Casablanca moves to permanent UTC+0 on 2026-09-20 (tzdata 2026c and later).
        (
            datetime(2026, 9, 19, 23, 30, tzinfo=UTC),
            False,
            datetime(2026, 11, 19, 23, 59, 59, tzinfo=UTC),
        ),
        (
            datetime(2026, 7, 22, 10, 0, tzinfo=UTC),
            False,
            datetime(2026, 9, 20, 23, 59, 59, tzinfo=UTC),
        ),
        (
            datetime(2024, 2, 29, 10, 0, tzinfo=UTC),
            False,
            datetime(2024, 4, 29, 22, 59, 59, tzinfo=UTC),
        ),
        (
            datetime(2024, 1, 30, 10, 0, tzinfo=UTC),
            True,
            datetime(2024, 2, 29, 22, 59, 59, tzinfo=UTC),
        ),
        (
            datetime(1969, 12, 31, 23, 30, tzinfo=UTC),
            False,
            datetime(1970, 3, 1, 23, 59, 59, tzinfo=UTC),
        ),
        (
            datetime(2101, 1, 1, 0, 0, tzinfo=UTC),
            False,
            datetime(2101, 3, 2, 23, 59, 59, tzinfo=UTC),
        ),
    ],
)
def test_answer_due_date_across_clock_changes(
    database_url: str, transmitted_at: datetime, urgent: bool, due_at: datetime
) -> None:
    with Engine(database_url, clock=SimulatedClock(transmitted_at), create_schema=True) as engine:
        dossier = engine.file(
            "mediator-alomrane",
            actor=MEDIATOR_AGENT,
            complainant=Complainant("Citoyen"),
            subject="s",
            respondent=RESPONDENT,
            urgent=urgent,
        )
        engine.fire(dossier.reference, "start_review", actor=MEDIATOR_AGENT)
        engine.fire(
            dossier.reference, "transmit", actor=MEDIATOR_AGENT, payload={"respondent": RESPONDENT}
        )

        answer = engine.deadlines(dossier.reference)[0]

        assert answer.due_at == due_at


# --- Hostile text in letters -----------------------------------------------------------------


def test_letters_escape_hostile_complainant(database_url: str) -> None:
    clock = SimulatedClock(datetime(2024, 1, 15, 8, 0, tzinfo=UTC))
    with Engine(database_url, clock=clock, create_schema=True) as engine:
        dossier = engine.file(
            "mediator-alomrane",
            actor=MEDIATOR_AGENT,
            complainant=Complainant('<script>alert(1)</script> & "q" \u202eevil'),
            subject="{{ 7*7 }} {% raw %}x{% endraw %} {{ config }}",
        )

        letters = engine.letters(dossier.reference)

    assert {letter.language for letter in letters} == {"fr", "ar"}
    for letter in letters:
        assert "<script>" not in letter.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in letter.html
        assert "{{ 7*7 }}" in letter.html
        assert "49" not in letter.html.split("<body", 1)[1]
        assert "{% raw %}x{% endraw %}" in letter.html
        # The unclosed right-to-left override is closed (U+202C) inside a first-strong isolate
        # (U+2068 ... U+2069), so it cannot reverse the text after the name.
        isolated = (
            "\u2068&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;q&#34; \u202eevil\u202c\u2069"
        )
        assert isolated in letter.html


# --- A sweep killed with SIGKILL ------------------------------------------------------------


def test_killed_sweep_rerun_acts_once(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    count = 600
    clock = SimulatedClock(datetime(2024, 1, 15, 8, 0, tzinfo=UTC))
    with Engine(f"sqlite:///{database}", clock=clock, create_schema=True) as engine:
        for index in range(count):
            dossier = engine.file(
                "mediator-alomrane",
                actor=MEDIATOR_AGENT,
                complainant=Complainant(f"Citoyen {index}"),
                subject="s",
                respondent=RESPONDENT,
            )
            engine.fire(dossier.reference, "start_review", actor=MEDIATOR_AGENT)
            engine.fire(
                dossier.reference,
                "transmit",
                actor=MEDIATOR_AGENT,
                payload={"respondent": RESPONDENT},
            )
    environment = cli_environment()
    sweep = [
        sys.executable,
        "-m",
        "case_workflow.cli",
        "sweep",
        "--db",
        str(database),
        "--at",
        "2024-04-01T00:00:00+00:00",
    ]

    # Wherever the kill lands (before, during or after the batches), the rerun must finish
    # the work without repeating any action.
    killed = subprocess.Popen(
        sweep, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(2.5)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    rerun = run_cli(*sweep[3:], cwd=tmp_path)
    again = run_cli(*sweep[3:], cwd=tmp_path)

    assert rerun.returncode == 0, rerun.stderr
    assert "0 reminders, 0 escalations" in again.stdout
    with sqlite3.connect(database) as connection:
        per_letter = dict(
            connection.execute("SELECT letter, count(*) FROM cw_letters GROUP BY letter")
        )
        duplicates = connection.execute(
            "SELECT count(*) FROM (SELECT dossier_id, letter, language FROM cw_letters "
            "GROUP BY dossier_id, letter, language HAVING count(*) > 1)"
        ).fetchone()[0]
    assert duplicates == 0
    # One French and one Arabic version of each letter for each dossier.
    for letter in ("acknowledgement", "transmission", "reminder", "formal_notice"):
        assert per_letter[letter] == 2 * count, per_letter
    verified = run_cli("verify", "--db", str(database), cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout
