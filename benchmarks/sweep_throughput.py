"""Sweep throughput: due actions acted on per second, on SQLite and on PostgreSQL.

Each run builds a fresh store of ``--dossiers`` dossiers transmitted to Al Omrane, all three
of whose actions (reminder, formal notice, escalation to the ``escalated`` state) are due, and
then times one sweep from the moment the sweep processes are released from a barrier until the
last one reports. The stores are bulk-filled with the rows the engine itself writes (see
``tests/test_sweep_processes.py``). Runs:

- SQLite and PostgreSQL, one sweep process, flag-only actions (no letter) and actions with
  their letter (rendered in French and Arabic);
- PostgreSQL with 1, 2 and 4 sweep processes on flag-only actions, reported as the ratio of
  their throughput to the single-process run of the same invocation.

    .venv/bin/python benchmarks/sweep_throughput.py [--dossiers 1000] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import print_table, save, scratch_database
from tests.test_sweep import file_and_transmit
from tests.test_sweep_processes import (
    LATE,
    TRANSMITTED_AT,
    insert_due_dossiers,
    pending_actions,
    sweep_process,
)

from case_workflow import Engine, SimulatedClock

SAMPLED = 10  # dossiers filed through the engine in every store, the rest bulk-inserted


@dataclass(frozen=True)
class Run:
    store: str
    letters: bool
    processes: int
    actions: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.actions / self.seconds


def build(url: str, dossiers: int, *, with_letters: bool) -> int:
    clock = SimulatedClock(TRANSMITTED_AT - timedelta(days=1))
    with Engine(url, clock=clock, create_schema=True) as engine:
        for _ in range(SAMPLED):
            file_and_transmit(engine, clock)
        insert_due_dossiers(engine, dossiers - SAMPLED, with_letters=with_letters)
        return pending_actions(engine)


def measure(url: str, processes: int, batch_size: int) -> tuple[int, float]:
    """Sweep ``url`` with ``processes`` spawned processes; return actions and seconds."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(processes + 1)
    out = spawn.Queue()
    workers = [
        spawn.Process(target=sweep_process, args=(url, LATE, batch_size, barrier, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    # Engines are built (the workflow compiled) before the barrier; timing starts after it.
    barrier.wait()
    started = time.perf_counter()
    reports = [out.get() for _ in workers]
    seconds = time.perf_counter() - started
    for worker in workers:
        worker.join()
    errors = [report.error for report in reports if report.error]
    if errors:
        raise RuntimeError(f"sweep process failed: {errors[0]}")
    return sum(report.actions for report in reports), seconds


def run(kind: str, folder: Path, args: argparse.Namespace, *, letters: bool, procs: int) -> Run:
    with scratch_database(kind, folder) as url:
        due = build(url, args.dossiers, with_letters=letters)
        actions, seconds = measure(url, procs, args.batch_size)
        with Engine(url) as engine:
            left = pending_actions(engine)
    if actions != due or left != 0:
        raise RuntimeError(f"{kind}: {due} actions due, {actions} acted on, {left} left pending")
    return Run(kind, letters, procs, actions, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=1000, help="dossiers per store")
    parser.add_argument("--batch-size", type=int, default=100, help="actions per transaction")
    args = parser.parse_args()

    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("sqlite", "postgresql"):
            for letters in (False, True):
                runs.append(run(kind, Path(folder), args, letters=letters, procs=1))
        for procs in (2, 4):
            runs.append(run("postgresql", Path(folder), args, letters=False, procs=procs))

    single_pg = next(r for r in runs if r.store == "postgresql" and not r.letters)
    rows: list[list[Any]] = []
    for item in runs:
        ratio = ""
        if item.store == "postgresql" and not item.letters:
            ratio = f"{item.per_second / single_pg.per_second:.2f}"
        rows.append(
            [
                item.store,
                "yes" if item.letters else "no",
                item.processes,
                item.actions,
                f"{item.seconds:.2f}",
                f"{item.per_second:.0f}",
                ratio,
            ]
        )
    print_table(
        ["store", "letters", "processes", "actions", "seconds", "actions/s", "vs 1 process"], rows
    )
    path = save(
        "sweep_throughput",
        {
            "dossiers": args.dossiers,
            "batch_size": args.batch_size,
            "runs": [asdict(item) | {"per_second": item.per_second} for item in runs],
        },
    )
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
