"""The City of Boston's 311 export: reading its rows, and why a verdict may differ from its flag.

The export lists, per case, naive Boston local times (``open_dt``, ``target_dt``,
``closed_dt``), the City's own on-time flag (``ontime``) and the closing category.
:func:`read_rows` streams the file one row at a time and checks its order;
:func:`classify_disagreement` names why the engine's verdict on a closed case differs from the
City's flag, from the facts of that one case.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from case_workflow.errors import InvalidInput
from case_workflow.records import DeadlineStatus

__all__ = [
    "CITY_FLAGS",
    "NO_SLA_FROM",
    "REQUIRED_COLUMNS",
    "CaseRow",
    "CityRecord",
    "classify_disagreement",
    "engine_flag",
    "in_dst_transition",
    "parse_local",
    "read_rows",
    "to_utc",
]

ONTIME = "ONTIME"
OVERDUE = "OVERDUE"
CITY_FLAGS = (ONTIME, OVERDUE)
_ONE_SECOND = timedelta(seconds=1)

# The export puts placeholder target dates (up to 2059-12-31) on cases that have no SLA.
NO_SLA_FROM = date(2020, 1, 1)
REQUIRED_COLUMNS = (
    "case_enquiry_id",
    "open_dt",
    "target_dt",
    "closed_dt",
    "ontime",
    "case_status",
    "closure_category",
    "case_title",
    "subject",
    "type",
    "department",
    "neighborhood",
)

CAUSE_EMPTY_FLAG = "the City left the on-time flag empty"
CAUSE_EXACT_SECOND = "closed exactly at the target second (the engine counts it as met)"
CAUSE_DST = "target or closing time falls in a daylight-saving transition hour"
CAUSE_LATE_SAME_DAY = "closed after the target on the target's day but flagged ONTIME by the City"
CAUSE_LATE_ONTIME = "closed after the target but flagged ONTIME by the City"
CAUSE_EARLY_OVERDUE = "closed before the target but flagged OVERDUE by the City"


@dataclass(frozen=True, slots=True)
class CityRecord:
    """The export's columns that describe a case's timing and flag, as the City wrote them."""

    open_dt: str
    target_dt: str
    closed_dt: str
    ontime: str
    case_status: str
    closure_category: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> CityRecord:
        return cls(
            open_dt=str(data.get("open_dt", "")),
            target_dt=str(data.get("target_dt", "")),
            closed_dt=str(data.get("closed_dt", "")),
            ontime=str(data.get("ontime", "")),
            case_status=str(data.get("case_status", "")),
            closure_category=str(data.get("closure_category", "")),
        )


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One case of the export, with its instants in UTC."""

    line: int
    case_id: str
    opened: datetime
    target: datetime | None
    placeholder_target: bool
    closed: datetime | None
    record: CityRecord
    subject: str
    respondent: str | None
    region: str | None


def read_rows(path: Path, zone: ZoneInfo, limit: int | None) -> Iterator[CaseRow]:
    """Yield the file's cases in order; ``limit`` caps the number of rows read.

    Raises InvalidInput for a missing file or column, an unparsable timestamp, a row opened
    before the previous one or a case closed before it opened.
    """
    if not path.is_file():
        raise InvalidInput(f"Boston 311 file {str(path)!r} not found; pass the path of the CSV")
    previous: datetime | None = None
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(
                f"{path}: missing column(s) {', '.join(missing)}; expected the City of "
                f"Boston 311 layout with columns {', '.join(REQUIRED_COLUMNS)}"
            )
        for count, raw in enumerate(reader):
            if limit is not None and count >= limit:
                return
            row = _parse_row(path, reader.line_num, raw, zone)
            if previous is not None and row.opened < previous:
                raise InvalidInput(
                    f"{path}:{row.line}: case {row.case_id} opened at {row.record.open_dt}, before "
                    "the previous row; sort the file by open_dt"
                )
            previous = row.opened
            yield row


def _parse_row(path: Path, line: int, fields: dict[str, str | None], zone: ZoneInfo) -> CaseRow:
    # A short row gives None for the missing fields.
    raw = {name: (value or "").strip() for name, value in fields.items() if name is not None}
    case_id = raw["case_enquiry_id"]
    if not case_id:
        raise InvalidInput(f"{path}:{line}: empty case_enquiry_id; every case needs an id")

    def instant(column: str) -> datetime | None:
        text = raw[column]
        if not text:
            return None
        try:
            return to_utc(parse_local(text, zone))
        except ValueError:
            raise InvalidInput(
                f"{path}:{line}: case {case_id}: {column} {text!r} is not a timestamp; "
                "expected 'YYYY-MM-DD HH:MM:SS' in Boston local time"
            ) from None

    opened = instant("open_dt")
    if opened is None:
        raise InvalidInput(f"{path}:{line}: case {case_id} has no open_dt; every case needs one")
    target = instant("target_dt")
    placeholder = target is not None and target.date() >= NO_SLA_FROM
    closed = instant("closed_dt")
    if closed is not None and closed < opened:
        raise InvalidInput(
            f"{path}:{line}: case {case_id} closed at {raw['closed_dt']}, before it opened at "
            f"{raw['open_dt']}; fix the row or drop it"
        )
    record = CityRecord(
        open_dt=raw["open_dt"],
        target_dt=raw["target_dt"],
        closed_dt=raw["closed_dt"],
        ontime=raw["ontime"],
        case_status=raw["case_status"],
        closure_category=raw["closure_category"],
    )
    return CaseRow(
        line=line,
        case_id=case_id,
        opened=opened,
        target=None if placeholder else target,
        placeholder_target=placeholder,
        closed=closed,
        record=record,
        subject=raw["case_title"] or raw["type"] or "Service request",
        respondent=raw["department"] or raw["subject"] or None,
        region=raw["neighborhood"] or None,
    )


def parse_local(text: str, zone: ZoneInfo) -> datetime:
    """Parse a naive ``YYYY-MM-DD HH:MM:SS`` local time into an aware datetime in ``zone``.

    A time repeated when clocks fall back takes its first occurrence (``fold=0``, daylight
    time). A time skipped when clocks spring forward is shifted forward to the first instant
    after the gap (02:30 on the spring-forward day becomes 03:00 daylight time), so the order
    of the file's times is kept. Raises ValueError for a malformed text.
    """
    naive = datetime.fromisoformat(text)
    if naive.tzinfo is not None:
        raise ValueError(f"{text!r} carries an offset; expected a naive local time")
    first = naive.replace(tzinfo=zone, fold=0)
    if _wall_time(first.astimezone(UTC), zone) == naive:
        return first
    # In the gap, fold=1 applies the offset after the change and fold=0 the one before, which
    # bracket the change: search the first second whose wall time is past ``naive``.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first.astimezone(UTC)
    while high - low > _ONE_SECOND:
        middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
        if _wall_time(middle, zone) > naive:
            high = middle
        else:
            low = middle
    return high.astimezone(zone)


def _wall_time(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def to_utc(moment: datetime) -> datetime:
    """Return the aware ``moment`` in UTC."""
    return moment.astimezone(UTC)


def in_dst_transition(text: str, zone: ZoneInfo) -> bool:
    """Tell whether a naive local time is ambiguous or skipped in ``zone``."""
    if not text:
        return False
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        return False
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        return True
    return _wall_time(first.astimezone(UTC), zone) != naive


def engine_flag(status: DeadlineStatus) -> str:
    """Translate a closed deadline's status into the City's vocabulary."""
    return ONTIME if status is DeadlineStatus.MET else OVERDUE


def classify_disagreement(
    record: CityRecord,
    verdict: str,
    target: datetime,
    closed: datetime,
    zone: ZoneInfo,
) -> str:
    """Name the most likely cause of a disagreement on one closed case.

    ``target`` and ``closed`` are the engine's due and closing instants, ``verdict`` its flag.
    """
    flag = record.ontime
    if not flag:
        return CAUSE_EMPTY_FLAG
    if flag not in CITY_FLAGS:
        return f"the City's flag {flag!r} is neither ONTIME nor OVERDUE"
    if closed == target:
        return CAUSE_EXACT_SECOND
    if in_dst_transition(record.target_dt, zone) or in_dst_transition(record.closed_dt, zone):
        return CAUSE_DST
    if verdict == OVERDUE:
        if closed.astimezone(zone).date() == target.astimezone(zone).date():
            return CAUSE_LATE_SAME_DAY
        return CAUSE_LATE_ONTIME
    return CAUSE_EARLY_OVERDUE
