"""Deadline rows and their scheduled actions (reminders and escalation levels).

Pending actions carry their ``fire_at``; a partial index on it makes finding due actions cost
what is due, not what is open. Only the sweep marks an action done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, literal, select, update

from case_workflow.records import ActionKind, ActionStatus, DeadlineStatus
from case_workflow.store.tables import deadline_actions, deadlines, dossiers

__all__ = [
    "DeadlineRow",
    "DueAction",
    "PlannedAction",
    "claim_due_actions",
    "close_deadline",
    "insert_deadline",
    "mark_action",
    "open_deadlines",
    "pause_deadline",
    "postpone_action",
    "reschedule_deadline",
]


@dataclass(frozen=True, slots=True)
class PlannedAction:
    kind: ActionKind
    level: int
    fire_at: datetime
    letter: str | None
    event: str | None


@dataclass(frozen=True, slots=True)
class DeadlineRow:
    id: int
    name: str
    state: str
    status: DeadlineStatus
    rule: str
    started_at: datetime
    due_at: datetime
    paused_at: datetime | None
    remaining: str | None


@dataclass(frozen=True, slots=True)
class DueAction:
    id: int
    deadline_id: int
    dossier_id: int
    kind: ActionKind
    level: int
    fire_at: datetime
    letter: str | None
    event: str | None


def insert_deadline(
    connection: Connection,
    *,
    dossier_id: int,
    name: str,
    state: str,
    rule: str,
    started_at: datetime,
    due_at: datetime,
    rests_on_estimate: bool,
    explanation: dict[str, Any],
    actions: Sequence[PlannedAction],
) -> int:
    deadline_id: int = connection.execute(
        insert(deadlines).returning(deadlines.c.id),
        {
            "dossier_id": dossier_id,
            "name": name,
            "state": state,
            "status": DeadlineStatus.RUNNING,
            "rule": rule,
            "started_at": started_at,
            "due_at": due_at,
            "rests_on_estimate": rests_on_estimate,
            "explanation": explanation,
        },
    ).scalar_one()
    if actions:
        connection.execute(
            insert(deadline_actions),
            [
                {
                    "deadline_id": deadline_id,
                    "dossier_id": dossier_id,
                    "kind": action.kind,
                    "level": action.level,
                    "fire_at": action.fire_at,
                    "status": ActionStatus.PENDING,
                    "letter": action.letter,
                    "event": action.event,
                }
                for action in actions
            ],
        )
    return deadline_id


_OPEN_DEADLINES = (
    select(
        deadlines.c.id,
        deadlines.c.name,
        deadlines.c.state,
        deadlines.c.status,
        deadlines.c.rule,
        deadlines.c.started_at,
        deadlines.c.due_at,
        deadlines.c.paused_at,
        deadlines.c.remaining,
    )
    .where(deadlines.c.dossier_id == bindparam("dossier_id"))
    .where(deadlines.c.status.in_([DeadlineStatus.RUNNING, DeadlineStatus.PAUSED]))
    .order_by(deadlines.c.id)
)


def open_deadlines(connection: Connection, dossier_id: int) -> list[DeadlineRow]:
    """Return the dossier's running and paused deadlines."""
    rows = connection.execute(_OPEN_DEADLINES, {"dossier_id": dossier_id})
    return [
        DeadlineRow(
            id=row.id,
            name=row.name,
            state=row.state,
            status=DeadlineStatus(row.status),
            rule=row.rule,
            started_at=row.started_at,
            due_at=row.due_at,
            paused_at=row.paused_at,
            remaining=row.remaining,
        )
        for row in rows
    ]


def pause_deadline(
    connection: Connection, deadline_id: int, *, at: datetime, remaining: str
) -> None:
    """Stop the deadline's clock; its pending actions wait as ``suspended``."""
    connection.execute(
        update(deadlines)
        .where(deadlines.c.id == deadline_id)
        .values(status=DeadlineStatus.PAUSED, paused_at=at, remaining=remaining)
    )
    connection.execute(
        update(deadline_actions)
        .where(deadline_actions.c.deadline_id == deadline_id)
        .where(deadline_actions.c.status == ActionStatus.PENDING)
        .values(status=ActionStatus.SUSPENDED)
    )


def reschedule_deadline(
    connection: Connection,
    deadline_id: int,
    *,
    due_at: datetime,
    rests_on_estimate: bool,
    explanation: dict[str, Any],
    actions: Sequence[PlannedAction],
) -> None:
    """Give a running or paused deadline a new due time and restart its clock.

    Actions already done keep their row and their ``fire_at``; the others get the new times.
    """
    connection.execute(
        update(deadlines)
        .where(deadlines.c.id == deadline_id)
        .values(
            status=DeadlineStatus.RUNNING,
            due_at=due_at,
            paused_at=None,
            remaining=None,
            rests_on_estimate=rests_on_estimate,
            explanation=explanation,
        )
    )
    open_statuses = [ActionStatus.PENDING, ActionStatus.SUSPENDED]
    for action in actions:
        connection.execute(
            update(deadline_actions)
            .where(deadline_actions.c.deadline_id == deadline_id)
            .where(deadline_actions.c.kind == action.kind)
            .where(deadline_actions.c.level == action.level)
            .where(deadline_actions.c.status.in_(open_statuses))
            .values(fire_at=action.fire_at, status=ActionStatus.PENDING)
        )


def close_deadline(
    connection: Connection,
    deadline_id: int,
    *,
    at: datetime,
    status: DeadlineStatus,
    working_days: int | None = None,
) -> None:
    """Close the deadline and store ``working_days``; actions not yet done are cancelled."""
    connection.execute(
        update(deadlines)
        .where(deadlines.c.id == deadline_id)
        .values(status=status, closed_at=at, working_days=working_days)
    )
    connection.execute(
        update(deadline_actions)
        .where(deadline_actions.c.deadline_id == deadline_id)
        .where(deadline_actions.c.status.in_([ActionStatus.PENDING, ActionStatus.SUSPENDED]))
        .values(status=ActionStatus.CANCELLED)
    )


_DUE = (
    select(
        deadline_actions.c.id,
        deadline_actions.c.deadline_id,
        deadline_actions.c.dossier_id,
        deadline_actions.c.kind,
        deadline_actions.c.level,
        deadline_actions.c.fire_at,
        deadline_actions.c.letter,
        deadline_actions.c.event,
    )
    # A literal, not a bound parameter, so the planner can match the partial index.
    .where(deadline_actions.c.status == literal(ActionStatus.PENDING.value, literal_execute=True))
    .where(deadline_actions.c.fire_at <= bindparam("now"))
    .order_by(deadline_actions.c.fire_at, deadline_actions.c.id)
    .limit(bindparam("limit"))
)
# Locking the dossier row with its actions means a sweeper never waits on a clerk's open
# transaction (it skips that dossier until the next batch). The dossier comes first in OF:
# PostgreSQL 15 (checked on this project's test server) keeps a lock it took before skipping a
# row, so with the action first a sweeper that skips a busy dossier would still hold its action
# row, and the dossier's owner closing that deadline could deadlock with it.
_DUE_SKIP_LOCKED = _DUE.join_from(
    deadline_actions, dossiers, dossiers.c.id == deadline_actions.c.dossier_id
).with_for_update(skip_locked=True, of=[dossiers, deadline_actions])


def claim_due_actions(connection: Connection, *, now: datetime, limit: int) -> list[DueAction]:
    """Lock and return up to ``limit`` pending actions due at ``now``, in due order.

    On PostgreSQL rows locked by another sweeper are skipped, so sweepers never wait on each
    other nor take the same action. On SQLite the caller's ``BEGIN IMMEDIATE`` holds the
    database's write lock, which gives the same guarantee.
    """
    statement = _DUE if connection.dialect.name == "sqlite" else _DUE_SKIP_LOCKED
    rows = connection.execute(statement, {"now": now, "limit": limit})
    return [
        DueAction(
            id=row.id,
            deadline_id=row.deadline_id,
            dossier_id=row.dossier_id,
            kind=ActionKind(row.kind),
            level=row.level,
            fire_at=row.fire_at,
            letter=row.letter,
            event=row.event,
        )
        for row in rows
    ]


_MARK = (
    update(deadline_actions)
    .where(deadline_actions.c.id == bindparam("b_id"))
    .where(deadline_actions.c.status == ActionStatus.PENDING.value)
    .values(status=bindparam("b_status"), done_at=bindparam("b_at"), note=bindparam("b_note"))
)


def mark_action(
    connection: Connection,
    action_id: int,
    *,
    status: ActionStatus,
    at: datetime,
    note: str | None = None,
) -> bool:
    """Mark a pending action done or skipped; return False if it was no longer pending."""
    result = connection.execute(
        _MARK, {"b_id": action_id, "b_status": status.value, "b_at": at, "b_note": note}
    )
    return result.rowcount == 1


def postpone_action(connection: Connection, action_id: int, *, until: datetime, note: str) -> None:
    """Move a pending action's ``fire_at`` to ``until`` and record why (the note is cut short)."""
    connection.execute(
        update(deadline_actions)
        .where(deadline_actions.c.id == action_id)
        .where(deadline_actions.c.status == ActionStatus.PENDING.value)
        .values(fire_at=until, note=note[:1000])
    )
