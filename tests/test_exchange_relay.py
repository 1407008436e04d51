"""The outbox and the relay: messages exist only for committed steps; retries back off."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection

from case_workflow.clock import SimulatedClock
from case_workflow.exchange import (
    Exchange,
    MessageRejected,
    OutboundMessage,
    Receipt,
    RejectionReason,
    RelayWorker,
    RetryPolicy,
    TransportError,
)
from case_workflow.exchange.outbox import claim_due
from case_workflow.steps import AppliedStep, StepContext
from case_workflow.store.database import write_transaction
from tests.exchange_helpers import (
    ALOMRANE,
    MEDIATOR,
    MEDIATOR_AGENT,
    DirectTransport,
    file_and_transmit,
    make_keys,
    open_side,
)

POLICY = RetryPolicy(
    first_delay=timedelta(seconds=10), max_delay=timedelta(seconds=25), max_attempts=4
)


class Down:
    """A transport whose peer is unreachable."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: OutboundMessage) -> Receipt:
        self.calls += 1
        raise TransportError("connection refused")


class Refusing:
    def send(self, message: OutboundMessage) -> Receipt:
        raise MessageRejected(message.message_id, RejectionReason.BAD_SIGNATURE, "no")


@pytest.fixture
def relay_clock() -> SimulatedClock:
    return SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def mediator(database_url: str, tmp_path: Path, relay_clock: SimulatedClock) -> Iterator[Exchange]:
    make_keys(tmp_path / "keys")
    side = open_side(
        database_url, MEDIATOR, tmp_path / "keys", relay_clock=relay_clock, retry=POLICY
    )
    yield side
    side.engine.close()


def test_retry_policy_doubles_up_to_max() -> None:
    delays = [POLICY.delay(attempt) for attempt in range(1, 5)]
    assert delays == [timedelta(seconds=s) for s in (10, 20, 25, 25)]


def test_rolled_back_step_writes_no_message(mediator: Exchange) -> None:
    def fail(connection: Connection, context: StepContext, step: AppliedStep) -> None:
        if step.trigger == "transmit":
            raise RuntimeError("simulated crash inside the step")

    mediator.engine.add_step_hook(fail)
    with pytest.raises(RuntimeError, match="simulated crash"):
        file_and_transmit(mediator, 1)
    assert mediator.pending() == []
    assert mediator.linked_dossiers() == []
    (reference,) = mediator.engine.references()
    assert mediator.engine.get(reference).state == "under_review"


def test_committed_step_leaves_pending_message(mediator: Exchange) -> None:
    (reference,) = file_and_transmit(mediator, 1)
    (message,) = mediator.pending()
    assert (message.reference, message.event, message.seq) == (reference, "transmit", 1)
    assert message.attempts == 0


def test_unreachable_peer_backs_off_then_dies(
    mediator: Exchange, relay_clock: SimulatedClock
) -> None:
    file_and_transmit(mediator, 1)
    down = Down()
    assert mediator.relay(down).retried == 1
    (message,) = mediator.pending()
    assert message.next_attempt_at == relay_clock.now() + timedelta(seconds=10)
    assert mediator.relay(down).attempted == 0  # not due yet
    relay_clock.advance(timedelta(seconds=10))
    assert mediator.relay(down).retried == 1
    assert mediator.pending()[0].next_attempt_at == relay_clock.now() + timedelta(seconds=20)
    for _ in range(2):
        relay_clock.advance(timedelta(seconds=25))
        mediator.relay(down)
    assert down.calls == 4
    assert mediator.pending() == []
    (stuck,) = mediator.stuck()
    assert stuck.status == "dead"
    assert stuck.last_error == "connection refused"


def test_rejected_message_is_stuck(mediator: Exchange) -> None:
    file_and_transmit(mediator, 1)
    assert mediator.relay(Refusing()).rejected == 1
    (stuck,) = mediator.stuck()
    assert stuck.status == "rejected"
    assert "bad_signature" in (stuck.last_error or "")


def test_claim_lease_hides_message_until_it_ends(
    mediator: Exchange, relay_clock: SimulatedClock, tmp_path: Path
) -> None:
    file_and_transmit(mediator, 1)
    with write_transaction(mediator.engine.database) as connection:
        assert len(claim_due(connection, now=relay_clock.now(), limit=10, lease=POLICY.lease)) == 1
    # The relay that claimed it stopped before sending: nothing is due during the lease.
    respondent = open_side(f"sqlite:///{tmp_path}/r.db", ALOMRANE, tmp_path / "keys")
    network = DirectTransport({ALOMRANE: respondent})
    assert mediator.relay(network).attempted == 0
    relay_clock.advance(POLICY.lease)
    assert mediator.relay(network).sent == 1
    (message,) = mediator.sent()
    assert (message.status, message.attempts, message.receipt) == ("sent", 2, "applied")
    respondent.engine.close()


def test_sequence_numbers_count_per_dossier(mediator: Exchange) -> None:
    first, second = file_and_transmit(mediator, 2)
    mediator.engine.fire(first, "request_information", actor=MEDIATOR_AGENT)
    seqs = [(message.reference, message.seq) for message in mediator.pending()]
    assert seqs == [(first, 1), (second, 1), (first, 2)]


def test_stuck_lists_repeated_failures(mediator: Exchange, relay_clock: SimulatedClock) -> None:
    file_and_transmit(mediator, 1)
    mediator.relay(Down())
    assert [m.status for m in mediator.stuck(min_attempts=1)] == ["pending"]
    assert mediator.stuck(min_attempts=2) == []


def test_worker_delivers_in_background(mediator: Exchange, tmp_path: Path) -> None:
    file_and_transmit(mediator, 3)
    respondent = open_side(f"sqlite:///{tmp_path}/r.db", ALOMRANE, tmp_path / "keys")
    network = DirectTransport({ALOMRANE: respondent})
    worker = RelayWorker(lambda: mediator.relay(network), clock=mediator.clock, interval=0.01)
    worker.start()
    try:
        for _ in range(1000):
            if len(respondent.linked_dossiers()) == 3:
                break
            threading.Event().wait(0.01)
    finally:
        worker.stop(timeout=10)
    assert not worker.is_alive()
    assert mediator.pending() == []
    assert len(respondent.linked_dossiers()) == 3
    respondent.engine.close()
