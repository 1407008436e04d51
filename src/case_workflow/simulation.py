"""A simulated year of complaints on the Mediator-Al Omrane workflow, driven through the engine.

Complainants file, agents of the Mediator review, transmit, request information and close, and
agents of Al Omrane's subsidiaries answer, each at a simulated instant in working hours. The
engine is swept once per working day: the sweep, never an actor, sends reminders and formal
notices and fires escalations. Every decision comes from one ``random.Random`` so that a seed
gives the same year.

The default shares and delays follow the Mediator's annual reports as reported in the press
(2020: 20 % of letters to administrations unanswered, first answer 75 days on average; 2024:
7,948 files, 5,755 within competence, 2,182 redirected, initial study 16 days, first answer
69 days, 2,366 requests for information, 1,158 urgent letters; 17 % of recommendations executed
over 2019-2023). No figure specific to Al Omrane is public, so they are settings.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from case_workflow.calendars import WorkingCalendar
from case_workflow.clock import SimulatedClock
from case_workflow.engine import Engine
from case_workflow.records import Complainant
from case_workflow.states import Actor

__all__ = ["Figures", "SimulationStats", "simulate_year"]

log = logging.getLogger(__name__)

WORKFLOW = "mediator-alomrane"
MEDIATOR = Actor(name="Agent IMR (simulation)", role="mediator_agent", institution="mediator")
RESPONDENT = Actor(
    name="Agent Al Omrane (simulation)", role="respondent_agent", institution="al-omrane"
)
OFFICE_OPENS = time(8, 30)
OFFICE_MINUTES = 8 * 60
SWEEP_TIME = time(7, 0)

SUBJECTS = (
    "Attribution d'un lot de terrain contestée",
    "Titre foncier non délivré après paiement intégral",
    "Indemnisation d'expropriation non versée",
    "Relogement dans le cadre du programme Villes sans bidonvilles",
    "Retard de livraison d'un logement",
    "Remboursement d'une avance non restituée",
    "Tirage au sort d'un lotissement contesté",
)
REDIRECTED_TO = ("Tribunal administratif", "Agence urbaine", "Conservation foncière", "Commune")
# Names that look like markup or template code: letters must print them as text.
TRICKY_SUFFIXES = (
    " <b>&amp;</b>",
    " {{ 7*7 }}",
    " {% raw %}",
    ' "Fils & Cie"',
    " <script>x</script>",
)


@dataclass(frozen=True, slots=True)
class Figures:
    """Shares (0 to 1) and mean delays (calendar days) that drive the simulated actors."""

    inadmissible_share: float = 0.08
    # 2,182 of 7,948 files were redirected in 2024; a part of them never concerns Al Omrane.
    redirected_share: float = 0.20
    withdrawn_share: float = 0.02
    # 1,158 urgent letters for 7,948 files in 2024.
    urgent_share: float = 0.15
    study_days: float = 16.0
    answer_days: float = 70.0
    unanswered_share: float = 0.20
    # 2,366 requests for information for 7,948 files in 2024.
    information_request_share: float = 0.30
    information_days: float = 25.0
    recommendation_share: float = 0.06
    recommendation_executed_share: float = 0.17
    tricky_name_share: float = 0.03
    arabic_share: float = 0.4


@dataclass
class SimulationStats:
    """Counts of the simulated year's filings, steps, sweeps and sweep letters."""

    filed: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    sweeps: int = 0
    reminders: int = 0
    escalations: int = 0
    sweep_letters: int = 0
    end: datetime | None = None


Progress = Callable[[str, int, int], None]


def simulate_year(
    engine: Engine,
    clock: SimulatedClock,
    calendar: WorkingCalendar,
    zone: ZoneInfo,
    *,
    year: int,
    dossiers: int,
    rng: random.Random,
    figures: Figures = Figures(),
    progress: Progress | None = None,
) -> SimulationStats:
    """Run one year on ``engine`` and return its counts; the clock ends at 31 December 23:59:59."""
    simulation = _Simulation(engine, clock, calendar, zone, rng, figures)
    days = [
        date(year, 1, 1) + timedelta(days=n)
        for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)
    ]
    working = [day for day in days if calendar.is_working_day(day)]
    # Each complaint lands on a working day drawn uniformly: the daily counts are multinomial,
    # which for thousands of complaints is close to independent Poisson arrivals.
    arrivals = Counter(rng.choice(working) for _ in range(dossiers))
    for done, day in enumerate(days, start=1):
        if calendar.is_working_day(day):
            simulation.sweep(simulation.local(day, SWEEP_TIME))
        for _ in range(arrivals[day]):
            simulation.schedule(simulation.office_moment(day), "file", "")
        simulation.run_until(simulation.local(day + timedelta(days=1), time(0)))
        if progress is not None:
            progress("simulate", done, len(days))
    end = simulation.local(date(year, 12, 31), time(23, 59, 59))
    simulation.sweep(end)
    simulation.stats.end = end
    return simulation.stats


class _Simulation:
    def __init__(
        self,
        engine: Engine,
        clock: SimulatedClock,
        calendar: WorkingCalendar,
        zone: ZoneInfo,
        rng: random.Random,
        figures: Figures,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.calendar = calendar
        self.zone = zone
        self.rng = rng
        self.figures = figures
        self.workflow = engine.workflow(WORKFLOW)
        self.respondents = sorted(self.workflow.definition.respondents)
        self.stats = SimulationStats()
        self.sequence = 0
        self.pending: list[tuple[datetime, int, str, str]] = []

    # -- time -------------------------------------------------------------------------

    def local(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.zone).astimezone(UTC)

    def office_moment(self, day: date) -> datetime:
        minutes = self.rng.randrange(OFFICE_MINUTES)
        start = datetime.combine(day, OFFICE_OPENS, tzinfo=self.zone)
        return (start + timedelta(minutes=minutes)).astimezone(UTC)

    def later(self, days: float) -> datetime:
        """Return an office-hours instant on the first working day ``days`` or more from now."""
        today = self.clock.now().astimezone(self.zone).date()
        day = today + timedelta(days=max(1, round(days)))
        while not self.calendar.is_working_day(day):
            day += timedelta(days=1)
        return self.office_moment(day)

    def draw_days(self, mean: float) -> float:
        # A gamma law of shape 2: positive, skewed to the right, with the given mean.
        return self.rng.gammavariate(2.0, mean / 2.0)

    # -- loop -------------------------------------------------------------------------

    def schedule(self, at: datetime, action: str, reference: str) -> None:
        self.sequence += 1
        heapq.heappush(self.pending, (at, self.sequence, action, reference))

    def sweep(self, at: datetime) -> None:
        self._move_clock(at)
        result = self.engine.sweep(at)
        self.stats.sweeps += 1
        self.stats.reminders += result.reminders
        self.stats.escalations += result.escalations
        self.stats.sweep_letters += result.letters

    def run_until(self, end: datetime) -> None:
        while self.pending and self.pending[0][0] < end:
            at, _seq, action, reference = heapq.heappop(self.pending)
            self._move_clock(at)
            getattr(self, f"_on_{action}")(reference)

    def _move_clock(self, moment: datetime) -> None:
        if moment > self.clock.now():
            self.clock.set(moment)

    def _fire(self, reference: str, event: str, actor: Actor, payload: dict[str, str]) -> bool:
        """Fire ``event`` if the dossier's current state allows it; count it either way."""
        dossier = self.engine.get(reference)
        if self.workflow.transition(dossier.state, event) is None:
            self.stats.skipped[event] += 1
            return False
        self.engine.fire(
            reference, event, actor=actor, payload=payload, expected_version=dossier.version
        )
        self.stats.fired[event] += 1
        return True

    # -- actors -----------------------------------------------------------------------

    def _on_file(self, _reference: str) -> None:
        self.stats.filed += 1
        number = self.stats.filed
        figures = self.figures
        arabic = self.rng.random() < figures.arabic_share
        name = f"مواطن {number:05d}" if arabic else f"Citoyen {number:05d}"
        if self.rng.random() < figures.tricky_name_share:
            name += self.rng.choice(TRICKY_SUFFIXES)
        complainant = Complainant(
            name=name,
            address=f"{number} rue de l'Exemple, Ville fictive",
            email=f"citoyen{number:05d}@example.invalid",
            language="ar" if arabic else "fr",
        )
        dossier = self.engine.file(
            WORKFLOW,
            actor=MEDIATOR,
            complainant=complainant,
            subject=self.rng.choice(SUBJECTS),
            respondent=self.rng.choice(self.respondents),
            urgent=self.rng.random() < figures.urgent_share,
        )
        self.schedule(self.later(self.rng.randint(1, 3)), "start_review", dossier.reference)

    def _on_start_review(self, reference: str) -> None:
        if self._fire(reference, "start_review", MEDIATOR, {}):
            self.schedule(self.later(self.draw_days(self.figures.study_days)), "decide", reference)

    def _on_decide(self, reference: str) -> None:
        figures = self.figures
        draw = self.rng.random()
        if draw < figures.inadmissible_share:
            reason = "Aucune démarche préalable auprès de l'administration"
            self._fire(
                reference, "declare_inadmissible", MEDIATOR, {"reason": reason, "comment": reason}
            )
            return
        draw -= figures.inadmissible_share
        if draw < figures.redirected_share:
            target = self.rng.choice(REDIRECTED_TO)
            comment = f"Affaire relevant de : {target}"
            self._fire(
                reference, "redirect", MEDIATOR, {"redirected_to": target, "comment": comment}
            )
            return
        draw -= figures.redirected_share
        if draw < figures.withdrawn_share:
            self._on_withdraw(reference)
            return
        respondent = self.engine.get(reference).respondent or ""
        if not self._fire(reference, "transmit", MEDIATOR, {"respondent": respondent}):
            return
        if self.rng.random() < figures.unanswered_share:
            self.schedule(self.later(self.rng.uniform(100, 160)), "unanswered", reference)
        else:
            self.schedule(self.later(self.draw_days(figures.answer_days)), "answer", reference)
        if self.rng.random() < figures.information_request_share:
            self.schedule(self.later(self.rng.uniform(5, 20)), "request_information", reference)

    def _on_request_information(self, reference: str) -> None:
        payload = {"comment": "Merci de nous adresser la copie du contrat et du reçu de paiement."}
        if not self._fire(reference, "request_information", MEDIATOR, payload):
            return
        if self.rng.random() < 0.85:
            self.schedule(
                self.later(self.draw_days(self.figures.information_days)), "resume", reference
            )
        else:
            self.schedule(self.later(self.rng.uniform(60, 90)), "withdraw", reference)

    def _on_resume(self, reference: str) -> None:
        self._fire(reference, "resume", MEDIATOR, {"comment": "Documents reçus"})

    def _on_withdraw(self, reference: str) -> None:
        payload = {"outcome": "withdrawn", "comment": "Désistement du plaignant"}
        self._fire(reference, "withdraw", MEDIATOR, payload)

    def _on_answer(self, reference: str) -> None:
        summary = "La situation du dossier a été examinée par la filiale."
        if self._fire(
            reference, "answer", RESPONDENT, {"answer_summary": summary, "comment": summary}
        ):
            self.schedule(self.later(self.rng.uniform(5, 30)), "conclude", reference)

    def _on_conclude(self, reference: str) -> None:
        if self.rng.random() < self.figures.recommendation_share:
            self._recommend(reference)
            return
        draw = self.rng.random()
        if draw < 0.5:
            outcome = "resolved"
        elif draw < 0.75:
            outcome = "partially_resolved"
        else:
            outcome = "not_resolved"
        self._fire(
            reference, "close", MEDIATOR, {"outcome": outcome, "comment": "Clôture après réponse"}
        )

    def _on_unanswered(self, reference: str) -> None:
        state = self.engine.get(reference).state
        if state in {"transmitted", "information_requested"}:
            # Still within a paused or extended delay: look again in a month.
            self.schedule(self.later(30), "unanswered", reference)
        elif state == "escalated" and self.rng.random() < 0.25:
            self._recommend(reference)
        else:
            payload = {
                "outcome": "not_resolved",
                "comment": "Absence de réponse de l'administration",
            }
            self._fire(reference, "close", MEDIATOR, payload)

    def _recommend(self, reference: str) -> None:
        summary = "Régulariser la situation foncière du plaignant."
        payload = {"recommendation_summary": summary, "comment": summary}
        if self._fire(reference, "issue_recommendation", MEDIATOR, payload):
            self.schedule(self.later(self.rng.uniform(5, 15)), "follow_up", reference)

    def _on_follow_up(self, reference: str) -> None:
        if self._fire(reference, "follow_up", MEDIATOR, {}):
            self.schedule(self.later(self.draw_days(200)), "settle", reference)

    def _on_settle(self, reference: str) -> None:
        draw = self.rng.random()
        if draw < self.figures.recommendation_executed_share:
            outcome, comment = "resolved", "Recommandation exécutée"
        elif draw < 0.5:
            outcome, comment = (
                "referred_to_head_of_government",
                "Refus signalé au Chef du gouvernement",
            )
        else:
            outcome, comment = "not_resolved", "Recommandation non exécutée"
        self._fire(reference, "close", MEDIATOR, {"outcome": outcome, "comment": comment})
