"""Sweep cost against the number of open dossiers: 10,000 versus 1,000,000, same due actions.

Each run builds a store where every dossier is open with one pending escalation action, of
which exactly ``--due`` are due; then a fresh process runs one sweep and reports its time and
peak resident memory. The store is filled with SQLAlchemy Core in bulk (each dossier with a
valid creation event and hash chain), because filing a million dossiers one step at a time
would take hours and measure nothing about the sweep. Target: the large sweep takes at most
twice as long as the small one, and memory does not grow with the number of dossiers.

    .venv/bin/python benchmarks/sweep_scale.py [--small 10000] [--large 1000000] [--due 10000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import peak_rss_mib, print_table, save, scratch_database
from sqlalchemy import insert

from case_workflow import Engine, load_workflow
from case_workflow.store.history import GENESIS_HASH, event_hash
from case_workflow.store.tables import deadline_actions, deadlines, dossiers, events

WORKFLOW = Path(__file__).parent / "workflows" / "sweep-bench.yaml"
STARTED = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
DUE_AT = STARTED + timedelta(days=30)
SWEEP_AT = DUE_AT + timedelta(days=1)
CHUNK = 20_000


def fill(url: str, total: int, due: int) -> None:
    """Create ``total`` open dossiers, the first ``due`` of them with a due escalation."""
    engine = Engine(url, workflows=[load_workflow(WORKFLOW)], create_schema=True)
    with engine.database.begin() as connection:
        for first in range(1, total + 1, CHUNK):
            ids = range(first, min(first + CHUNK, total + 1))
            dossier_rows, event_rows, deadline_rows, action_rows = [], [], [], []
            for number in ids:
                reference = f"SB-{number:07d}"
                digest = event_hash(
                    GENESIS_HASH,
                    reference=reference,
                    seq=1,
                    trigger="file",
                    from_state=None,
                    to_state="open",
                    actor="bench",
                    role="clerk",
                    institution="office",
                    occurred_at=STARTED,
                    payload={},
                )
                dossier_rows.append(
                    {
                        "id": number,
                        "reference": reference,
                        "workflow": "sweep-bench",
                        "workflow_version": 1,
                        "state": "open",
                        "version": 1,
                        "urgent": False,
                        "escalation_level": 0,
                        "subject": "bench",
                        "complainant": {"name": "bench"},
                        "data": {},
                        "filed_at": STARTED,
                        "updated_at": STARTED,
                        "event_count": 1,
                        "last_hash": digest,
                    }
                )
                event_rows.append(
                    {
                        "dossier_id": number,
                        "seq": 1,
                        "trigger": "file",
                        "from_state": None,
                        "to_state": "open",
                        "actor": "bench",
                        "role": "clerk",
                        "institution": "office",
                        "occurred_at": STARTED,
                        "payload": {},
                        "prev_hash": GENESIS_HASH,
                        "hash": digest,
                    }
                )
                deadline_rows.append(
                    {
                        "id": number,
                        "dossier_id": number,
                        "name": "answer",
                        "state": "open",
                        "status": "running",
                        "rule": "30 calendar_days",
                        "started_at": STARTED,
                        "due_at": DUE_AT if number <= due else DUE_AT + timedelta(days=365),
                        "rests_on_estimate": False,
                        "explanation": {},
                    }
                )
                fire_at = DUE_AT if number <= due else DUE_AT + timedelta(days=365)
                action_rows.append(
                    {
                        "deadline_id": number,
                        "dossier_id": number,
                        "kind": "escalation",
                        "level": 1,
                        "fire_at": fire_at + timedelta(seconds=1),
                        "status": "pending",
                    }
                )
            connection.execute(insert(dossiers), dossier_rows)
            connection.execute(insert(events), event_rows)
            connection.execute(insert(deadlines), deadline_rows)
            connection.execute(insert(deadline_actions), action_rows)
    if engine.database.dialect.name == "sqlite":
        # Fold the fill into the database file so the sweep does not start by reading a WAL.
        raw = engine.database.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    else:
        with engine.database.connect().execution_options(isolation_level="AUTOCOMMIT") as plain:
            plain.exec_driver_sql("VACUUM ANALYZE")
    engine.close()


def sweep_once(url: str) -> dict[str, float]:
    """Run one sweep in this process and return its duration and the peak resident memory."""
    engine = Engine(url, workflows=[load_workflow(WORKFLOW)])
    started = time.perf_counter()
    result = engine.sweep(SWEEP_AT)
    seconds = time.perf_counter() - started
    engine.close()
    return {"seconds": seconds, "actions": result.actions, "peak_rss_mib": peak_rss_mib()}


def measure(backend: str, total: int, due: int, folder: Path) -> dict[str, float]:
    with scratch_database(backend, folder) as url:
        started = time.perf_counter()
        fill(url, total, due)
        filled = time.perf_counter() - started
        output = subprocess.run(
            [sys.executable, __file__, "--sweep-only", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    measured: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    measured["fill_seconds"] = filled
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000, help="open dossiers, small store")
    parser.add_argument("--large", type=int, default=1_000_000, help="open dossiers, large store")
    parser.add_argument("--due", type=int, default=10_000, help="due actions in both stores")
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--sweep-only", metavar="URL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.sweep_only:
        print(json.dumps(sweep_once(arguments.sweep_only)))
        return
    rows = []
    raw: dict[str, object] = {}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as folder:
        for backend in arguments.backends.split(","):
            small = measure(backend, arguments.small, arguments.due, Path(folder))
            large = measure(backend, arguments.large, arguments.due, Path(folder))
            ratio = large["seconds"] / small["seconds"]
            memory = large["peak_rss_mib"] / small["peak_rss_mib"]
            assert small["actions"] == large["actions"] == arguments.due
            rows.append(
                [
                    backend,
                    f"{small['seconds']:.2f}s / {large['seconds']:.2f}s",
                    f"{ratio:.2f}",
                    "meets" if ratio <= 2 else "MISSES",
                    f"{small['peak_rss_mib']:.0f} / {large['peak_rss_mib']:.0f} MiB",
                    f"{memory:.2f}",
                ]
            )
            raw[backend] = {"small": small, "large": large}
    headers = [
        "backend",
        f"sweep {arguments.small:,} / {arguments.large:,} open",
        "time ratio",
        "target <= 2",
        "peak RSS",
        "memory ratio",
    ]
    print_table(headers, rows)
    print(
        f"results written to {save('sweep_scale', {'headers': headers, 'rows': rows, 'raw': raw})}"
    )


if __name__ == "__main__":
    main()
