"""Filing a dossier: its row, its first event and the letters of its initial state, at once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from case_workflow.errors import DuplicateDossier
from case_workflow.records import Complainant
from case_workflow.states import Actor
from case_workflow.steps import StepContext, apply_step
from case_workflow.store.history import GENESIS_HASH, DossierRow
from case_workflow.store.registry import next_in_sequence
from case_workflow.store.tables import dossiers

__all__ = ["file_dossier", "reference_prefix"]


def reference_prefix(workflow: str) -> str:
    """Return the initials of a workflow name: ``mediator-alomrane`` gives ``MA``."""
    return "".join(part[0] for part in workflow.replace("_", "-").split("-") if part).upper()


def file_dossier(
    connection: Connection,
    context: StepContext,
    *,
    actor: Actor,
    complainant: Complainant,
    subject: str,
    respondent: str | None,
    region: str | None,
    urgent: bool,
    reference: str | None,
    external_reference: str | None,
    data: Mapping[str, Any],
    payload: Mapping[str, Any],
    at: datetime,
) -> str:
    """Insert the dossier in the workflow's initial state and return its reference.

    Without ``reference`` one is taken from the workflow's gap-free yearly sequence, such as
    ``MA-2024-000042``. Raise DuplicateDossier when the reference exists.
    """
    definition = context.workflow.definition
    if reference is None:
        year = at.astimezone(context.zone).year
        seq = next_in_sequence(connection, f"dossiers:{definition.workflow}", year)
        reference = f"{reference_prefix(definition.workflow)}-{year}-{seq:06d}"
    savepoint = connection.begin_nested()
    try:
        new_id = connection.execute(
            insert(dossiers).returning(dossiers.c.id),
            {
                "reference": reference,
                "workflow": definition.workflow,
                "workflow_version": definition.version,
                "state": definition.initial_state,
                "version": 0,
                "respondent": respondent,
                "region": region,
                "urgent": urgent,
                "escalation_level": 0,
                "subject": subject,
                "external_reference": external_reference,
                "complainant": complainant.to_dict(),
                "data": dict(data),
                "filed_at": at,
                "updated_at": at,
                "event_count": 0,
                "last_hash": GENESIS_HASH,
            },
        ).scalar_one()
    except IntegrityError:
        savepoint.rollback()
        raise DuplicateDossier(reference) from None
    savepoint.commit()
    row = DossierRow(
        id=new_id,
        reference=reference,
        workflow=definition.workflow,
        workflow_version=definition.version,
        state=definition.initial_state,
        version=0,
        event_count=0,
        last_hash=GENESIS_HASH,
        escalation_level=0,
        urgent=urgent,
        respondent=respondent,
        data=dict(data),
    )
    apply_step(
        connection,
        context,
        row,
        trigger="file",
        to_state=definition.initial_state,
        actor=actor,
        payload=payload,
        at=at,
        creation=True,
    )
    return reference
