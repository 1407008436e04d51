"""Read-only queries that return snapshots (records) of stored rows."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select

from case_workflow.errors import DossierNotFound
from case_workflow.records import (
    ActionKind,
    ActionStatus,
    Deadline,
    DeadlineStatus,
    Dossier,
    Letter,
)
from case_workflow.store.history import to_dossier
from case_workflow.store.tables import deadline_actions, deadlines, dossiers, events, letters

__all__ = ["dossier_id", "get_dossier", "list_deadlines", "list_dossiers", "list_letters"]


def dossier_id(connection: Connection, reference: str) -> int:
    found = connection.execute(
        select(dossiers.c.id).where(dossiers.c.reference == reference)
    ).scalar_one_or_none()
    if found is None:
        raise DossierNotFound(reference)
    return int(found)


_DOSSIER_BY_REFERENCE = select(dossiers).where(dossiers.c.reference == bindparam("reference"))


def get_dossier(connection: Connection, reference: str) -> Dossier:
    row = connection.execute(_DOSSIER_BY_REFERENCE, {"reference": reference}).first()
    if row is None:
        raise DossierNotFound(reference)
    return to_dossier(row)


def list_deadlines(connection: Connection, reference: str) -> list[Deadline]:
    owner = dossier_id(connection, reference)
    action_rows = connection.execute(
        select(
            deadline_actions.c.deadline_id,
            deadline_actions.c.kind,
            deadline_actions.c.level,
            deadline_actions.c.fire_at,
            deadline_actions.c.status,
        )
        .where(deadline_actions.c.dossier_id == owner)
        .order_by(deadline_actions.c.fire_at)
    ).all()
    result = []
    for row in connection.execute(
        select(deadlines).where(deadlines.c.dossier_id == owner).order_by(deadlines.c.id)
    ):
        actions = tuple(
            (ActionKind(a.kind), a.level, a.fire_at, ActionStatus(a.status))
            for a in action_rows
            if a.deadline_id == row.id
        )
        result.append(
            Deadline(
                name=row.name,
                state=row.state,
                status=DeadlineStatus(row.status),
                rule=row.rule,
                started_at=row.started_at,
                due_at=row.due_at,
                paused_at=row.paused_at,
                remaining=row.remaining,
                closed_at=row.closed_at,
                rests_on_estimate=bool(row.rests_on_estimate),
                explanation=dict(row.explanation),
                actions=actions,
            )
        )
    return result


def list_letters(connection: Connection, reference: str) -> list[Letter]:
    owner = dossier_id(connection, reference)
    rows = connection.execute(
        select(letters, events.c.seq)
        .join(events, events.c.id == letters.c.event_id)
        .where(letters.c.dossier_id == owner)
        .order_by(letters.c.id)
    )
    return [
        Letter(
            letter=row.letter,
            language=row.language,
            registry_number=row.registry_number,
            sender=row.sender,
            recipient=row.recipient,
            issued_at=row.issued_at,
            subject=row.subject,
            template=row.template,
            html=row.html,
            sha256=row.sha256,
            event_seq=row.seq,
            context=dict(row.context),
        )
        for row in rows
    ]


def list_dossiers(
    connection: Connection,
    *,
    state: str | None,
    respondent: str | None,
    workflow: str | None,
    limit: int,
) -> list[Dossier]:
    query = select(dossiers).order_by(dossiers.c.id).limit(limit)
    if state is not None:
        query = query.where(dossiers.c.state == state)
    if respondent is not None:
        query = query.where(dossiers.c.respondent == respondent)
    if workflow is not None:
        query = query.where(dossiers.c.workflow == workflow)
    return [to_dossier(row) for row in connection.execute(query)]
