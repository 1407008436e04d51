"""Filing a dossier: its row, its first event and the letters of its initial state, at once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from case_workflow.definition.model import WorkflowDefinition
from case_workflow.errors import DuplicateDossier, InvalidInput
from case_workflow.records import Complainant
from case_workflow.states import Actor
from case_workflow.steps import StepContext, apply_step
from case_workflow.store.history import GENESIS_HASH, DossierRow
from case_workflow.store.registry import next_in_sequence
from case_workflow.store.tables import dossiers

__all__ = ["check_filing", "file_dossier", "reference_prefix"]

_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Limits far above real names and subjects, so a pasted document is caught at the door.
_MAX_LENGTHS = {"name": 300, "address": 1000, "email": 200, "subject": 2000}


def _check_text(field: str, value: str, *, required: bool) -> None:
    if required and not value.strip():
        raise InvalidInput(f"the {field} is empty; give the complainant's {field}")
    if len(value) > _MAX_LENGTHS[field]:
        raise InvalidInput(
            f"the {field} has {len(value):,} characters, more than {_MAX_LENGTHS[field]:,}; "
            "shorten it"
        )
    if _CONTROL.search(value):
        raise InvalidInput(f"the {field} contains control characters; remove them: {value[:40]!r}")


def check_filing(
    definition: WorkflowDefinition,
    *,
    actor: Actor,
    complainant: Complainant,
    subject: str,
    reference: str | None,
) -> None:
    """Reject a filing whose actor, complainant, subject or reference is invalid."""
    roles = definition.roles

    if actor.role not in roles:
        raise InvalidInput(
            f"unknown role {actor.role!r}; roles of {definition.workflow!r}: "
            f"{', '.join(sorted(roles))}"
        )
    if actor.role == definition.system_role:
        raise InvalidInput(
            f"role {actor.role!r} is reserved for the engine's sweeps; file as a person's role"
        )
    if actor.institution != roles[actor.role].institution:
        raise InvalidInput(
            f"role {actor.role!r} belongs to institution {roles[actor.role].institution!r}, "
            f"not {actor.institution!r}; give the role's institution"
        )

    _check_text("name", complainant.name, required=True)
    _check_text("address", complainant.address, required=False)
    _check_text("email", complainant.email, required=False)
    _check_text("subject", subject, required=True)
    if complainant.email and ("@" not in complainant.email or " " in complainant.email):
        raise InvalidInput(
            f"invalid e-mail address {complainant.email!r}; give an address such as name@example.org"
        )

    if complainant.language not in definition.languages:
        raise InvalidInput(
            f"complainant language {complainant.language!r} is not a language of "
            f"{definition.workflow!r}; use one of: {', '.join(definition.languages)}"
        )
    if reference is not None and not _REFERENCE.match(reference):
        raise InvalidInput(
            f"invalid reference {reference!r}; use up to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


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
