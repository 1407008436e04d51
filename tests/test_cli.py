"""The store commands run as a user runs them: init, file, fire, show, explain, verify, sweep.

Every command runs in a subprocess on a SQLite file given with ``--db``. Messages are checked
in English, so the subprocess gets ``LANGUAGE=en`` whatever the developer's locale is.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"

MEDIATOR = ("--actor", "Agent Alaoui", "--role", "mediator_agent", "--institution", "mediator")
RESPONDENT = "al-omrane-rabat-sale-kenitra"
# Far enough after any filing date that every reminder and escalation level is due.
LONG_AFTER = "2100-01-01T00:00:00+00:00"


def run_cli(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(SOURCE), environment.get("PYTHONPATH", "")) if part
    )
    environment["LANGUAGE"] = "en"
    environment.pop("CASE_WORKFLOW_DB", None)
    result = subprocess.run(
        [sys.executable, "-m", "case_workflow.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@dataclass(frozen=True)
class Store:
    """A SQLite store holding one dossier transmitted to Al Omrane, and the outputs that made it."""

    folder: Path
    database: Path
    reference: str
    outputs: dict[str, subprocess.CompletedProcess[str]]

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*arguments, "--db", str(self.database), cwd=self.folder)


@pytest.fixture(scope="module")
def transmitted(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("cli")
    database = folder / "store.db"
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        outputs[name] = run_cli(*arguments, "--db", str(database), cwd=folder)
        return outputs[name]

    run("init", "init")
    filed = run(
        "file",
        "file",
        "mediator-alomrane",
        "--subject",
        "Titre foncier non délivré",
        "--complainant",
        "Citoyen 00042",
        "--email",
        "c42@example.org",
        "--respondent",
        RESPONDENT,
        *MEDIATOR,
    )
    reference = filed.stdout.strip()
    run("start_review", "fire", reference, "start_review", *MEDIATOR)
    run(
        "transmit",
        "fire",
        reference,
        "transmit",
        *MEDIATOR,
        "--payload",
        f'{{"respondent": "{RESPONDENT}"}}',
    )
    return Store(folder, database, reference, outputs)


@pytest.fixture
def store(transmitted: Store, tmp_path: Path) -> Iterator[Store]:
    """A private copy of the transmitted store, for tests that change it."""
    database = tmp_path / "store.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{transmitted.database}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{database}{suffix}")
    yield Store(tmp_path, database, transmitted.reference, {})


def test_init_reports_database(transmitted: Store) -> None:
    result = transmitted.outputs["init"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"database ready: {transmitted.database}"
    assert transmitted.database.is_file()


def test_init_twice_is_harmless(store: Store) -> None:
    result = store.run("init")
    assert result.returncode == 0, result.stderr
    assert store.run("show", store.reference).returncode == 0


def test_file_prints_reference(transmitted: Store) -> None:
    result = transmitted.outputs["file"]
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"MA-\d{4}-000001", transmitted.reference)
    assert result.stderr == ""


def test_fire_prints_new_state(transmitted: Store) -> None:
    review = transmitted.outputs["start_review"]
    transmit = transmitted.outputs["transmit"]
    assert review.returncode == 0, review.stderr
    assert review.stdout.strip() == f"{transmitted.reference}: under_review (version 2)"
    assert transmit.returncode == 0, transmit.stderr
    assert transmit.stdout.strip() == f"{transmitted.reference}: transmitted (version 3)"


def test_fire_event_not_allowed(store: Store) -> None:
    result = store.run("fire", store.reference, "close", *MEDIATOR, "--payload", "{}")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"event 'close' is not allowed for dossier '{store.reference}'" in lines[0]
    assert "in state 'transmitted'" in lines[0]
    assert lines[0].endswith(
        "allowed events: request_information, grant_extension, answer, escalate, withdraw"
    )
    assert result.stdout == ""


@pytest.mark.parametrize("payload", ["{not json", "[1, 2]"])
def test_fire_invalid_payload(store: Store, payload: str) -> None:
    result = store.run(
        "fire", store.reference, "request_information", *MEDIATOR, "--payload", payload
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"invalid --payload {payload!r}")
    assert "JSON object" in lines[0]
    unchanged = store.run("show", store.reference).stdout.splitlines()[0]
    assert "state transmitted  version 3" in unchanged


def test_fire_wrong_role(store: Store) -> None:
    respondent_agent = ("--actor", "Agent Bennani", "--role", "respondent_agent")
    result = store.run(
        "fire", store.reference, "escalate", *respondent_agent, "--institution", "al-omrane"
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("role 'respondent_agent' may not fire 'escalate'")


def test_show_lists_deadlines_history_letters(transmitted: Store) -> None:
    result = transmitted.run("show", transmitted.reference)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        transmitted.reference,
        "mediator-alomrane",
        "state",
        "transmitted",
        "version",
        "3",
        "escalation",
        "level",
        "0",
    ]
    deadlines = lines[lines.index("Deadlines:") + 1 : lines.index("History:")]
    assert len(deadlines) == 1
    assert deadlines[0].split()[:4] == ["answer", "running", "60", "calendar_days"]
    history = lines[lines.index("History:") + 1 : lines.index("Letters:")]
    assert [line.split()[2] for line in history] == ["file", "start_review", "transmit"]
    letters = lines[lines.index("Letters:") + 1 :]
    assert [line.split()[1:] for line in letters] == [
        ["acknowledgement", "fr"],
        ["acknowledgement", "ar"],
        ["transmission", "fr"],
        ["transmission", "ar"],
    ]


def test_show_unknown_dossier(transmitted: Store) -> None:
    result = transmitted.run("show", "MA-1999-999999")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dossier 'MA-1999-999999' not found")


def test_explain_answer_deadline(transmitted: Store) -> None:
    result = transmitted.run("explain", transmitted.reference)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Deadline 'answer' (running), started in state 'transmitted'"
    assert lines[1] == (
        "Deadline: 60 calendar days (calendar ma-public-administration, "
        "time zone Africa/Casablanca)"
    )
    assert any(line.startswith("Due: ") for line in lines)


def test_explain_unknown_language(transmitted: Store) -> None:
    result = transmitted.run("explain", transmitted.reference, "--lang", "de")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["unknown explanation language 'de'; use one of: en, fr"]


def test_verify_intact(transmitted: Store) -> None:
    result = transmitted.run("verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 dossiers, 3 events checked: chains intact"
    assert result.stderr == ""


def test_verify_detects_tampering(store: Store) -> None:
    with sqlite3.connect(store.database) as connection:
        changed = connection.execute(
            "UPDATE cw_events SET payload = ? WHERE seq = 3",
            ('{"respondent": "al-omrane-oriental"}',),
        ).rowcount
    assert changed == 1
    result = store.run("verify")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"broken: {store.reference} event 3: hash does not match the event's content"
    ]
    assert result.stdout.strip() == "1 dossiers, 3 events checked: CHAINS BROKEN"


def test_verify_one_dossier(store: Store) -> None:
    result = store.run("verify", store.reference)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 dossiers, 3 events checked: chains intact"


def test_sweep_acts_once(store: Store) -> None:
    first = store.run("sweep", "--at", LONG_AFTER)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        "sweep at 2100-01-01T00:00:00+00:00: 1 reminders, 2 escalations, 0 skipped, 3 letters"
    )
    again = store.run("sweep", "--at", LONG_AFTER)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        "sweep at 2100-01-01T00:00:00+00:00: 0 reminders, 0 escalations, 0 skipped, 0 letters"
    )
    summary = store.run("show", store.reference).stdout.splitlines()[0]
    assert "state escalated" in summary
    assert summary.endswith("escalation level 2")
    assert store.run("verify").returncode == 0


def test_sweep_before_anything_is_due(store: Store) -> None:
    result = store.run("sweep", "--at", "2000-01-01T00:00:00+00:00")
    assert result.returncode == 0, result.stderr
    assert ": 0 reminders, 0 escalations, 0 skipped, 0 letters" in result.stdout


def test_sweep_invalid_instant(store: Store) -> None:
    result = store.run("sweep", "--at", "next tuesday")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "invalid date or instant 'next tuesday'; write e.g. 2024-12-31 or 2024-12-31T18:00:00+01:00"
    ]


def test_fire_on_missing_schema(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    database.touch()
    result = run_cli(
        "fire", "MA-2024-000001", "start_review", *MEDIATOR, "--db", str(database), cwd=tmp_path
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "has no schema" in lines[0]
    assert "run 'case-workflow init'" in lines[0]


@pytest.mark.parametrize("command", [("show", "MA-2024-000001"), ("verify",)])
def test_read_on_missing_schema(tmp_path: Path, command: tuple[str, ...]) -> None:
    database = tmp_path / "empty.db"
    database.touch()
    result = run_cli(*command, "--db", str(database), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "run 'case-workflow init'" in lines[0]


def test_missing_database_file_not_created(tmp_path: Path) -> None:
    database = tmp_path / "typo.db"
    result = run_cli("list", "--db", str(database), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "not found" in lines[0]
    assert "run 'case-workflow init'" in lines[0]
    assert not database.exists()


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    result = run_cli("list", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/none", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("database error:")
    assert "Traceback" not in result.stderr


def test_sweep_at_without_offset_is_local_time(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    assert run_cli("init", "--db", str(database), cwd=tmp_path).returncode == 0
    result = run_cli("sweep", "--at", "2024-07-01T12:00:00", "--db", str(database), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Morocco was at UTC+1 on 1 July 2024.
    assert "sweep at 2024-07-01T11:00:00+00:00" in result.stdout


@pytest.mark.parametrize("moment", ["0001-01-01", "9999-12-31T23:59:59-01:00"])
def test_sweep_at_out_of_range(tmp_path: Path, moment: str) -> None:
    database = tmp_path / "store.db"
    assert run_cli("init", "--db", str(database), cwd=tmp_path).returncode == 0
    result = run_cli("sweep", "--at", moment, "--db", str(database), cwd=tmp_path)
    assert result.returncode == 2
    assert "out of range" in result.stderr
    assert "Traceback" not in result.stderr
