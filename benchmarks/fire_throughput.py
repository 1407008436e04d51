"""Persisted fire() throughput as a ratio of the raw SQLAlchemy Core ceiling, in one run.

The ceiling is what DESIGN calls the raw step: one transaction with the UPDATE that checks
the dossier's version and the INSERT of its event, through SQLAlchemy Core with statements
built once, on the same tables. ``Engine.fire()`` adds reading the dossier, asking the
compiled state machine, hashing the event and closing or opening deadlines (none here: the
``ping`` workflow has no deadline and no letter). Target: ratio >= 0.5.

    .venv/bin/python benchmarks/fire_throughput.py [--steps 3000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import print_table, save, scratch_database
from sqlalchemy import bindparam, insert, select, update

from case_workflow import Actor, Complainant, Engine, load_workflow
from case_workflow.store.tables import dossiers, events

WORKFLOW = Path(__file__).parent / "workflows" / "ping.yaml"
CLERK = Actor("bench clerk", "clerk", "office")
# Raw steps write their events far above the engine's sequence numbers so both can share rows.
RAW_SEQ = itertools.count(1_000_000)


def _file_dossiers(engine: Engine, count: int) -> list[str]:
    return [
        engine.file(
            "ping", actor=CLERK, complainant=Complainant("Bench"), subject="bench"
        ).reference
        for _ in range(count)
    ]


def measure_engine(engine: Engine, references: list[str], steps: int) -> float:
    following = {"ping": "pong", "pong": "ping"}
    next_event = {
        reference: "ping" if engine.get(reference).state == "idle" else "pong"
        for reference in references
    }
    started = time.perf_counter()
    for index in range(steps):
        reference = references[index % len(references)]
        event = next_event[reference]
        engine.fire(reference, event, actor=CLERK)
        next_event[reference] = following[event]
    return steps / (time.perf_counter() - started)


def measure_raw(engine: Engine, references: list[str], steps: int) -> float:
    database = engine.database
    with database.connect() as connection:
        rows = connection.execute(
            select(dossiers.c.id, dossiers.c.version, dossiers.c.event_count).where(
                dossiers.c.reference.in_(references)
            )
        ).all()
    state = {row.id: [row.version, row.event_count] for row in rows}
    ids = list(state)
    update_statement = (
        update(dossiers)
        .where(dossiers.c.id == bindparam("b_id"))
        .where(dossiers.c.version == bindparam("b_version"))
        .values(state=bindparam("b_state"), version=bindparam("b_new"))
    )
    insert_statement = insert(events)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for index in range(steps):
        dossier_id = ids[index % len(ids)]
        version, seq = state[dossier_id]
        digest = hashlib.sha256(f"{dossier_id}:{seq + 1}".encode()).hexdigest()
        with database.begin() as connection:
            result = connection.execute(
                update_statement,
                {"b_id": dossier_id, "b_version": version, "b_state": "busy", "b_new": version + 1},
            )
            assert result.rowcount == 1
            connection.execute(
                insert_statement,
                {
                    "dossier_id": dossier_id,
                    "seq": next(RAW_SEQ),
                    "trigger": "ping",
                    "from_state": "idle",
                    "to_state": "busy",
                    "actor": "bench",
                    "role": "clerk",
                    "institution": "office",
                    "occurred_at": now,
                    "payload": {},
                    "prev_hash": digest,
                    "hash": digest,
                },
            )
        state[dossier_id] = [version + 1, seq + 1]
    return steps / (time.perf_counter() - started)


def run(backend: str, steps: int, folder: Path) -> list[object]:
    with scratch_database(backend, folder) as url:
        workflow = load_workflow(WORKFLOW)
        with Engine(url, workflows=[workflow], create_schema=True) as engine:
            references = _file_dossiers(engine, 200)
            # Warm both paths once so connection pools and statement caches are filled.
            measure_engine(engine, references, 200)
            raw = measure_raw(engine, references[:100], steps)
            fired = measure_engine(engine, references[100:], steps)
            raw_again = measure_raw(engine, references[:100], steps)
    ceiling = (raw + raw_again) / 2
    ratio = fired / ceiling
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    return [backend, steps, f"{ceiling:,.0f}", f"{fired:,.0f}", f"{ratio:.2f}", verdict]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="steps per measurement")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    arguments = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in arguments.backends.split(","):
            rows.append(run(backend, arguments.steps, Path(folder)))
    headers = ["backend", "steps", "raw Core steps/s", "fire() steps/s", "ratio", "target 0.5"]
    print_table(headers, rows)
    path = save("fire_throughput", {"headers": headers, "rows": rows})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
