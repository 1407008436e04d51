"""The explanation of a due date: every fact needed to justify it to a complainant or an auditor.

:class:`Explanation` records the start, the time zone and its UTC offsets, each day that was
counted or skipped and why, pauses, extensions, a roll-forward and the estimated holiday dates the
result depends on. It renders as text in English or French and as a JSON-safe dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from case_workflow.calendars import Holiday, HolidayStatus
from case_workflow.definition.model import DueTime
from case_workflow.durations import Duration, TimeUnit
from case_workflow.errors import InvalidInput

__all__ = ["LANGUAGES", "DayStep", "Explanation", "Extension", "Pause", "summarize"]

LANGUAGES = ("en", "fr")

_WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
}
_UNITS = {
    "en": {
        TimeUnit.CALENDAR_DAYS: "calendar days",
        TimeUnit.WORKING_DAYS: "working days",
        TimeUnit.WORKING_HOURS: "working hours",
        TimeUnit.HOURS: "hours",
    },
    "fr": {
        TimeUnit.CALENDAR_DAYS: "jours calendaires",
        TimeUnit.WORKING_DAYS: "jours ouvrables",
        TimeUnit.WORKING_HOURS: "heures ouvrables",
        TimeUnit.HOURS: "heures",
    },
}
_STATUSES_FR = {
    HolidayStatus.FIXED: "date fixe",
    HolidayStatus.OBSERVED: "date observée",
    HolidayStatus.ESTIMATED: "date estimée",
    HolidayStatus.EXCEPTIONAL: "congé exceptionnel",
    HolidayStatus.DECLARED: "déclaré",
}
# French names of the holidays in the shipped Moroccan calendars; other names stay as they are.
_HOLIDAY_NAMES_FR = {
    "New Year's Day": "Nouvel an",
    "Proclamation of Independence Day": "Manifeste de l'indépendance",
    "Amazigh New Year": "Nouvel an amazigh",
    "Labour Day": "Fête du travail",
    "Throne Day": "Fête du Trône",
    "Oued Ed-Dahab Day": "Journée de Oued Ed-Dahab",
    "Revolution of the King and the People": "Révolution du Roi et du Peuple",
    "Youth Day": "Fête de la jeunesse",
    "Unity Day": "Fête de l'unité",
    "Green March": "Marche verte",
    "Independence Day": "Fête de l'indépendance",
    "Islamic New Year": "Nouvel an de l'hégire",
    "Mawlid": "Aïd al-Mawlid",
    "Eid al-Fitr": "Aïd al-Fitr",
    "Eid al-Adha": "Aïd al-Adha",
}
_LABELS = {
    "en": {
        "title": "Deadline: {duration} (calendar {calendar}, time zone {zone})",
        "start": "Start: {local} local time (UTC{offset}), {utc}",
        "counted_run": "{first} to {last}: {count} days counted ({from_n} to {to_n})",
        "counted_one": "{day}: counted ({n})",
        "skipped": "{day}: not counted, {reason}",
        "pause": "Paused at {paused}, resumed at {resumed} with {left} left",
        "extension": "Extended by {extra}: from {previous} to {new}",
        "rolled": "Rolled forward from {day}, a non-working day, to the next working day",
        "due": "Due: {local} local time (UTC{offset}), {utc}",
        "estimated": "Rests on estimated holiday dates, which may move when announced: {days}",
        "same_time": "The due time keeps the time of day of the start.",
    },
    "fr": {
        "title": "Délai : {duration} (calendrier {calendar}, fuseau horaire {zone})",
        "start": "Départ : {local} heure locale (UTC{offset}), {utc}",
        "counted_run": "Du {first} au {last} : {count} jours comptés ({from_n} à {to_n})",
        "counted_one": "{day} : compté ({n})",
        "skipped": "{day} : non compté, {reason}",
        "pause": "Suspendu le {paused}, repris le {resumed} avec {left} restants",
        "extension": "Prorogé de {extra} : du {previous} au {new}",
        "rolled": "Reporté du {day}, jour non ouvrable, au jour ouvrable suivant",
        "due": "Échéance : {local} heure locale (UTC{offset}), {utc}",
        "estimated": "Repose sur des dates de fêtes estimées, sujettes à annonce : {days}",
        "same_time": "L'heure d'échéance reprend l'heure du départ.",
    },
}


@dataclass(frozen=True, slots=True)
class DayStep:
    """One local date after the start: counted toward the delay, or skipped and why.

    ``reason`` is set when the day is skipped: a weekend, a holiday with its status, or
    "outside working hours" for a working-hours delay.
    """

    day: date
    counted: bool
    reason: str | None = None
    holidays: tuple[Holiday, ...] = ()
    weekend: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    """A stop of the clock: when it stopped (if known), when it restarted, and what was left."""

    paused_at: datetime | None
    resumed_at: datetime
    left: Duration


@dataclass(frozen=True, slots=True)
class Extension:
    """An extension granted on a deadline, recorded as its own event."""

    previous_due: datetime
    extra: Duration
    new_due: datetime


@dataclass(frozen=True)
class Explanation:
    """Everything needed to justify a due date. Instants are aware; ``start`` is in UTC."""

    start: datetime
    start_local: datetime
    duration: Duration
    timezone: str
    utc_offset_at_start: str
    utc_offset_at_due: str
    steps: tuple[DayStep, ...]
    pauses: tuple[Pause, ...]
    extensions: tuple[Extension, ...]
    rolled_forward_from: date | None
    due_at: datetime
    due_local: datetime
    estimated_holidays: tuple[Holiday, ...]
    calendar: str = ""
    at: DueTime = DueTime.END_OF_DAY

    def to_text(self, language: str = "en") -> str:
        """Render the explanation as lines of text in ``language`` ("en" or "fr")."""
        if language not in _LABELS:
            raise InvalidInput(
                f"invalid explanation language {language!r}; use one of: {', '.join(LANGUAGES)}"
            )
        labels = _LABELS[language]

        lines = [
            labels["title"].format(
                duration=_duration_text(self.duration, language),
                calendar=self.calendar or "-",
                zone=self.timezone,
            ),
            labels["start"].format(
                local=_local_text(self.start_local),
                offset=self.utc_offset_at_start,
                utc=_utc_text(self.start),
            ),
        ]
        lines.extend("  " + line for line in self._step_lines(language))

        if self.rolled_forward_from is not None:
            lines.append(labels["rolled"].format(day=_day_text(self.rolled_forward_from, language)))
        for extension in self.extensions:
            lines.append(
                labels["extension"].format(
                    extra=_duration_text(extension.extra, language),
                    previous=_utc_text(extension.previous_due),
                    new=_utc_text(extension.new_due),
                )
            )
        if self.at is DueTime.SAME_TIME:
            lines.append(labels["same_time"])

        lines.append(
            labels["due"].format(
                local=_local_text(self.due_local),
                offset=self.utc_offset_at_due,
                utc=_utc_text(self.due_at),
            )
        )

        if self.estimated_holidays:
            days = ", ".join(
                f"{holiday.day.isoformat()} {_holiday_text(holiday, language)}"
                for holiday in self.estimated_holidays
            )
            lines.append(labels["estimated"].format(days=days))
        return "\n".join(lines)

    def _step_lines(self, language: str) -> list[str]:
        """Return one line per skipped day and one per run of consecutive counted days."""
        labels = _LABELS[language]
        lines: list[str] = []
        counted = 0
        run: list[DayStep] = []

        def flush() -> None:
            if not run:
                return
            if len(run) == 1:
                day = _day_text(run[0].day, language)
                lines.append(labels["counted_one"].format(day=day, n=counted))
            else:
                lines.append(
                    labels["counted_run"].format(
                        first=_day_text(run[0].day, language),
                        last=_day_text(run[-1].day, language),
                        count=len(run),
                        from_n=counted - len(run) + 1,
                        to_n=counted,
                    )
                )
            run.clear()

        pauses = list(self.pauses)
        zone = self.start_local.tzinfo

        def pause_line(pause: Pause) -> str:
            return labels["pause"].format(
                paused=_utc_text(pause.paused_at) if pause.paused_at else "-",
                resumed=_utc_text(pause.resumed_at),
                left=_duration_text(pause.left, language),
            )

        for step in self.steps:
            # A pause goes between the last day counted before it and the first day after it.
            while pauses and pauses[0].resumed_at.astimezone(zone).date() < step.day:
                flush()
                lines.append(pause_line(pauses.pop(0)))
            if run and run[-1].day + timedelta(days=1) != step.day:
                flush()
            if step.counted:
                counted += 1
                run.append(step)
                continue
            flush()
            reason = _reason_text(step, language)
            lines.append(labels["skipped"].format(day=_day_text(step.day, language), reason=reason))
        flush()
        lines.extend(pause_line(pause) for pause in pauses)
        return lines

    def to_dict(self) -> dict[str, object]:
        """Return the explanation as JSON-safe values: ISO 8601 strings, numbers, lists."""
        return {
            "calendar": self.calendar,
            "timezone": self.timezone,
            "duration": str(self.duration),
            "at": self.at.value,
            "start": _utc_text(self.start),
            "start_local": self.start_local.isoformat(),
            "utc_offset_at_start": self.utc_offset_at_start,
            "steps": [
                {"day": step.day.isoformat(), "counted": step.counted, "reason": step.reason}
                for step in self.steps
            ],
            "pauses": [
                {
                    "paused_at": _utc_text(pause.paused_at) if pause.paused_at else None,
                    "resumed_at": _utc_text(pause.resumed_at),
                    "left": str(pause.left),
                }
                for pause in self.pauses
            ],
            "extensions": [
                {
                    "previous_due": _utc_text(extension.previous_due),
                    "extra": str(extension.extra),
                    "new_due": _utc_text(extension.new_due),
                }
                for extension in self.extensions
            ],
            "rolled_forward_from": (
                self.rolled_forward_from.isoformat() if self.rolled_forward_from else None
            ),
            "due_at": _utc_text(self.due_at),
            "due_local": self.due_local.isoformat(),
            "utc_offset_at_due": self.utc_offset_at_due,
            "estimated_holidays": [
                {
                    "day": holiday.day.isoformat(),
                    "name": holiday.name,
                    "status": holiday.status.value,
                    "source": holiday.source,
                }
                for holiday in self.estimated_holidays
            ],
        }


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _day_text(day: date, language: str) -> str:
    return f"{day.isoformat()} ({_WEEKDAYS[language][day.weekday()]})"


def _duration_text(duration: Duration, language: str) -> str:
    return f"{duration.amount} {_UNITS[language][duration.unit]}"


def _holiday_text(holiday: Holiday, language: str) -> str:
    if language == "fr":
        name = _HOLIDAY_NAMES_FR.get(holiday.name, holiday.name)
        return f"{name} ({_STATUSES_FR[holiday.status]})"
    return holiday.describe()


def _reason_text(step: DayStep, language: str) -> str:
    if language == "en":
        return step.reason or "-"
    parts = [_holiday_text(holiday, language) for holiday in step.holidays]
    if step.weekend:
        parts.append(f"week-end ({_WEEKDAYS['fr'][step.day.weekday()]})")
    if not parts and step.reason:
        parts.append("hors des heures ouvrables")
    return ", ".join(parts) or "-"


_SUMMARY = {
    "en": (
        "{duration} from {start}, due {due} ({zone} time, UTC{offset})",
        "; the clock was paused and resumed",
        "; extended by {extra}",
    ),
    "fr": (
        "{duration} à compter du {start}, échéance le {due} (heure de {zone}, UTC{offset})",
        " ; le délai a été suspendu puis repris",
        " ; prorogé de {extra}",
    ),
}


def summarize(stored: Mapping[str, Any], language: str = "en") -> str:
    """Return a one-sentence account of a stored explanation (``to_dict`` output), for letters.

    Return "" when the stored explanation lacks the needed fields, as for a due instant taken
    from a payload field.
    """
    lines = _SUMMARY.get(language, _SUMMARY["en"])
    try:
        duration = Duration.parse(str(stored["duration"]))
        start = datetime.fromisoformat(str(stored["start_local"]))
        due = datetime.fromisoformat(str(stored["due_local"]))
    except (KeyError, ValueError):
        return ""
    text = lines[0].format(
        duration=_duration_text(duration, language if language in _UNITS else "en"),
        start=start.strftime("%d/%m/%Y"),
        due=due.strftime("%d/%m/%Y %H:%M:%S"),
        zone=stored.get("timezone", ""),
        offset=stored.get("utc_offset_at_due", ""),
    )
    if stored.get("pauses") or stored.get("resumed_from_pause"):
        text += lines[1]
    for extension in list(stored.get("extensions_granted", [])):
        extra = Duration.parse(str(extension["extra"]))
        text += lines[2].format(
            extra=_duration_text(extra, language if language in _UNITS else "en")
        )
    return text
