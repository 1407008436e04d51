"""Issuing a step's letters: registry number, rendering in each language, archive, outbox.

A letter has one registry number for all its language versions, taken from the sending
institution's yearly sequence in the step's own transaction, so a rolled-back step returns its
numbers. The year is the local year of the step in the workflow's time zone. The outbox row, in
the recipient's language, is delivered after commit by :mod:`case_workflow.delivery`; its
idempotency key (``REFERENCE:EVENTSEQ:LETTER``) lets a receiver drop duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from case_workflow.calendars import load_zone
from case_workflow.notifications import DeadlineInfo, LetterInput, LetterRenderer, Party
from case_workflow.records import Complainant
from case_workflow.states import Actor, CompiledWorkflow
from case_workflow.store.history import AppendedEvent
from case_workflow.store.registry import next_in_sequence
from case_workflow.store.tables import dossiers, letters, outbox

__all__ = [
    "CHANNEL_EMAIL",
    "CHANNEL_REGISTRY",
    "issue_letters",
    "registry_number",
    "registry_series",
    "registry_year",
]

# Outbox channel names: the kind of address a letter goes to (an e-mail address, or the postal
# address that the registry office prints and posts to). The delivery configuration binds each
# name to a transport (SMTP, a drop folder, a webhook).
CHANNEL_EMAIL = "email"
CHANNEL_REGISTRY = "registry"


def registry_series(workflow: CompiledWorkflow, sender: str) -> tuple[str, str, str]:
    """Return the counter series, prefix and pattern of institution ``sender``'s registry.

    The series is named after the prefix, so workflows that give an institution the same
    prefix share one sequence, as one registry office does.
    """
    institution = workflow.definition.institutions.get(sender)
    registry = institution.registry if institution is not None else None
    prefix = registry.prefix if registry is not None else sender.upper()
    pattern = registry.pattern if registry is not None else "{prefix}/{year}/{seq:05d}"
    return f"letters:{prefix}", prefix, pattern


def registry_year(moment: datetime, zone_name: str) -> int:
    """Return the registry year of the aware instant ``moment``: its local year in the zone."""
    return moment.astimezone(load_zone(zone_name)).year


def registry_number(
    connection: Connection, workflow: CompiledWorkflow, sender: str, year: int
) -> str:
    """Take the next outgoing-mail number of institution ``sender`` for ``year``.

    The number belongs to the caller's transaction: a rollback returns it.
    """
    series, prefix, pattern = registry_series(workflow, sender)
    # NOTE: the workflow model accepts a pattern without {year}; its numbers then repeat
    # from one year to the next, because the sequence restarts at 1.
    seq = next_in_sequence(connection, series, year)
    return pattern.format(prefix=prefix, year=year, seq=seq)


def _take_numbers(
    connection: Connection, workflow: CompiledWorkflow, names: Sequence[str], year: int
) -> dict[str, str]:
    """Number the letters ``names``, taking the counters in a fixed order of series.

    Two steps that number letters of two institutions in opposite orders would otherwise
    lock the two counter rows in opposite orders and deadlock on PostgreSQL.
    """
    definition = workflow.definition
    by_series = sorted(
        names, key=lambda name: registry_series(workflow, definition.letters[name].sender)[0]
    )
    return {
        name: registry_number(connection, workflow, definition.letters[name].sender, year)
        for name in by_series
    }


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
    unique_names = list(dict.fromkeys(names))
    numbers = _take_numbers(
        connection, workflow, unique_names, registry_year(event.occurred_at, zone_name)
    )
    complainant = Complainant.from_dict(dossier.complainant)
    stored = 0
    for name in unique_names:
        spec = definition.letters[name]
        number = numbers[name]
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
                        "channel": CHANNEL_EMAIL if recipient.email else CHANNEL_REGISTRY,
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
