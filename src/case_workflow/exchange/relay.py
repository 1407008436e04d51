"""The relay: delivering committed outbox messages to the peer, with retries and backoff.

A relay run claims due messages in one short transaction (a lease, so a crashed relay's
messages become due again when it ends), sends each one outside any transaction, then records
each result in another short transaction. A message is then sent, rejected by the peer, pending
again after an exponential backoff, or dead once its attempts are used up. Messages written by
a step reach the outbox only when the step commits, so nothing is sent for a rolled-back step.
A process killed after the commit leaves its messages pending for the next run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from case_workflow.clock import Clock
from case_workflow.errors import InvalidInput
from case_workflow.exchange.outbox import (
    DEAD,
    PENDING,
    REJECTED,
    SENT,
    ClaimedMessage,
    claim_due,
    record_attempt,
)
from case_workflow.exchange.transport import (
    MessageRejected,
    OutboundMessage,
    Transport,
    TransportError,
)
from case_workflow.store.database import retry_when_locked, write_transaction

__all__ = ["RelayResult", "RelayWorker", "RetryPolicy", "relay_due"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a message again: ``first_delay`` doubled per attempt, up to ``max_delay``.

    A message whose ``max_attempts`` attempts all failed becomes dead (listed as stuck). A
    claim lasts ``lease``; a relay that stops mid-send leaves the message due again after it.
    """

    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 20
    lease: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.first_delay <= timedelta(0):
            raise InvalidInput(
                f"invalid retry policy (max_attempts={self.max_attempts}, first_delay="
                f"{self.first_delay}); use at least 1 attempt and a positive first delay"
            )

    def delay(self, attempts: int) -> timedelta:
        """Return the wait after the ``attempts``-th failed attempt."""
        factor: int = 2 ** min(max(attempts - 1, 0), 30)
        delay: timedelta = self.first_delay * factor
        return min(delay, self.max_delay)


@dataclass(frozen=True)
class RelayResult:
    """Counts of one relay run."""

    sent: int = 0
    retried: int = 0
    rejected: int = 0
    dead: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.retried + self.rejected + self.dead


def relay_due(
    database: Engine,
    transport: Transport,
    *,
    now: datetime,
    policy: RetryPolicy,
    limit: int = 100,
) -> RelayResult:
    """Send up to ``limit`` due messages through ``transport`` and record each outcome."""

    def claim() -> list[ClaimedMessage]:
        with write_transaction(database) as connection:
            return claim_due(connection, now=now, limit=limit, lease=policy.lease)

    counts = {SENT: 0, PENDING: 0, REJECTED: 0, DEAD: 0}
    for message in retry_when_locked(claim):
        status = _deliver(database, transport, message, now=now, policy=policy)
        counts[status] += 1
    return RelayResult(counts[SENT], counts[PENDING], counts[REJECTED], counts[DEAD])


def _deliver(
    database: Engine,
    transport: Transport,
    message: ClaimedMessage,
    *,
    now: datetime,
    policy: RetryPolicy,
) -> str:
    outbound = OutboundMessage(message.message_id, message.peer, message.body)
    receipt: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    try:
        status, receipt = SENT, transport.send(outbound).status.value
    except MessageRejected as rejected:
        status, error = REJECTED, str(rejected)
        log.error("message %s to %s rejected: %s", message.message_id, message.peer, rejected)
    except TransportError as failure:
        error = str(failure)
        if message.attempts >= policy.max_attempts:
            status = DEAD
            log.error(
                "message %s to %s dead after %d attempts: %s",
                message.message_id,
                message.peer,
                message.attempts,
                failure,
            )
        else:
            status = PENDING
            retry_at = now + policy.delay(message.attempts)
            log.warning(
                "message %s to %s failed (attempt %d): %s; retry at %s",
                message.message_id,
                message.peer,
                message.attempts,
                failure,
                retry_at.isoformat(),
            )

    def record() -> None:
        with write_transaction(database) as connection:
            record_attempt(
                connection,
                message.id,
                status=status,
                now=now,
                receipt=receipt,
                error=error,
                retry_at=retry_at,
            )

    retry_when_locked(record)
    return status


class RelayWorker(threading.Thread):
    """Runs a relay every ``interval`` seconds in a background thread until :meth:`stop`.

    ``run_once`` is a relay run (usually ``Exchange.relay`` bound to a transport); an error it
    raises is logged and the next run goes on.
    """

    def __init__(
        self, run_once: Callable[[], RelayResult], *, clock: Clock, interval: float = 5.0
    ) -> None:
        super().__init__(name="case-workflow-exchange-relay", daemon=True)
        self._run_once = run_once
        self._clock = clock
        self._interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                result = self._run_once()
            except Exception:
                log.exception("exchange relay run failed at %s", self._clock.now().isoformat())
                result = RelayResult()
            if result.attempted == 0:
                self._stopping.wait(self._interval)

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self.join(timeout)
