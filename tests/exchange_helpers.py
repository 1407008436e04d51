"""Helpers shared by the exchange tests and the peer process script.

Two sides (the Mediator and Al Omrane), each an Engine with its own database, keys and
Exchange; an in-process transport that hands a body straight to the peer's ``receive``; agent
policies that move dossiers the way each back office would; and the agreement check.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from case_workflow import Actor, Complainant, Engine, SimulatedClock
from case_workflow.clock import Clock
from case_workflow.exchange import (
    Exchange,
    ExchangeMapping,
    KeyRing,
    OutboundMessage,
    Receipt,
    RetryPolicy,
    generate_key_pair,
    load_mapping,
)
from case_workflow.exchange.transport import MessageRejected, ReceiptStatus

ROOT = Path(__file__).resolve().parents[1]
MAPPING_FILE = ROOT / "workflows" / "exchange-mediator-alomrane.yaml"
RESPONDENT_FILE = ROOT / "workflows" / "alomrane-respondent.yaml"

MEDIATOR = "mediator"
ALOMRANE = "al-omrane"

MEDIATOR_AGENT = Actor(name="Agent Alaoui", role="mediator_agent", institution=MEDIATOR)
RESPONDENT_AGENT = Actor(name="Agent Bennani", role="respondent_agent", institution=ALOMRANE)
START = datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
FAST_RETRY = RetryPolicy(
    first_delay=timedelta(milliseconds=20), max_delay=timedelta(milliseconds=400), max_attempts=1000
)


def make_keys(folder: Path) -> None:
    """Write a key pair for each institution into ``folder``."""
    for institution in (MEDIATOR, ALOMRANE):
        generate_key_pair(folder, institution)


def key_ring(folder: Path, institution: str) -> KeyRing:
    peer = ALOMRANE if institution == MEDIATOR else MEDIATOR
    return KeyRing.from_files(
        institution, folder / f"{institution}.key", {peer: folder / f"{peer}.pub"}
    )


def load_exchange_mapping() -> ExchangeMapping:
    return load_mapping(MAPPING_FILE)


def open_side(
    url: str,
    institution: str,
    keys_folder: Path,
    *,
    clock: SimulatedClock | None = None,
    relay_clock: Clock | None = None,
    mapping: ExchangeMapping | None = None,
    retry: RetryPolicy = FAST_RETRY,
) -> Exchange:
    """Open an engine with its exchange on the database at ``url``, creating the schema."""
    mapping = mapping or load_exchange_mapping()
    workflow = mapping.workflow_of(institution)
    engine = Engine(url, workflows=[workflow], clock=clock or SimulatedClock(START))
    engine.create_schema()
    return Exchange(
        engine, mapping, key_ring(keys_folder, institution), clock=relay_clock, retry=retry
    )


class DirectTransport:
    """Hands each body straight to the peer side's ``receive``, as a perfect network would."""

    def __init__(self, sides: Mapping[str, Exchange]) -> None:
        self.sides = sides

    def send(self, message: OutboundMessage) -> Receipt:
        receipt = self.sides[message.recipient].receive(message.body)
        if receipt.status is ReceiptStatus.REJECTED:
            raise MessageRejected(message.message_id, receipt.reason, receipt.detail)
        return receipt


def file_and_transmit(mediator: Exchange, count: int, *, seed: int = 0) -> list[str]:
    """File ``count`` dossiers at the Mediator and transmit each to Al Omrane."""
    engine = mediator.engine
    respondents = sorted(engine.workflow("mediator-alomrane").definition.respondents)
    chooser = random.Random(seed)
    references = []
    for index in range(count):
        dossier = engine.file(
            "mediator-alomrane",
            actor=MEDIATOR_AGENT,
            complainant=Complainant(name=f"Complainant {index}", language="fr"),
            subject=f"Title deed not delivered, lot {index}",
            respondent=chooser.choice(respondents),
        )
        engine.fire(dossier.reference, "start_review", actor=MEDIATOR_AGENT)
        engine.fire(
            dossier.reference,
            "transmit",
            actor=MEDIATOR_AGENT,
            payload={"respondent": dossier.respondent},
        )
        references.append(dossier.reference)
    return references


@dataclass
class Policy:
    """How each back office moves its dossiers, decided per dossier by a seeded generator."""

    seed: int = 0

    def _draw(self, reference: str, salt: str) -> float:
        return random.Random(f"{self.seed}:{reference}:{salt}").random()

    def respondent_step(self, engine: Engine, reference: str, state: str) -> bool:
        """Take Al Omrane's next step on one dossier; return True if an event was fired."""
        actor = RESPONDENT_AGENT
        if state == "received" and self._draw(reference, "ack") < 0.7:
            engine.fire(reference, "acknowledge", actor=actor)
            return True
        if state in {"received", "acknowledged"}:
            draw = self._draw(reference, f"act:{state}")
            if draw < 0.2:
                engine.fire(reference, "request_information", actor=actor)
                return True
            if draw < 0.85:
                engine.fire(
                    reference, "answer", actor=actor, payload={"answer_summary": "Deed issued"}
                )
                return True
            return False  # left unanswered: the Mediator's sweep escalates it
        if state == "escalated" and self._draw(reference, "late") < 0.5:
            engine.fire(reference, "answer", actor=actor, payload={"answer_summary": "Late"})
            return True
        return False

    def mediator_step(self, engine: Engine, reference: str, state: str) -> bool:
        """Take the Mediator's next step on one dossier; return True if an event was fired."""
        actor = MEDIATOR_AGENT
        if state == "information_requested":
            engine.fire(reference, "resume", actor=actor)
            return True
        if state == "answered":
            if self._draw(reference, "recommend") < 0.2:
                engine.fire(
                    reference,
                    "issue_recommendation",
                    actor=actor,
                    payload={"recommendation_summary": "Deliver the title deed"},
                )
            else:
                engine.fire(reference, "close", actor=actor, payload={"outcome": "resolved"})
            return True
        if state in {"escalated", "recommendation_issued"}:
            engine.fire(reference, "close", actor=actor, payload={"outcome": "not_resolved"})
            return True
        return False


def act(side: Exchange, policy: Policy, *, limit: int = 10_000) -> int:
    """Run one round of ``side``'s policy over its open dossiers; return the events fired."""
    engine = side.engine
    fired = 0
    for linked in side.linked_dossiers()[:limit]:
        if linked.reference is None or linked.state is None:
            continue
        if side.institution == MEDIATOR:
            fired += policy.mediator_step(engine, linked.reference, linked.state)
        else:
            fired += policy.respondent_step(engine, linked.reference, linked.state)
    return fired


def disagreements(mediator: Exchange, respondent: Exchange) -> list[tuple[str, str, str | None]]:
    """Return (Mediator reference, Mediator state, Al Omrane state) for every disagreement."""
    at_respondent = {linked.peer_reference: linked.state for linked in respondent.linked_dossiers()}
    found = []
    for linked in mediator.linked_dossiers():
        assert linked.reference is not None and linked.state is not None
        other = at_respondent.get(linked.reference)
        states = {MEDIATOR: linked.state, ALOMRANE: other}
        if not mediator.mapping.agree(states):
            found.append((linked.reference, linked.state, other))
    return found


def applied_message_ids(side: Exchange) -> list[str]:
    """Return the ids of the peer's messages recorded in ``side``'s dossier histories."""
    engine = side.engine
    ids = []
    for linked in side.linked_dossiers():
        if linked.reference is None:
            continue
        for event in engine.history(linked.reference):
            marker = event.payload.get("received_message")
            if isinstance(marker, dict):
                ids.append(str(marker["id"]))
    return ids
