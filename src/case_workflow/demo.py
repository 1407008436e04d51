"""A one-year demonstration of the Mediator-Al Omrane workflow, written out as files.

:func:`run_demo` builds a fresh engine on a simulated clock, runs a simulated year of
complaints through it (see :mod:`case_workflow.simulation`) and writes the escalation report,
a sample of letters in both languages and a plain-text summary into an output folder.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from case_workflow.calendars import load_calendar, load_zone
from case_workflow.clock import SimulatedClock
from case_workflow.definition.loader import load_builtin
from case_workflow.engine import Engine
from case_workflow.errors import InvalidInput
from case_workflow.reports import build_report, write_report
from case_workflow.simulation import WORKFLOW, Figures, SimulationStats, simulate_year
from case_workflow.store.database import read_transaction
from case_workflow.store.tables import dossiers, letters, registry_counters

__all__ = ["DemoResult", "run_demo"]

log = logging.getLogger(__name__)

# Dossiers whose letters are written out: the first one found in each of these states.
SAMPLE_STATES = (
    "closed",
    "escalated",
    "recommendation_follow_up",
    "information_requested",
    "inadmissible",
    "redirected",
)


@dataclass
class DemoResult:
    """Counts of the simulated year and the files written."""

    output: Path
    url: str
    year: int
    seed: int
    dossiers: int
    states: dict[str, int]
    events: Counter[str]
    skipped: Counter[str]
    sweeps: int
    reminders: int
    escalations: int
    letters: int
    letters_by_kind: dict[str, int]
    verify_ok: bool
    verified_events: int
    paths: list[Path] = field(default_factory=list)
    # Registry series and year -> (numbers taken, distinct numbers on letters).
    registry: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)

    def summary(self) -> str:
        """Return a plain-text account of the year for printing."""
        lines = [
            f"Mediator-Al Omrane demonstration, year {self.year}, seed {self.seed}",
            f"  database: {self.url}",
            f"  dossiers filed: {self.dossiers:,}",
            "  dossiers per state at the end of the year:",
        ]
        lines += [f"    {count:6,}  {state}" for state, count in sorted(self.states.items())]
        lines.append(
            f"  sweeps: {self.sweeps:,} (one per working day): {self.reminders:,} reminders, "
            f"{self.escalations:,} escalation actions"
        )
        lines.append(f"  letters issued: {self.letters:,}")
        lines += [f"    {count:6,}  {kind}" for kind, count in sorted(self.letters_by_kind.items())]
        if self.skipped:
            skipped = ", ".join(f"{event} {count}" for event, count in sorted(self.skipped.items()))
            lines.append(f"  actor steps no longer allowed when due (skipped): {skipped}")
        for (series, year), (taken, used) in sorted(self.registry.items()):
            gaps = "no gap" if taken == used else f"{taken - used:,} MISSING"
            lines.append(
                f"  registry numbers {series} {year}: {taken:,} taken, {used:,} on letters, {gaps}"
            )
        verdict = "intact" if self.verify_ok else "BROKEN"
        lines.append(f"  history hash chains: {verdict} ({self.verified_events:,} events checked)")
        lines.append(f"  files written to {self.output}:")
        lines += [f"    {path.relative_to(self.output)}" for path in self.paths]
        return "\n".join(lines)


def run_demo(
    output: Path,
    *,
    url: str | None = None,
    seed: int = 2024,
    dossiers: int = 5700,
    year: int = 2024,
    figures: Figures | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoResult:
    """Simulate one year of dossiers and write the report, sample letters and a summary.

    Without ``url`` the store is ``output/demo.db``, deleted first so every run starts empty;
    a given ``url`` must point to an empty database. The same seed gives the same year.
    ``figures`` overrides the shares and delays that drive the simulated actors.
    ``progress`` receives a stage name, the steps done and the steps in that stage.
    """
    if dossiers < 0:
        raise InvalidInput(f"dossiers must be zero or more, got {dossiers}")
    if not 1970 <= year <= 2100:
        raise InvalidInput(f"year {year} is out of range; choose a year from 1970 to 2100")
    output.mkdir(parents=True, exist_ok=True)
    if url is None:
        database = output / "demo.db"
        for stale in (
            database,
            database.with_name("demo.db-wal"),
            database.with_name("demo.db-shm"),
        ):
            stale.unlink(missing_ok=True)
        url = f"sqlite:///{database}"
    workflow = load_builtin(WORKFLOW)
    definition = workflow.definition
    zone = load_zone(definition.timezone)
    clock = SimulatedClock(datetime(year, 1, 1, tzinfo=zone))
    engine = Engine(url, workflows=[workflow], clock=clock, create_schema=True)
    try:
        if engine.references(limit=1):
            raise InvalidInput(
                f"database {url!r} already contains dossiers; give an empty database, or no url "
                "to use a fresh SQLite file in the output folder"
            )
        stats = simulate_year(
            engine,
            clock,
            load_calendar(definition.calendar),
            zone,
            year=year,
            dossiers=dossiers,
            rng=random.Random(seed),
            figures=figures or Figures(),
            progress=progress,
        )
        result = _result(engine, output, url, year, seed, stats)
        result.paths += _write_letters(engine, output, progress)
        assert stats.end is not None
        result.paths += _write_report(engine, output, stats.end)
        summary_path = output / "summary.txt"
        result.paths.append(summary_path)
        summary_path.write_text(result.summary() + "\n", encoding="utf-8")
    finally:
        engine.close()
    log.info("demo: %d dossiers, %d letters in %s", result.dossiers, result.letters, output)
    return result


def _result(
    engine: Engine, output: Path, url: str, year: int, seed: int, stats: SimulationStats
) -> DemoResult:
    with read_transaction(engine.database) as connection:
        state_rows = connection.execute(
            select(dossiers.c.state, func.count()).group_by(dossiers.c.state)
        )
        states = {str(state): int(count) for state, count in state_rows}
        letter_rows = connection.execute(
            select(letters.c.letter, func.count()).group_by(letters.c.letter)
        )
        by_kind = {str(kind): int(count) for kind, count in letter_rows}
        registry = {}
        for series, counter_year, last in connection.execute(
            select(
                registry_counters.c.series, registry_counters.c.year, registry_counters.c.last_seq
            ).where(registry_counters.c.series.like("letters:%"))
        ):
            prefix = str(series).removeprefix("letters:")
            used = connection.execute(
                select(func.count(func.distinct(letters.c.registry_number))).where(
                    letters.c.registry_number.like(f"{prefix}/{counter_year}/%")
                )
            ).scalar_one()
            registry[(prefix, int(counter_year))] = (int(last), int(used))
    verified = engine.verify()
    return DemoResult(
        output=output,
        url=url,
        year=year,
        seed=seed,
        dossiers=stats.filed,
        states=states,
        events=stats.fired,
        skipped=stats.skipped,
        sweeps=stats.sweeps,
        reminders=stats.reminders,
        escalations=stats.escalations,
        letters=sum(by_kind.values()),
        letters_by_kind=by_kind,
        verify_ok=verified.ok,
        verified_events=verified.events,
        registry=registry,
    )


def render_letter_pdf(html: str, issued_at: datetime) -> bytes:
    """Render a letter to PDF with the delivery relay's reproducible settings (lazy import)."""
    from case_workflow.delivery.archive import render_letter_pdf as render

    return render(html, issued_at)


def _write_letters(
    engine: Engine, output: Path, progress: Callable[[str, int, int], None] | None
) -> list[Path]:
    """Write every letter of a few sample dossiers as REFERENCE-SEQ-LETTER.LANG.html.

    The first letter of each kind and language is also written as a PDF beside its HTML.
    """
    folder = output / "letters"
    folder.mkdir(exist_ok=True)
    for stale in folder.glob("*.html"):
        stale.unlink()
    samples: list[str] = []
    for state in SAMPLE_STATES:
        samples += [ref for ref in engine.references(state=state, limit=1) if ref not in samples]
    for stale in folder.glob("*.pdf"):
        stale.unlink()
    written: list[Path] = []
    in_pdf: set[str] = set()
    for done, reference in enumerate(samples, start=1):
        for letter in engine.letters(reference):
            name = f"{reference}-{letter.event_seq:02d}-{letter.letter}.{letter.language}"
            path = folder / f"{name}.html"
            path.write_text(letter.html, encoding="utf-8")
            written.append(path)
            # One PDF of each kind of letter in each language: WeasyPrint takes a second or
            # two per page, so rendering every sample would dominate the demo's run time.
            kind = f"{letter.letter}.{letter.language}"
            if kind not in in_pdf:
                in_pdf.add(kind)
                pdf = folder / f"{name}.pdf"
                pdf.write_bytes(render_letter_pdf(letter.html, letter.issued_at))
                written.append(pdf)
        if progress is not None:
            progress("letters", done, len(samples))
    return written


def _write_report(engine: Engine, output: Path, as_of: datetime) -> list[Path]:
    """Write the escalation report of the answer deadline: French HTML, CSV, JSON, Arabic HTML."""
    definition = engine.workflow(WORKFLOW).definition
    report = build_report(
        engine.database, as_of=as_of, timezone=definition.timezone, deadline_name="answer"
    )
    respondents = definition.respondents
    written: list[Path] = []
    for language, formats in (("fr", ("html", "csv", "json")), ("ar", ("html",))):
        names = {key: spec.name.get(language, key) for key, spec in respondents.items()}
        written += write_report(
            report, output, languages=(language,), formats=formats, respondent_names=names
        )
    return written
