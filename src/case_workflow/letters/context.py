"""The data a letter is rendered from, and the template context built from it.

The engine passes a :class:`LetterInput`. :func:`build_context` turns it into a JSON-safe
dictionary of dictionaries (dates already formatted for the letter's language), which is stored
beside the letter so that the same HTML can be rendered again without the engine.
:func:`letter_context_schema` lists the names and attributes that dictionary provides; the static
template checks use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from case_workflow.letters.dates import format_hijri, format_long_date, local_date
from case_workflow.zones import load_zone

__all__ = [
    "DeadlineInfo",
    "LetterInput",
    "Party",
    "build_context",
    "letter_context_schema",
    "text_direction",
]

_RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})

_PARTY_FIELDS = frozenset({"code", "name", "address", "email"})

_SCHEMA: dict[str, frozenset[str]] = {
    "letter": frozenset(
        {
            "name",
            "language",
            "direction",
            "registry_number",
            "subject",
            "attachments",
            "date",
            "date_hijri",
            "date_iso",
        }
    ),
    "sender": _PARTY_FIELDS | {"place", "signatory"},
    "recipient": _PARTY_FIELDS,
    "complainant": _PARTY_FIELDS,
    "respondent": _PARTY_FIELDS,
    "dossier": frozenset(
        {
            "reference",
            "external_reference",
            "subject",
            "filed_on",
            "filed_on_hijri",
            "filed_at",
            "state",
            "region",
            "urgent",
            "escalation_level",
        }
    ),
    "event": frozenset({"name", "actor", "comment", "outcome"}),
}

_DEADLINE_SCHEMA = frozenset(
    {
        "name",
        "due_on",
        "due_on_hijri",
        "due_at",
        "started_on",
        "started_on_hijri",
        "days_overdue",
        "level",
        "explanation",
    }
)


@dataclass(frozen=True)
class Party:
    """A sender or receiver of letters: an institution, a respondent or a complainant."""

    code: str
    name: str
    address: str = ""
    email: str = ""


@dataclass(frozen=True)
class DeadlineInfo:
    """The deadline a reminder, formal notice, escalation or extension letter is about."""

    name: str
    due_at: datetime
    started_at: datetime
    days_overdue: int
    level: int
    explanation_text: str


@dataclass(frozen=True)
class LetterInput:
    """Raw data for one letter, as the engine gathers it at the moment the letter is issued.

    Instants are aware datetimes, printed as local dates in ``zone``. ``subject`` and
    ``sender.name`` are already in the letter's language. ``dossier_subject``, ``comment`` and
    the complainant's fields are citizen or agent text: templates receive them as data, escaped.
    """

    letter: str
    language: str
    registry_number: str
    issued_at: datetime
    zone: str
    subject: str
    attachments: tuple[str, ...]
    sender: Party
    sender_place: str
    sender_signatory: str
    recipient: Party
    dossier_reference: str
    external_reference: str
    dossier_subject: str
    filed_at: datetime
    state: str
    complainant: Party
    respondent: Party
    region: str
    urgent: bool
    escalation_level: int
    event: str
    actor_name: str
    comment: str
    outcome: str
    deadline: DeadlineInfo | None = None


def text_direction(language: str) -> str:
    """Return ``"rtl"`` for right-to-left languages (Arabic and others), else ``"ltr"``."""
    base = re.split(r"[_-]", language, maxsplit=1)[0]
    return "rtl" if base in _RTL_LANGUAGES else "ltr"


def letter_context_schema(*, with_deadline: bool) -> dict[str, frozenset[str]]:
    """Return the context's top-level names, each with the attribute names it provides.

    ``deadline`` is present only when ``with_deadline`` is true: letters triggered by a
    deadline (reminder, formal notice, escalation, extension) receive it, the others do not.
    """
    schema = dict(_SCHEMA)
    if with_deadline:
        schema["deadline"] = _DEADLINE_SCHEMA
    return schema


def _party(party: Party) -> dict[str, object]:
    return {
        "code": party.code,
        "name": party.name,
        "address": party.address,
        "email": party.email,
    }


def build_context(data: LetterInput) -> dict[str, object]:
    """Build the JSON-safe template context of ``data``.

    Dates are formatted here, for ``data.language`` and in ``data.zone``, so that rendering
    again from the stored context needs neither the time zone data nor the calendars.
    Raises :class:`~case_workflow.errors.InvalidInput` for an unknown zone or language, or a
    naive datetime.
    """
    zone = load_zone(data.zone)
    language = data.language
    issued_on = local_date(data.issued_at, zone)
    filed_on = local_date(data.filed_at, zone)

    context: dict[str, object] = {
        "letter": {
            "name": data.letter,
            "language": language,
            "direction": text_direction(language),
            "registry_number": data.registry_number,
            "subject": data.subject,
            "attachments": list(data.attachments),
            "date": format_long_date(issued_on, language),
            "date_hijri": format_hijri(issued_on),
            "date_iso": issued_on.isoformat(),
        },
        "sender": {
            **_party(data.sender),
            "place": data.sender_place,
            "signatory": data.sender_signatory,
        },
        "recipient": _party(data.recipient),
        "complainant": _party(data.complainant),
        "respondent": _party(data.respondent),
        "dossier": {
            "reference": data.dossier_reference,
            "external_reference": data.external_reference,
            "subject": data.dossier_subject,
            "filed_on": format_long_date(filed_on, language),
            "filed_on_hijri": format_hijri(filed_on),
            "filed_at": filed_on.isoformat(),
            "state": data.state,
            "region": data.region,
            "urgent": data.urgent,
            "escalation_level": data.escalation_level,
        },
        "event": {
            "name": data.event,
            "actor": data.actor_name,
            "comment": data.comment,
            "outcome": data.outcome,
        },
    }
    if data.deadline is not None:
        context["deadline"] = _deadline(data.deadline, language, zone_key=data.zone)
    return context


def _deadline(info: DeadlineInfo, language: str, *, zone_key: str) -> dict[str, object]:
    zone = load_zone(zone_key)
    due_on = local_date(info.due_at, zone)
    started_on = local_date(info.started_at, zone)
    return {
        "name": info.name,
        "due_on": format_long_date(due_on, language),
        "due_on_hijri": format_hijri(due_on),
        "due_at": info.due_at.astimezone(zone).isoformat(),
        "started_on": format_long_date(started_on, language),
        "started_on_hijri": format_hijri(started_on),
        "days_overdue": info.days_overdue,
        "level": info.level,
        "explanation": info.explanation_text,
    }
