"""The sweep: acting once on every due reminder and escalation level.

Each batch of due actions is claimed and acted on in one transaction: the action is marked
done, the dossier changes (with its event), and the letters and outbox rows are written, or
nothing is. A crash anywhere leaves the batch's actions pending for the next sweep, and the unique
key (deadline, kind, level) and the ``pending`` condition make a replay harmless.

Actions are taken in due order (``fire_at``, then id), so a sweep that runs after days of
downtime acts on a dossier's reminder before its escalation levels. On PostgreSQL any number
of sweepers may run at once: each batch locks its actions and their dossiers with
``FOR UPDATE SKIP LOCKED``, so a sweeper passes over what another one holds. On SQLite the
batch's ``BEGIN IMMEDIATE`` takes the database's write lock and other writers wait for it.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from case_workflow.errors import ConcurrencyError, DossierNotFound
from case_workflow.explain import summarize
from case_workflow.notifications import DeadlineInfo
from case_workflow.records import ActionKind, ActionStatus
from case_workflow.states import Actor
from case_workflow.steps import StepContext, apply_step
from case_workflow.store.database import retry_when_locked, write_transaction
from case_workflow.store.history import DossierRow, load_dossier
from case_workflow.store.schedule import (
    DueAction,
    claim_due_actions,
    mark_action,
    postpone_action,
)
from case_workflow.store.tables import deadlines, dossiers

__all__ = ["SweepCounts", "sweep_due_actions"]

log = logging.getLogger(__name__)

# How long an action that failed on its own waits before the next sweep tries it again.
FAILED_ACTION_DELAY = timedelta(hours=1)

ContextLookup = Callable[[str, int], StepContext]


@dataclass
class SweepCounts:
    reminders: int = 0
    escalations: int = 0
    skipped: int = 0
    retried: int = 0
    letters: int = 0
    failed: int = 0


def sweep_due_actions(
    engine: Engine, contexts: ContextLookup, *, now: datetime, batch_size: int
) -> SweepCounts:
    """Act on every action due at ``now`` that no other sweeper holds, in due order."""
    counts = SweepCounts()
    size = batch_size
    while True:
        try:
            claimed = retry_when_locked(
                functools.partial(_sweep_batch, engine, contexts, now, size, counts)
            )
        except ConcurrencyError as error:
            # The claim locks each dossier (PostgreSQL) or the database (SQLite), so no other
            # writer can move a claimed dossier. If one did, the whole batch was rolled back
            # and its actions stay pending for the next run.
            counts.retried += 1
            log.warning("sweep stopped: %s; the batch's actions stay pending", error)
            return counts
        except Exception as error:
            # One bad action (a template that fails to render, a workflow changed under a
            # dossier) must not stop every later sweep. The batch was rolled back; its actions
            # are retried one per transaction, and the one that fails alone is postponed.
            if size > 1:
                log.warning("sweep batch failed (%s); retrying its actions one by one", error)
                size = 1
                continue
            _postpone_first_due(engine, now, error)
            counts.failed += 1
            continue
        if claimed < size:
            return counts


def _postpone_first_due(engine: Engine, now: datetime, error: Exception) -> None:
    """Move the first due action, which just failed alone, an hour later with the error noted."""
    with write_transaction(engine) as connection:
        for action in claim_due_actions(connection, now=now, limit=1):
            postpone_action(
                connection, action.id, until=now + FAILED_ACTION_DELAY, note=f"failed: {error}"
            )
            log.error(
                "sweep failed on action %d (%s level %d) of dossier #%d: %s; retrying after %s",
                action.id,
                action.kind.value,
                action.level,
                action.dossier_id,
                error,
                (now + FAILED_ACTION_DELAY).isoformat(),
            )


def _sweep_batch(
    engine: Engine,
    contexts: ContextLookup,
    now: datetime,
    batch_size: int,
    counts: SweepCounts,
) -> int:
    batch = SweepCounts()
    with write_transaction(engine) as connection:
        due = claim_due_actions(connection, now=now, limit=batch_size)
        if not due:
            return 0
        # Read the batch's deadlines and dossiers in two statements instead of two per action.
        # A dossier with another action later in the batch is read again after each step.
        deadline_rows = _load_deadlines(connection, {action.deadline_id for action in due})
        dossier_rows = _load_dossiers(connection, {action.dossier_id for action in due})
        remaining = Counter(action.dossier_id for action in due)
        for action in due:
            remaining[action.dossier_id] -= 1
            dossier = dossier_rows[action.dossier_id]
            acted = _act(
                connection, contexts, action, dossier, deadline_rows[action.deadline_id], now, batch
            )
            if acted and remaining[action.dossier_id] > 0:
                dossier_rows[action.dossier_id] = load_dossier(
                    connection, dossier_id=action.dossier_id
                )
    counts.reminders += batch.reminders
    counts.escalations += batch.escalations
    counts.skipped += batch.skipped
    counts.letters += batch.letters
    return len(due)


_DOSSIER_COLUMNS = [dossiers.c[field.name] for field in fields(DossierRow)]


def _load_dossiers(connection: Connection, ids: set[int]) -> dict[int, DossierRow]:
    rows = connection.execute(select(*_DOSSIER_COLUMNS).where(dossiers.c.id.in_(ids)))
    loaded = {row.id: DossierRow(*row) for row in rows}
    missing = ids - set(loaded)
    if missing:
        raise DossierNotFound(f"#{min(missing)}")
    return loaded


def _load_deadlines(connection: Connection, ids: set[int]) -> dict[int, Row[Any]]:
    rows = connection.execute(
        select(
            deadlines.c.id,
            deadlines.c.name,
            deadlines.c.due_at,
            deadlines.c.started_at,
            deadlines.c.explanation,
        ).where(deadlines.c.id.in_(ids))
    )
    return {row.id: row for row in rows}


def _act(
    connection: Connection,
    contexts: ContextLookup,
    action: DueAction,
    dossier: DossierRow,
    deadline: Row[Any],
    now: datetime,
    counts: SweepCounts,
) -> bool:
    """Act on one claimed action; return whether the dossier changed."""
    context = contexts(dossier.workflow, dossier.workflow_version)

    definition = context.workflow.definition
    system_role = definition.system_role
    actor = Actor(
        name="sweep", role=system_role, institution=definition.roles[system_role].institution
    )
    zone = context.zone
    days_overdue = max(
        0, (now.astimezone(zone).date() - deadline.due_at.astimezone(zone).date()).days
    )
    info = DeadlineInfo(
        name=deadline.name,
        due_at=deadline.due_at,
        started_at=deadline.started_at,
        days_overdue=days_overdue,
        level=action.level,
        explanation_text=summarize(deadline.explanation, definition.languages[0]),
    )
    payload = {
        "deadline": deadline.name,
        "kind": action.kind.value,
        "level": action.level,
        "due_at": deadline.due_at.isoformat(),
        "fire_at": action.fire_at.isoformat(),
    }

    letters = [action.letter] if action.letter else []
    extra = None
    if action.kind is ActionKind.ESCALATION:
        extra = {"escalation_level": max(dossier.escalation_level, action.level)}
    trigger = action.kind.value
    to_state = dossier.state
    if action.event is not None:
        transition = context.workflow.transition(dossier.state, action.event)
        if transition is None or system_role not in transition.roles:
            note = f"event {action.event!r} not allowed in state {dossier.state!r}"
            if mark_action(connection, action.id, status=ActionStatus.SKIPPED, at=now, note=note):
                counts.skipped += 1
            return False
        trigger = action.event
        to_state = transition.dest
        letters += transition.letters
    if not mark_action(connection, action.id, status=ActionStatus.DONE, at=now):
        return False
    apply_step(
        connection,
        context,
        dossier,
        trigger=trigger,
        to_state=to_state,
        actor=actor,
        payload=payload,
        at=now,
        letters=letters,
        deadline=info,
        extra_values=extra,
    )
    counts.letters += len(letters)
    if action.kind is ActionKind.REMINDER:
        counts.reminders += 1
    else:
        counts.escalations += 1
    return True
