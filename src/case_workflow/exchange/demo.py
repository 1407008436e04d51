"""A two-sided demonstration: the Mediator and Al Omrane exchanging dossiers through drop folders.

:func:`run_two_sided_demo` builds both sides in ``output`` (a SQLite database and a key pair
each, and an inbox folder each), files dossiers at the Mediator, transmits them, lets seeded
agents at both institutions acknowledge, ask for information, answer, remind, escalate and
close, and slips in one tampered message to show that the receiver rejects it. The result
lists, for each side, its dossiers, the messages exchanged and the rejected ones.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from case_workflow.clock import SimulatedClock
from case_workflow.engine import Engine
from case_workflow.errors import InvalidInput
from case_workflow.exchange.folder import FolderReceiver, FolderTransport, write_atomically
from case_workflow.exchange.keys import KeyRing, generate_key_pair
from case_workflow.exchange.mapping import load_mapping
from case_workflow.exchange.service import Exchange, LinkedDossier, RejectedMessage
from case_workflow.records import Complainant
from case_workflow.states import Actor

__all__ = ["SideSummary", "TwoSidedResult", "run_two_sided_demo"]

MEDIATOR = "mediator"
ALOMRANE = "al-omrane"
MAPPING_NAME = "exchange-mediator-alomrane.yaml"
START = datetime(2024, 1, 15, 8, 0, tzinfo=UTC)
_MEDIATOR_AGENT = Actor("Mediator agent", "mediator_agent", MEDIATOR)
_RESPONDENT_AGENT = Actor("Al Omrane agent", "respondent_agent", ALOMRANE)


@dataclass(frozen=True)
class SideSummary:
    """Contents of one institution's side at the end of the demonstration."""

    institution: str
    database: Path
    dossiers: tuple[LinkedDossier, ...]
    sent: dict[str, int]
    received: dict[str, int]
    rejected: tuple[RejectedMessage, ...]


@dataclass(frozen=True)
class TwoSidedResult:
    """Both sides of the demonstration, with the folder they were written to."""

    output: Path
    sides: tuple[SideSummary, SideSummary]

    def summary(self) -> str:
        """Return a plain-text report: per side, dossiers, messages and rejections."""
        lines = [f"Two-sided exchange demonstration in {self.output}"]
        for side in self.sides:
            lines.append("")
            lines.append(f"== {side.institution} ({side.database.name}) ==")
            lines.append(f"dossiers: {len(side.dossiers)}")
            for dossier in side.dossiers:
                lines.append(
                    f"  {dossier.reference or '-':<16} peer {dossier.peer_reference or '-':<16} "
                    f"{dossier.state or '-':<24} sent {dossier.last_sent_seq:>2}  "
                    f"applied {dossier.last_applied_seq:>2}"
                )
            sent = ", ".join(f"{event} {count}" for event, count in sorted(side.sent.items()))
            lines.append(f"messages sent: {sum(side.sent.values())} ({sent or 'none'})")
            received = ", ".join(
                f"{status} {count}" for status, count in sorted(side.received.items())
            )
            lines.append(f"messages received: {sum(side.received.values())} ({received or 'none'})")
            lines.append(f"rejected: {len(side.rejected)}")
            for item in side.rejected:
                lines.append(
                    f"  {item.received_at.isoformat()} from {item.sender or '?'}: "
                    f"{item.reason} ({item.detail})"
                )
        return "\n".join(lines)


def _key_ring(folder: Path, institution: str, peer: str) -> KeyRing:
    if not (folder / f"{institution}.key").exists():
        generate_key_pair(folder, institution)
    if not (folder / f"{peer}.key").exists():
        generate_key_pair(folder, peer)
    return KeyRing.from_files(
        institution, folder / f"{institution}.key", {peer: folder / f"{peer}.pub"}
    )


def _open(output: Path, institution: str, peer: str) -> Exchange:
    from case_workflow.definition.loader import builtin_workflows_dir

    mapping = load_mapping(builtin_workflows_dir() / MAPPING_NAME)
    engine = Engine(
        f"sqlite:///{output / f'{institution}.db'}",
        workflows=[mapping.workflow_of(institution)],
        clock=SimulatedClock(START),
    )
    engine.create_schema()
    return Exchange(engine, mapping, _key_ring(output / "keys", institution, peer))


def run_two_sided_demo(output: Path, *, dossiers: int, seed: int) -> TwoSidedResult:
    """Run the demonstration in the folder ``output``, which must hold no earlier run."""
    if dossiers < 1:
        raise InvalidInput(f"dossiers must be at least 1, got {dossiers}")
    for name in (f"{MEDIATOR}.db", f"{ALOMRANE}.db"):
        if (output / name).exists():
            raise InvalidInput(
                f"{output / name} exists from an earlier run; choose an empty output folder"
            )
    output.mkdir(parents=True, exist_ok=True)
    mediator = _open(output, MEDIATOR, ALOMRANE)
    respondent = _open(output, ALOMRANE, MEDIATOR)
    inboxes = {MEDIATOR: output / "inbox-mediator", ALOMRANE: output / "inbox-al-omrane"}
    for folder in inboxes.values():
        folder.mkdir(exist_ok=True)
    transport = FolderTransport(inboxes)
    receivers = {
        MEDIATOR: FolderReceiver(mediator, inboxes[MEDIATOR]),
        ALOMRANE: FolderReceiver(respondent, inboxes[ALOMRANE]),
    }
    chooser = random.Random(seed)

    def exchange_all() -> None:
        for _ in range(4):
            mediator.relay(transport)
            respondent.relay(transport)
            receivers[ALOMRANE].poll()
            receivers[MEDIATOR].poll()

    try:
        _file(mediator, dossiers, chooser)
        exchange_all()
        _tamper(mediator, inboxes[ALOMRANE])
        for round_number in range(4):
            _respondent_round(respondent, chooser)
            exchange_all()
            _mediator_round(mediator, chooser, final=round_number >= 2)
            exchange_all()
            if round_number == 1:
                clock = mediator.engine.clock
                assert isinstance(clock, SimulatedClock)
                clock.advance(timedelta(days=90))
                mediator.engine.sweep()
                exchange_all()
        return TwoSidedResult(output, (_summarize(mediator), _summarize(respondent)))
    finally:
        mediator.engine.close()
        respondent.engine.close()


def _file(mediator: Exchange, count: int, chooser: random.Random) -> None:
    engine = mediator.engine
    respondents = sorted(engine.workflow("mediator-alomrane").definition.respondents)
    for index in range(count):
        dossier = engine.file(
            "mediator-alomrane",
            actor=_MEDIATOR_AGENT,
            complainant=Complainant(name=f"Demo complainant {index + 1}"),
            subject=chooser.choice(
                ["Title deed not delivered", "Lot allotment dispute", "Resettlement delay"]
            ),
            respondent=chooser.choice(respondents),
        )
        engine.fire(dossier.reference, "start_review", actor=_MEDIATOR_AGENT)
        engine.fire(
            dossier.reference,
            "transmit",
            actor=_MEDIATOR_AGENT,
            payload={"respondent": dossier.respondent},
        )


def _respondent_round(respondent: Exchange, chooser: random.Random) -> None:
    engine = respondent.engine
    for linked in respondent.linked_dossiers():
        reference, state, draw = linked.reference, linked.state, chooser.random()
        if reference is None:
            continue
        if state == "received" and draw < 0.5:
            engine.fire(reference, "acknowledge", actor=_RESPONDENT_AGENT)
        elif state == "received" and draw < 0.65:
            engine.fire(reference, "request_information", actor=_RESPONDENT_AGENT)
        elif state in {"received", "acknowledged", "escalated"} and draw < 0.85:
            engine.fire(
                reference,
                "answer",
                actor=_RESPONDENT_AGENT,
                payload={"answer_summary": "The title deed is ready for collection"},
            )


def _mediator_round(mediator: Exchange, chooser: random.Random, *, final: bool) -> None:
    engine = mediator.engine
    for linked in mediator.linked_dossiers():
        reference, state = linked.reference, linked.state
        if reference is None:
            continue
        if state == "information_requested":
            engine.fire(reference, "resume", actor=_MEDIATOR_AGENT)
        elif state == "answered" and chooser.random() < 0.2:
            engine.fire(
                reference,
                "issue_recommendation",
                actor=_MEDIATOR_AGENT,
                payload={"recommendation_summary": "Deliver the title deed within 30 days"},
            )
        elif state == "answered" or (final and state in {"escalated", "recommendation_issued"}):
            outcome = "resolved" if state == "answered" else "not_resolved"
            engine.fire(reference, "close", actor=_MEDIATOR_AGENT, payload={"outcome": outcome})


def _tamper(mediator: Exchange, inbox: Path) -> None:
    """Drop a copy of a delivered message with a changed payload into Al Omrane's inbox."""
    processed = sorted((inbox / "processed").glob("*.json"))
    if not processed:
        return
    data = json.loads(processed[0].read_bytes())
    data["payload"]["respondent"] = "someone-else"
    data["message_id"] = "00000000-0000-4000-8000-000000000000"
    write_atomically(inbox / "tampered.json", json.dumps(data).encode())


def _summarize(side: Exchange) -> SideSummary:
    return SideSummary(
        institution=side.institution,
        database=Path(str(side.engine.database.url.database)),
        dossiers=tuple(side.linked_dossiers()),
        sent=dict(Counter(message.event for message in side.sent())),
        received=dict(Counter(message.status for message in side.received())),
        rejected=tuple(side.rejected()),
    )
