"""Replaying the City of Boston's 311 service requests through the engine.

The City's open-data export lists, for each case, when it was opened, its target date (the
service level agreement), when it was closed and the City's own on-time flag. A replay files
every case at its opening instant, opens it with or without a target and closes it at its
closing instant. It sweeps the engine as simulated time passes, so the engine's deadline rows
end with their own verdict (met or missed), which is then compared with the City's flag.

The file is streamed one row at a time. Only the closures still to come are kept in memory, in
a heap keyed by closing instant, so memory follows the open backlog rather than the file size.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import select

from case_workflow.boston_export import (
    CaseRow,
    CityRecord,
    classify_disagreement,
    engine_flag,
    read_rows,
)
from case_workflow.calendars import load_zone
from case_workflow.clock import SimulatedClock
from case_workflow.engine import Engine
from case_workflow.errors import InvalidInput
from case_workflow.records import Complainant, DeadlineStatus
from case_workflow.reports import EscalationReport, build_report
from case_workflow.states import Actor
from case_workflow.store.database import read_transaction
from case_workflow.store.tables import deadlines, dossiers

__all__ = ["BOSTON_WORKFLOW", "Disagreement", "ReplayResult", "replay_boston"]

log = logging.getLogger(__name__)

BOSTON_WORKFLOW = "boston-311"
BOSTON_ZONE = "America/New_York"
REFERENCE_PREFIX = "BOS-"
MAX_EXAMPLES = 50
PROGRESS_EVERY = 1000

CITY_AGENT = Actor(name="Boston 311 replay", role="city_agent", institution="boston")
CONSTITUENT = Complainant(name="Boston 311 constituent", language="en")


@dataclass(frozen=True, slots=True)
class Disagreement:
    """One closed case where the engine's verdict differs from the City's on-time flag.

    Times are in Boston local time; ``city_flag`` is the export's ``ontime`` value (possibly
    empty) and ``engine_verdict`` the flag the engine's deadline status amounts to.
    """

    reference: str
    open_dt: datetime
    target_dt: datetime
    closed_dt: datetime
    city_flag: str
    engine_verdict: str
    cause: str


@dataclass
class ReplayResult:
    """Counts, the agreement with the City's on-time flags and example disagreements."""

    as_of: datetime
    cases: int = 0
    filed: int = 0
    closed: int = 0
    with_target: int = 0
    placeholder_targets: int = 0
    sweeps: int = 0
    overdue_notices: int = 0
    compared: int = 0
    agreed: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)
    causes: Counter[str] = field(default_factory=Counter)
    report: EscalationReport | None = None

    @property
    def agreement(self) -> float:
        """Share of compared cases where the engine and the City agree; 0.0 if none."""
        return self.agreed / self.compared if self.compared else 0.0

    @property
    def still_open(self) -> int:
        return self.filed - self.closed

    def summary(self) -> str:
        """Return a plain-text account of the replay for printing."""
        lines = [
            f"Boston 311 replay as of {self.as_of.isoformat()}",
            f"  cases read:          {self.cases:,}",
            f"  dossiers filed:      {self.filed:,}",
            f"  closed by as_of:     {self.closed:,} ({self.still_open:,} still open)",
            f"  with a target date:  {self.with_target:,} "
            f"({self.placeholder_targets:,} placeholder dates after 2020 treated as no target)",
            f"  sweeps:              {self.sweeps:,} ({self.overdue_notices:,} overdue notices)",
        ]
        if self.compared:
            lines.append(
                f"  agreement with the City's on-time flag: {self.agreed:,} of "
                f"{self.compared:,} closed cases with a target ({self.agreement:.4%})"
            )
        else:
            lines.append("  agreement: no closed case with a target date to compare")
        if self.causes:
            lines.append("  disagreements by cause:")
            for cause, count in self.causes.most_common():
                lines.append(f"    {count:6,}  {cause}")
        for example in self.disagreements[:5]:
            lines.append(
                f"    e.g. {example.reference}: target {example.target_dt:%Y-%m-%d %H:%M:%S}, "
                f"closed {example.closed_dt:%Y-%m-%d %H:%M:%S}, City "
                f"{example.city_flag or '(empty)'}, engine {example.engine_verdict}"
            )
        if self.report is not None:
            report = self.report
            lines.append(
                f"  escalation report as of the same instant: {report.escalated_total:,} cases "
                f"open past their target; {report.answered_on_time:,} closed on time and "
                f"{report.answered_late:,} late"
            )
        return "\n".join(lines)


def replay_boston(
    engine: Engine,
    csv_path: Path,
    *,
    as_of: datetime | None = None,
    limit: int | None = None,
    sweep_every: timedelta = timedelta(hours=6),
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay the City of Boston's 311 export through ``engine`` and compare on-time verdicts.

    The engine must have the ``boston-311`` workflow loaded, a :class:`SimulatedClock` (moved
    forward to each replayed instant, never back) and no dossier referenced ``BOS-<case id>``
    yet, or the first such case raises DuplicateDossier. Cases opened
    after ``as_of`` (default: 2011-12-31 23:59:59 in Boston) are not read; closures after it
    are not fired. ``limit`` caps the number of rows read. ``progress`` receives the number of
    rows read so far, every 1,000 rows and at the end.

    Raises InvalidInput for a file that is missing columns, has an unparsable timestamp, is not
    sorted by ``open_dt`` or closes a case before it opened.
    """
    clock = engine.clock
    if not isinstance(clock, SimulatedClock):
        raise InvalidInput(
            f"replay needs an engine built with a SimulatedClock, got {type(clock).__name__}; "
            "pass clock=SimulatedClock(start) to Engine()"
        )
    if sweep_every <= timedelta(0):
        raise InvalidInput(f"sweep_every must be positive, got {sweep_every}")
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit must be zero or more, got {limit}")
    workflow = engine.workflow(BOSTON_WORKFLOW).definition
    zone = load_zone(BOSTON_ZONE)
    if as_of is None:
        as_of = datetime(2011, 12, 31, 23, 59, 59, tzinfo=zone)
    elif as_of.tzinfo is None:
        raise InvalidInput(f"as_of {as_of.isoformat()} has no time zone; pass an aware datetime")
    outcomes = tuple(workflow.states["closed"].outcomes)
    replayer = _Replayer(engine, clock, zone, as_of.astimezone(UTC), sweep_every, outcomes)
    result = replayer.result
    for row in read_rows(csv_path, zone, limit):
        if row.opened > replayer.as_of:
            break
        replayer.handle(row)
        if progress is not None and result.cases % PROGRESS_EVERY == 0:
            progress(result.cases)
    replayer.finish()
    if progress is not None:
        progress(result.cases)
    _compare(engine, zone, result)
    result.report = build_report(
        engine.database, as_of=as_of, timezone=BOSTON_ZONE, deadline_name="target"
    )
    log.info(
        "boston replay: %d cases, %d compared, agreement %.4f",
        result.cases,
        result.compared,
        result.agreement,
    )
    return result


class _Replayer:
    """Merges the file's openings, the pending closures and the sweep ticks in time order."""

    def __init__(
        self,
        engine: Engine,
        clock: SimulatedClock,
        zone: ZoneInfo,
        as_of: datetime,
        sweep_every: timedelta,
        outcomes: tuple[str, ...],
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.zone = zone
        self.as_of = as_of
        self.sweep_every = sweep_every
        self.outcomes = outcomes
        self.next_sweep: datetime | None = None
        # (closing instant, file line, reference, outcome, closing category)
        self.closures: list[tuple[datetime, int, str, str, str]] = []
        self.result = ReplayResult(as_of=as_of.astimezone(zone))

    def handle(self, row: CaseRow) -> None:
        if self.next_sweep is None:
            self.next_sweep = row.opened + self.sweep_every
        self._advance(row.opened)
        self._move_clock(row.opened)
        result = self.result
        result.cases += 1
        reference = REFERENCE_PREFIX + row.case_id
        self.engine.file(
            BOSTON_WORKFLOW,
            actor=CITY_AGENT,
            complainant=CONSTITUENT,
            subject=row.subject,
            respondent=row.respondent,
            region=row.region,
            reference=reference,
            external_reference=row.case_id,
            data={"city": row.record.to_dict()},
            at=row.opened,
        )
        result.filed += 1
        if row.target is not None:
            result.with_target += 1
            target_local = row.target.astimezone(self.zone).isoformat()
            self.engine.fire(
                reference,
                "open",
                actor=CITY_AGENT,
                payload={"target_dt": target_local},
                at=row.opened,
            )
        else:
            result.placeholder_targets += row.placeholder_target
            comment = "placeholder target date" if row.placeholder_target else "no target date"
            self.engine.fire(
                reference,
                "open_without_target",
                actor=CITY_AGENT,
                payload={"comment": comment},
                at=row.opened,
            )
        if row.closed is not None:
            category = row.record.closure_category
            entry = (row.closed, row.line, reference, self._outcome(category), category)
            heapq.heappush(self.closures, entry)

    def finish(self) -> None:
        """Fire the closures and sweeps due up to ``as_of``, then sweep at ``as_of``."""
        self._advance(self.as_of)
        self._move_clock(self.as_of)
        self._sweep(self.as_of)

    def _outcome(self, category: str) -> str:
        lowered = category.lower()
        return lowered if lowered in self.outcomes else "other"

    def _advance(self, until: datetime) -> None:
        # At equal instants a closure goes first, so a case closed at a sweep tick gets no
        # overdue notice from that tick.
        while True:
            closure_at = self.closures[0][0] if self.closures else None
            sweep_at = self.next_sweep
            if sweep_at is not None and sweep_at > until:
                sweep_at = None
            if (
                closure_at is not None
                and closure_at <= until
                and (sweep_at is None or closure_at <= sweep_at)
            ):
                self._close(*heapq.heappop(self.closures))
                continue
            if sweep_at is None:
                return
            self._move_clock(sweep_at)
            self._sweep(sweep_at)
            self.next_sweep = sweep_at + self.sweep_every

    def _close(self, at: datetime, _line: int, reference: str, outcome: str, raw: str) -> None:
        self._move_clock(at)
        payload = {"outcome": outcome, "comment": raw or "no closing category"}
        self.engine.fire(reference, "close", actor=CITY_AGENT, payload=payload, at=at)
        self.result.closed += 1

    def _sweep(self, at: datetime) -> None:
        swept = self.engine.sweep(at)
        self.result.sweeps += 1
        self.result.overdue_notices += swept.escalations

    def _move_clock(self, moment: datetime) -> None:
        if moment > self.clock.now():
            self.clock.set(moment)


def _compare(engine: Engine, zone: ZoneInfo, result: ReplayResult) -> None:
    """Stream the closed replayed cases with a target and compare verdicts with the City's."""
    query = (
        select(
            dossiers.c.reference,
            dossiers.c.filed_at,
            dossiers.c.closed_at,
            dossiers.c.data,
            deadlines.c.due_at,
            deadlines.c.status,
        )
        .join(deadlines, deadlines.c.dossier_id == dossiers.c.id)
        .where(
            dossiers.c.workflow == BOSTON_WORKFLOW,
            dossiers.c.reference.startswith(REFERENCE_PREFIX),
            dossiers.c.closed_at.is_not(None),
            deadlines.c.name == "target",
            deadlines.c.status.in_([DeadlineStatus.MET.value, DeadlineStatus.MISSED.value]),
        )
        .order_by(dossiers.c.id)
    )
    with read_transaction(engine.database) as connection:
        rows = connection.execution_options(yield_per=2000).execute(query)
        for row in rows:
            data = cast(dict[str, Any], row.data)
            record = CityRecord.from_dict(cast(dict[str, str], data.get("city", {})))
            verdict = engine_flag(DeadlineStatus(row.status))
            result.compared += 1
            if record.ontime == verdict:
                result.agreed += 1
                continue
            opened = row.filed_at.astimezone(zone)
            target = row.due_at.astimezone(zone)
            closed = row.closed_at.astimezone(zone)
            cause = classify_disagreement(record, verdict, target, closed, zone)
            result.causes[cause] += 1
            if len(result.disagreements) < MAX_EXAMPLES:
                result.disagreements.append(
                    Disagreement(
                        reference=row.reference,
                        open_dt=opened,
                        target_dt=target,
                        closed_dt=closed,
                        city_flag=record.ontime,
                        engine_verdict=verdict,
                        cause=cause,
                    )
                )
