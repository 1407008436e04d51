"""Escalation report over 10,000 and 1,000,000 dossiers: time and peak memory of build_report.

Each run fills a store with dossiers of the shipped mediator-alomrane workflow and their
history. Then a fresh process builds the report (as of 2025-06-30), renders it in French and
reports the time of each step and the process's peak resident memory. Dossiers are filed
over the two years before that date and follow a seeded random path through the workflow:
review, inadmissible or redirected, transmitted with a 60-day answer deadline (reminder 10
days before, a formal notice when due, an escalation 21 days later), sometimes information
requested (the deadline paused), answered on time or late, closed. Every dossier gets its
events with a valid hash chain, its deadlines and their actions (done, pending or cancelled).
The rows are written with SQLAlchemy Core bulk inserts, because filing a million dossiers one
step at a time would take hours and measure nothing about the report.

Targets: a few seconds at 1,000,000 dossiers, and peak memory within 1.5 times that of the
10,000 run.

    .venv/bin/python benchmarks/report_scale.py [--small 10000] [--large 1000000]
        [--backends sqlite,postgresql]

``--fill-only URL COUNT`` fills an existing empty database, and ``--report-only URL`` runs
and prints one measurement, for profiling a store that is kept.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import peak_rss_mib, print_table, save, scratch_database
from sqlalchemy import insert

from case_workflow import Engine
from case_workflow.store.history import GENESIS_HASH, event_hash
from case_workflow.store.tables import deadline_actions, deadlines, dossiers, events

AS_OF = datetime(2025, 6, 30, 10, 0, tzinfo=UTC)
FIRST_FILING = AS_OF - timedelta(days=730)
CHUNK = 10_000
SEED = 2025
WORKFLOW = "mediator-alomrane"
RESPONDENTS = {
    "al-omrane-rabat-sale-kenitra": "rabat-sale-kenitra",
    "al-omrane-casablanca-settat": "casablanca-settat",
    "al-omrane-marrakech-safi": "marrakech-safi",
    "al-omrane-fes-meknes": "fes-meknes",
    "al-omrane-souss-massa": "souss-massa",
    "al-omrane-oriental": "oriental",
    "al-omrane-tanger-tetouan-al-hoceima": "tanger-tetouan-al-hoceima",
    "al-omrane-al-janoub": "al-janoub",
    "al-omrane-beni-mellal-khenifra": "beni-mellal-khenifra",
    "al-omrane-draa-tafilalet": "draa-tafilalet",
    "al-omrane-tamesna": "rabat-sale-kenitra",
    "al-omrane-tamansourt": "marrakech-safi",
}
RESPONDENT_CODES = tuple(RESPONDENTS)
# (actor, role, institution) of each kind of step.
MEDIATOR = ("Agent Alaoui", "mediator_agent", "mediator")
RESPONDENT = ("Agent Bennani", "respondent_agent", "al-omrane")
SYSTEM = ("sweep", "system", "mediator")


@dataclass
class Story:
    """One dossier's generated history: events, deadline and actions, before insertion."""

    number: int
    filed_at: datetime
    respondent: str
    steps: list[tuple[str, str | None, str, tuple[str, str, str], datetime]] = field(
        default_factory=list
    )
    deadline: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    closed_at: datetime | None = None
    level: int = 0

    @property
    def state(self) -> str:
        return self.steps[-1][2]

    def step(self, trigger: str, to_state: str, actor: tuple[str, str, str], at: datetime) -> bool:
        """Append a step unless it happens after AS_OF; return whether it was appended."""
        if at > AS_OF:
            return False
        self.steps.append((trigger, self.state, to_state, actor, at))
        return True


def story(number: int, total: int, chance: random.Random) -> Story:
    """Draw one dossier's path through the workflow up to AS_OF.

    Dossiers are filed in the order of their numbers, evenly over the two years, as a store
    fills in real life (ids and filing times grow together).
    """
    spacing = 730 * 86_400 / total
    offset = (number - 1) * spacing + chance.random() * spacing
    filed_at = FIRST_FILING + timedelta(seconds=offset)
    story = Story(number, filed_at, chance.choice(RESPONDENT_CODES))
    story.steps.append(("file", None, "filed", MEDIATOR, filed_at))
    review = filed_at + timedelta(days=chance.randint(1, 20), hours=chance.randint(0, 6))
    if not story.step("start_review", "under_review", MEDIATOR, review):
        return story
    decided = review + timedelta(days=chance.randint(2, 30))
    draw = chance.random()
    if draw < 0.12:
        final = "inadmissible" if draw < 0.05 else "redirected"
        if story.step(
            "declare_inadmissible" if draw < 0.05 else "redirect", final, MEDIATOR, decided
        ):
            story.closed_at = decided
        return story
    if not story.step("transmit", "transmitted", MEDIATOR, decided):
        return story
    due = decided + timedelta(days=60)
    deadline: dict[str, Any] = {
        "name": "answer",
        "state": "transmitted",
        "status": "running",
        "rule": "60 calendar_days",
        "started_at": decided,
        "due_at": due,
    }
    story.deadline = deadline
    plan = [("reminder", 1, due - timedelta(days=10)), ("escalation", 1, due)]
    plan.append(("escalation", 2, due + timedelta(days=21)))
    answer_in = chance.choice(
        [chance.randint(10, 59), chance.randint(10, 59), chance.randint(61, 140)]
    )
    answered_at = decided + timedelta(days=answer_in, hours=chance.randint(0, 8))
    if chance.random() < 0.08:
        # Documents requested from the complainant: the deadline pauses until AS_OF.
        paused = decided + timedelta(days=chance.randint(5, 40))
        if story.step("request_information", "information_requested", MEDIATOR, paused):
            deadline["status"] = "paused"
            deadline["paused_at"] = paused
            deadline["remaining"] = f"{(due - paused).days} calendar_days"
            answered_at = AS_OF + timedelta(days=1)
    if chance.random() < 0.15:
        answered_at = AS_OF + timedelta(days=1)  # never answered
    for kind, level, fire_at in plan:
        action: dict[str, Any] = {"kind": kind, "level": level, "fire_at": fire_at}
        if fire_at <= min(answered_at, AS_OF) and deadline["status"] == "running":
            action["status"] = "done"
            action["done_at"] = fire_at + timedelta(minutes=5)
            action["letter"] = {"reminder": "reminder", "escalation": "formal_notice"}[kind]
            if kind == "escalation":
                story.level = level
                if level == 2:
                    action["event"] = "escalate"
                    action["letter"] = "escalation_notice"
                    story.step("escalate", "escalated", SYSTEM, action["done_at"])
        elif answered_at <= AS_OF:
            action["status"] = "cancelled"
        else:
            action["status"] = "suspended" if deadline["status"] == "paused" else "pending"
        story.actions.append(action)
    if answered_at <= AS_OF and story.step("answer", "answered", RESPONDENT, answered_at):
        deadline["status"] = "met" if answered_at <= due else "missed"
        deadline["closed_at"] = answered_at
        closed = answered_at + timedelta(days=chance.randint(5, 60))
        if chance.random() < 0.75 and story.step("close", "closed", MEDIATOR, closed):
            story.closed_at = closed
    return story


def rows(stories: list[Story]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Turn stories into row dictionaries per table, ids assigned from the dossier numbers."""
    dossier_rows, event_rows, deadline_rows, action_rows = [], [], [], []
    for story in stories:
        reference = f"RS-{story.number:07d}"
        digest = GENESIS_HASH
        for seq, (trigger, from_state, to_state, actor, at) in enumerate(story.steps, start=1):
            previous = digest
            digest = event_hash(
                previous,
                reference=reference,
                seq=seq,
                trigger=trigger,
                from_state=from_state,
                to_state=to_state,
                actor=actor[0],
                role=actor[1],
                institution=actor[2],
                occurred_at=at,
                payload={},
            )
            event_rows.append(
                {
                    "dossier_id": story.number,
                    "seq": seq,
                    "trigger": trigger,
                    "from_state": from_state,
                    "to_state": to_state,
                    "actor": actor[0],
                    "role": actor[1],
                    "institution": actor[2],
                    "occurred_at": at,
                    "payload": {},
                    "prev_hash": previous,
                    "hash": digest,
                }
            )
        dossier_rows.append(
            {
                "id": story.number,
                "reference": reference,
                "workflow": WORKFLOW,
                "workflow_version": 1,
                "state": story.state,
                "version": len(story.steps),
                "respondent": story.respondent,
                "region": RESPONDENTS[story.respondent],
                "urgent": False,
                "escalation_level": story.level,
                "subject": "Titre foncier non délivré",
                "complainant": {"name": "bench"},
                "data": {},
                "filed_at": story.filed_at,
                "updated_at": story.steps[-1][4],
                "closed_at": story.closed_at,
                "event_count": len(story.steps),
                "last_hash": digest,
            }
        )
        if story.deadline is not None:
            deadline_rows.append(
                {
                    "paused_at": None,
                    "remaining": None,
                    "closed_at": None,
                    **story.deadline,
                    "id": story.number,
                    "dossier_id": story.number,
                    "rests_on_estimate": False,
                    "explanation": {},
                }
            )
            for action in story.actions:
                action_rows.append(
                    {
                        "done_at": None,
                        "letter": None,
                        "event": None,
                        **action,
                        "deadline_id": story.number,
                        "dossier_id": story.number,
                    }
                )
    yield "dossiers", dossier_rows
    yield "events", event_rows
    yield "deadlines", deadline_rows
    yield "actions", action_rows


TABLES = {
    "dossiers": dossiers,
    "events": events,
    "deadlines": deadlines,
    "actions": deadline_actions,
}


def fill(url: str, total: int) -> dict[str, int]:
    """Fill the empty database at ``url`` with ``total`` dossiers; return the row counts."""
    engine = Engine(url, workflows=[WORKFLOW], create_schema=True)
    chance = random.Random(SEED)
    counts = dict.fromkeys(TABLES, 0)
    for first in range(1, total + 1, CHUNK):
        numbers = range(first, min(first + CHUNK, total + 1))
        stories = [story(number, total, chance) for number in numbers]
        # One transaction per chunk keeps the SQLite WAL and PostgreSQL's memory small.
        with engine.database.begin() as connection:
            for name, table_rows in rows(stories):
                if table_rows:
                    connection.execute(insert(TABLES[name]), table_rows)
                counts[name] += len(table_rows)
    if engine.database.dialect.name == "sqlite":
        raw = engine.database.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.cursor().execute("ANALYZE")
        finally:
            raw.close()
    else:
        with engine.database.connect().execution_options(isolation_level="AUTOCOMMIT") as plain:
            plain.exec_driver_sql("VACUUM ANALYZE")
    engine.close()
    return counts


def report_once(url: str) -> dict[str, Any]:
    """Build and render the report in this process; return times and the peak memory."""
    from case_workflow.reports import build_report, render_html

    engine = Engine(url, workflows=[WORKFLOW])
    started = time.perf_counter()
    report = build_report(engine.database, as_of=AS_OF, deadline_name="answer")
    built = time.perf_counter() - started
    html = render_html(report, language="fr", respondent_names=engine.respondent_names("fr"))
    rendered = time.perf_counter() - started - built
    engine.close()
    return {
        "build_seconds": built,
        "render_seconds": rendered,
        "html_bytes": len(html),
        "open": report.open_total,
        "overdue": report.escalated_total,
        "answered": report.answered_on_time + report.answered_late,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_report(url: str) -> dict[str, Any]:
    """Run :func:`report_once` in a fresh interpreter, so its peak memory is the report's."""
    output = subprocess.run(
        [sys.executable, __file__, "--report-only", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def measure(backend: str, total: int, folder: Path) -> dict[str, Any]:
    with scratch_database(backend, folder) as url:
        started = time.perf_counter()
        counts = fill(url, total)
        filled = time.perf_counter() - started
        # The first run warms the page cache; the second one is reported.
        first = run_report(url)
        measured = run_report(url)
    measured["cold_build_seconds"] = first["build_seconds"]
    measured["fill_seconds"] = filled
    measured["rows"] = counts
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="dossiers, small store")
    parser.add_argument("--large", type=int, default=1_000_000, help="dossiers, large store")
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--fill-only", nargs=2, metavar=("URL", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--report-only", metavar="URL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.report_only:
        print(json.dumps(report_once(arguments.report_only)))
        return
    if arguments.fill_only:
        url, count = arguments.fill_only
        print(json.dumps(fill(url, int(count))))
        return
    table = []
    raw: dict[str, object] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as folder:
        for backend in arguments.backends.split(","):
            small = measure(backend, arguments.small, Path(folder))
            large = measure(backend, arguments.large, Path(folder))
            memory = large["peak_rss_mib"] / small["peak_rss_mib"]
            table.append(
                [
                    backend,
                    f"{small['build_seconds']:.2f}s",
                    f"{large['build_seconds']:.2f}s",
                    f"{large['cold_build_seconds']:.2f}s",
                    f"{large['render_seconds']:.3f}s",
                    f"{small['peak_rss_mib']:.0f} / {large['peak_rss_mib']:.0f} MiB",
                    f"{memory:.2f}",
                    "meets" if memory <= 1.5 else "MISSES",
                ]
            )
            raw[backend] = {"small": small, "large": large}
    headers = [
        "backend",
        f"build {arguments.small:,}",
        f"build {arguments.large:,}",
        "first run (cold)",
        "render fr",
        "peak RSS",
        "memory ratio",
        "target <= 1.5",
    ]
    print_table(headers, table)
    name = "report_scale-" + arguments.backends.replace(",", "-")
    print(f"results written to {save(name, {'headers': headers, 'rows': table, 'raw': raw})}")


if __name__ == "__main__":
    main()
