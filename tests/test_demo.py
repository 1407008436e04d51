"""A small simulated year on SQLite: files written, sweeps at work, letters issued once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from case_workflow import Engine, InvalidInput
from case_workflow.demo import DemoResult, run_demo
from case_workflow.simulation import Figures
from case_workflow.store.database import read_transaction
from case_workflow.store.tables import events, letters

SWEEP_LETTERS = ("reminder", "formal_notice", "escalation_notice")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    # One name in five looks like markup or template code.
    figures = Figures(tricky_name_share=0.2)
    return run_demo(tmp_path_factory.mktemp("demo"), dossiers=150, seed=7, figures=figures)


@pytest.fixture(scope="module")
def store(demo: DemoResult) -> Iterator[Engine]:
    with Engine(demo.url, workflows=["mediator-alomrane"]) as engine:
        yield engine


def test_demo_counts(demo: DemoResult) -> None:
    assert demo.dossiers == 150
    assert sum(demo.states.values()) == 150
    assert demo.states.get("closed", 0) > 0
    assert demo.letters == sum(demo.letters_by_kind.values())
    assert demo.sweeps >= 240


def test_demo_verify_passes(demo: DemoResult, store: Engine) -> None:
    assert demo.verify_ok
    checked = store.verify()
    assert checked.ok
    assert checked.dossiers == 150


def test_demo_sweeps_remind_and_escalate(demo: DemoResult, store: Engine) -> None:
    assert demo.reminders > 0
    assert demo.escalations > 0
    assert demo.states.get("escalated", 0) + demo.events["issue_recommendation"] > 0
    with read_transaction(store.database) as connection:
        roles = {
            (trigger, role)
            for trigger, role in connection.execute(
                select(events.c.trigger, events.c.role)
                .where(events.c.trigger.in_(["reminder", "escalation", "escalate"]))
                .distinct()
            )
        }
    assert roles == {("reminder", "system"), ("escalation", "system"), ("escalate", "system")}


def test_demo_sweep_letters_follow_sweep_events(store: Engine) -> None:
    query = (
        select(letters.c.letter, events.c.role)
        .join(events, events.c.id == letters.c.event_id)
        .where(letters.c.letter.in_(SWEEP_LETTERS))
        .distinct()
    )
    with read_transaction(store.database) as connection:
        pairs = set(connection.execute(query).tuples())
    assert pairs == {(letter, "system") for letter in SWEEP_LETTERS}


def test_demo_letters_issued_once(store: Engine) -> None:
    key = (letters.c.dossier_id, letters.c.event_id, letters.c.letter, letters.c.language)
    duplicates = select(*key).group_by(*key).having(func.count() > 1)
    escalations_twice = (
        select(letters.c.dossier_id)
        .where(letters.c.letter == "escalation_notice")
        .group_by(letters.c.dossier_id, letters.c.language)
        .having(func.count() > 1)
    )
    with read_transaction(store.database) as connection:
        assert connection.execute(duplicates).all() == []
        assert connection.execute(escalations_twice).all() == []


def test_demo_letters_in_both_languages(store: Engine) -> None:
    with read_transaction(store.database) as connection:
        rows = connection.execute(
            select(letters.c.language, func.count()).group_by(letters.c.language)
        )
        counts = {str(language): int(count) for language, count in rows}
    assert set(counts) == {"fr", "ar"}
    assert counts["fr"] == counts["ar"]


def test_demo_sample_letter_files(demo: DemoResult, store: Engine) -> None:
    files = sorted((demo.output / "letters").glob("*.html"))
    assert files
    assert set(files) <= set(demo.paths)
    # MA-2024-000001-01-acknowledgement.fr.html: the reference is the first three parts.
    references = {"-".join(path.name.split("-")[:3]) for path in files}
    assert len(references) >= 4
    for reference in references:
        for letter in store.letters(reference):
            name = f"{reference}-{letter.event_seq:02d}-{letter.letter}.{letter.language}.html"
            path = demo.output / "letters" / name
            assert path.read_text(encoding="utf-8") == letter.html


def test_demo_markup_in_names_is_text(store: Engine) -> None:
    names = {ref: store.get(ref).complainant.name for ref in store.references(limit=1000)}
    tricky = {ref: name for ref, name in names.items() if "<" in name or "{" in name}
    assert any("<" in name for name in tricky.values())
    assert any("{{" in name for name in tricky.values())
    for reference, name in tricky.items():
        issued = store.letters(reference)
        assert any(str(escape(name)) in letter.html for letter in issued), reference
        if "<" in name:
            assert all(name not in letter.html for letter in issued), reference


def test_demo_summary_file(demo: DemoResult) -> None:
    text = (demo.output / "summary.txt").read_text(encoding="utf-8")
    assert text == demo.summary() + "\n"
    assert "dossiers filed: 150" in text


def test_demo_report_files(demo: DemoResult) -> None:
    # 31 December 2024 23:59:59 in Casablanca (UTC+1) is 22:59:59 UTC.
    stem = "escalation-report-20241231T225959Z"
    for suffix in (".fr.html", ".ar.html", ".csv", ".json"):
        path = demo.output / f"{stem}{suffix}"
        assert path in demo.paths, suffix
        assert path.stat().st_size > 0, suffix
    report = json.loads((demo.output / f"{stem}.json").read_text(encoding="utf-8"))
    assert report["deadline_name"] == "answer"
    assert report["answered_on_time"] + report["answered_late"] > 0


def test_demo_same_seed_same_year(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "first", dossiers=40, seed=11)
    second = run_demo(tmp_path / "second", dossiers=40, seed=11)
    assert first.states == second.states
    assert first.letters_by_kind == second.letters_by_kind
    assert first.reminders == second.reminders


def test_demo_rerun_starts_fresh(tmp_path: Path) -> None:
    run_demo(tmp_path, dossiers=10, seed=3)
    again = run_demo(tmp_path, dossiers=10, seed=3)
    assert again.dossiers == 10
    assert sum(again.states.values()) == 10


def test_demo_negative_count_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="dossiers must be zero or more"):
        run_demo(tmp_path, dossiers=-1)


def test_demo_rejects_used_database(demo: DemoResult, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="already contains dossiers"):
        run_demo(tmp_path, url=demo.url, dossiers=5)


def test_demo_letter_pdfs_in_both_languages(demo: DemoResult) -> None:
    pdfs = [path for path in demo.paths if path.suffix == ".pdf"]
    assert any(path.name.endswith(".fr.pdf") for path in pdfs)
    assert any(path.name.endswith(".ar.pdf") for path in pdfs)
    for path in pdfs:
        assert path.read_bytes().startswith(b"%PDF-")


def test_demo_registry_numbers_have_no_gap(demo: DemoResult) -> None:
    assert demo.registry
    for (series, year), (taken, used) in demo.registry.items():
        assert series == "IMR"
        assert year == demo.year
        assert used == taken
    assert "no gap" in demo.summary()
