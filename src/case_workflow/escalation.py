"""The sweep: acting once on every due reminder and escalation level.

Each batch of due actions is claimed and acted on in one transaction: the action is marked
done, the dossier changes (with its event), and the letters and outbox rows are written, or
nothing is. A crash anywhere leaves the actions pending for the next sweep; the unique key
(deadline, kind, level) and the ``pending`` condition make a replay harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from case_workflow.errors import ConcurrencyError
from case_workflow.notifications import DeadlineInfo
from case_workflow.records import ActionKind, ActionStatus
from case_workflow.states import Actor
from case_workflow.steps import StepContext, apply_step
from case_workflow.store.database import retry_when_locked, write_transaction
from case_workflow.store.history import load_dossier
from case_workflow.store.schedule import DueAction, claim_due_actions, mark_action
from case_workflow.store.tables import deadlines

__all__ = ["SweepCounts", "sweep_due_actions"]

log = logging.getLogger(__name__)

ContextLookup = Callable[[str, int], StepContext]


@dataclass
class SweepCounts:
    reminders: int = 0
    escalations: int = 0
    skipped: int = 0
    retried: int = 0
    letters: int = 0


def sweep_due_actions(
    engine: Engine, contexts: ContextLookup, *, now: datetime, batch_size: int
) -> SweepCounts:
    """Act on every action due at ``now`` that no other sweeper holds, in due order."""
    counts = SweepCounts()
    while True:
        claimed = retry_when_locked(lambda: _sweep_batch(engine, contexts, now, batch_size, counts))
        if claimed < batch_size:
            return counts


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
        for action in due:
            savepoint = connection.begin_nested()
            try:
                _act(connection, contexts, action, now, batch)
            except ConcurrencyError:
                # The claim locks the dossier row, so this should not happen. If it does, the
                # action stays pending for the next batch and the sweep goes on.
                savepoint.rollback()
                batch.retried += 1
                log.warning("sweep lost a race on dossier #%d; retrying later", action.dossier_id)
            else:
                savepoint.commit()
    counts.reminders += batch.reminders
    counts.escalations += batch.escalations
    counts.skipped += batch.skipped
    counts.retried += batch.retried
    counts.letters += batch.letters
    return len(due) if batch.retried == 0 else 0


def _act(
    connection: Connection,
    contexts: ContextLookup,
    action: DueAction,
    now: datetime,
    counts: SweepCounts,
) -> None:
    dossier = load_dossier(connection, dossier_id=action.dossier_id)
    context = contexts(dossier.workflow, dossier.workflow_version)

    definition = context.workflow.definition
    system_role = definition.system_role
    actor = Actor(
        name="sweep", role=system_role, institution=definition.roles[system_role].institution
    )
    deadline = connection.execute(
        select(deadlines.c.name, deadlines.c.due_at, deadlines.c.started_at).where(
            deadlines.c.id == action.deadline_id
        )
    ).one()
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
        explanation_text="",
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
            mark_action(connection, action.id, status=ActionStatus.SKIPPED, at=now, note=note)
            counts.skipped += 1
            return
        trigger = action.event
        to_state = transition.dest
        letters += transition.letters
    if not mark_action(connection, action.id, status=ActionStatus.DONE, at=now):
        return
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
