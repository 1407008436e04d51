"""Issuing a step's letters: registry number, rendering in each language, archive, outbox.

A letter has one registry number for all its language versions, taken from the sending
institution's yearly sequence in the step's own transaction. The outbox row, in the recipient's
language, is delivered after commit; its idempotency key lets a receiver drop duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, select

from case_workflow.calendars import load_zone
from case_workflow.notifications import DeadlineInfo, LetterInput, LetterRenderer, Party
from case_workflow.records import Complainant
from case_workflow.states import Actor, CompiledWorkflow
from case_workflow.store.history import AppendedEvent
from case_workflow.store.registry import next_in_sequence
from case_workflow.store.tables import dossiers, letters, outbox

__all__ = ["issue_letters", "registry_number"]


def registry_number(
    connection: Connection, workflow: CompiledWorkflow, sender: str, year: int
) -> str:
    """Take the next outgoing-mail number of institution ``sender`` for ``year``."""
    institution = workflow.definition.institutions.get(sender)
    registry = institution.registry if institution is not None else None
    prefix = registry.prefix if registry is not None else sender.upper()
    pattern = registry.pattern if registry is not None else "{prefix}/{year}/{seq:05d}"
    seq = next_in_sequence(connection, f"letters:{prefix}", year)
    return pattern.format(prefix=prefix, year=year, seq=seq)


def _localized(texts: Mapping[str, str], language: str, fallback: str) -> str:
    return texts.get(language) or next(iter(texts.values()), fallback)


def _party(workflow: CompiledWorkflow, code: str, language: str, dossier: Any) -> Party:
    definition = workflow.definition
    if code == "complainant":
        complainant = Complainant.from_dict(dossier.complainant)
        return Party("complainant", complainant.name, complainant.address, complainant.email)
    if code == "respondent":
        respondent_code = dossier.respondent or ""
        respondent = definition.respondents.get(respondent_code)
        if respondent is None:
            return Party(respondent_code, respondent_code)
        return Party(
            respondent_code,
            _localized(respondent.name, language, respondent_code),
            email=respondent.email or "",
        )
    institution = definition.institutions.get(code)
    if institution is None:
        return Party(code, code)
    return Party(
        code,
        _localized(institution.name, language, code),
        _localized(institution.address, language, ""),
    )


def issue_letters(
    connection: Connection,
    workflow: CompiledWorkflow,
    renderer: LetterRenderer,
    *,
    dossier_id: int,
    event: AppendedEvent,
    trigger: str,
    actor: Actor,
    payload: Mapping[str, Any],
    names: Sequence[str],
    deadline: DeadlineInfo | None,
) -> int:
    """Render, store and queue the letters ``names``; return how many versions were stored."""
    definition = workflow.definition
    dossier = connection.execute(select(dossiers).where(dossiers.c.id == dossier_id)).one()
    zone_name = definition.timezone
    local_year = event.occurred_at.astimezone(load_zone(zone_name)).year
    complainant = Complainant.from_dict(dossier.complainant)
    stored = 0
    for name in dict.fromkeys(names):
        spec = definition.letters[name]
        number = registry_number(connection, workflow, spec.sender, local_year)
        sender = definition.institutions.get(spec.sender)
        recipient_language = (
            complainant.language
            if spec.to == "complainant" and complainant.language in definition.languages
            else definition.languages[0]
        )
        for language in definition.languages:
            data = LetterInput(
                letter=name,
                language=language,
                registry_number=number,
                issued_at=event.occurred_at,
                zone=zone_name,
                subject=_localized(spec.subject, language, name),
                attachments=tuple(spec.attachments),
                sender=_party(workflow, spec.sender, language, dossier),
                sender_place=_localized(sender.place, language, "") if sender else "",
                sender_signatory=_localized(sender.signatory, language, "") if sender else "",
                recipient=_party(workflow, spec.to, language, dossier),
                dossier_reference=dossier.reference,
                external_reference=dossier.external_reference or "",
                dossier_subject=dossier.subject,
                filed_at=dossier.filed_at,
                state=dossier.state,
                complainant=Party(
                    "complainant", complainant.name, complainant.address, complainant.email
                ),
                respondent=_party(workflow, "respondent", language, dossier),
                region=dossier.region or "",
                urgent=bool(dossier.urgent),
                escalation_level=dossier.escalation_level,
                event=trigger,
                actor_name=actor.name,
                comment=str(payload.get("comment", "")),
                outcome=str(payload.get("outcome", dossier.outcome or "")),
                deadline=deadline,
            )
            rendered = renderer.render(spec.template, data)
            letter_id = connection.execute(
                insert(letters).returning(letters.c.id),
                {
                    "dossier_id": dossier_id,
                    "event_id": event.id,
                    "letter": name,
                    "language": language,
                    "registry_number": number,
                    "sender": spec.sender,
                    "recipient": spec.to,
                    "issued_at": event.occurred_at,
                    "subject": data.subject,
                    "template": spec.template,
                    "html": rendered.html,
                    "context": rendered.context,
                    "sha256": rendered.sha256,
                },
            ).scalar_one()
            stored += 1
            if language == recipient_language:
                recipient = data.recipient
                connection.execute(
                    insert(outbox),
                    {
                        "dossier_id": dossier_id,
                        "letter_id": letter_id,
                        "channel": "email" if recipient.email else "registry",
                        "recipient": recipient.email or recipient.code,
                        "idempotency_key": f"{dossier.reference}:{event.seq}:{name}",
                        "payload": {"registry_number": number, "language": language},
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": event.occurred_at,
                        "created_at": event.occurred_at,
                    },
                )
    return stored
