"""The outbox relay: claims due messages, archives their PDFs, delivers them, records the result.

Delivery happens after the step's commit, in three short transactions per message, so no
database lock is held while a server is contacted:

1. Claim. Due ``pending`` messages of the configured channels are selected (PostgreSQL:
   ``FOR UPDATE SKIP LOCKED``, so concurrent relays split them; SQLite: the write lock), their
   ``attempts`` is incremented and ``next_attempt_at`` moved to the end of a lease. Another
   relay does not see a claimed message until the lease ends.
2. Archive and deliver. The PDF of the letter version being sent is rendered, its hash
   recorded (see :mod:`case_workflow.delivery.archive`), and the channel called.
3. Record. The message becomes ``sent``. After a failure it becomes ``pending`` again with
   an exponential backoff, or ``dead`` when its attempts are used up or the error is permanent.

A relay that stops between 2 and 3 (a crash, a kill) leaves the message claimed; when the
lease ends another run delivers it again with the same idempotency key, which is the only
duplicate this design allows. A message whose claims all ended that way goes ``dead``
instead of being claimed once more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from case_workflow.clock import Clock
from case_workflow.delivery.archive import (
    archive_pdfs,
    load_versions,
    render_letter_pdf_cached,
    sha256_hex,
)
from case_workflow.delivery.channel import (
    Channel,
    LetterDocument,
    OutgoingMessage,
    PermanentDeliveryError,
)
from case_workflow.errors import InvalidInput
from case_workflow.store.database import read_transaction, write_transaction
from case_workflow.store.tables import dossiers, outbox

__all__ = ["OutboxRelay", "RelayResult", "RetryPolicy"]

log = logging.getLogger(__name__)

PENDING = "pending"
SENT = "sent"
DEAD = "dead"
_MAX_ERROR_LENGTH = 2000

AfterSend = Callable[[OutgoingMessage], None]
PdfRenderer = Callable[[str, datetime], bytes]


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed message again, and when to give up.

    The n-th failed attempt waits ``first_delay * factor ** (n - 1)``, at most ``max_delay``.
    After ``max_attempts`` attempts the message is dead.
    """

    max_attempts: int = 8
    first_delay: timedelta = timedelta(minutes=1)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=6)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.factor < 1:
            raise InvalidInput(f"backoff factor must be at least 1, got {self.factor}")
        if self.first_delay <= timedelta(0) or self.max_delay < self.first_delay:
            raise InvalidInput(
                f"invalid retry delays first={self.first_delay}, max={self.max_delay}; "
                "use a positive first delay no longer than the maximum delay"
            )

    def delay(self, attempts: int) -> timedelta:
        """Return the wait after ``attempts`` failed attempts (1 for the first failure)."""
        ceiling = self.max_delay.total_seconds()
        seconds = self.first_delay.total_seconds()
        for _ in range(max(attempts - 1, 0)):
            seconds *= self.factor
            if seconds >= ceiling:
                return self.max_delay
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class RelayResult:
    """Counts of the messages that relay runs sent, rescheduled after a failure, or made dead."""

    sent: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.dead

    def __add__(self, other: RelayResult) -> RelayResult:
        return RelayResult(
            self.sent + other.sent, self.retried + other.retried, self.dead + other.dead
        )


@dataclass(frozen=True)
class _Claimed:
    id: int
    letter_id: int | None
    channel: str
    recipient: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    dossier_reference: str


class OutboxRelay:
    """Delivers due outbox messages through ``channels``, keyed by outbox channel name.

    Messages of channels not in ``channels`` are left for another relay. ``lease`` must be
    longer than delivering one claimed batch takes, or another relay may deliver a message of
    the batch a second time (with the same idempotency key). ``after_send`` is called after
    each successful delivery and before it is recorded; tests use it to stop the process there.
    """

    def __init__(
        self,
        database: Engine,
        channels: Mapping[str, Channel],
        *,
        clock: Clock,
        policy: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=15),
        batch_size: int = 20,
        after_send: AfterSend | None = None,
        pdf_renderer: PdfRenderer = render_letter_pdf_cached,
    ) -> None:
        if not channels:
            raise InvalidInput("no delivery channel given; configure at least one channel")
        if batch_size < 1:
            raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
        if lease <= timedelta(0):
            raise InvalidInput(f"lease must be positive, got {lease}")
        self.database = database
        self.channels = dict(channels)
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.batch_size = batch_size
        self._after_send = after_send
        self._render_pdf = pdf_renderer

    def run_once(self) -> RelayResult:
        """Claim one batch of due messages and deliver them; return what happened."""
        claimed, exhausted = self._claim()
        total = RelayResult(dead=exhausted)
        for message in claimed:
            total += self._process(message)
        return total

    def _claim(self) -> tuple[list[_Claimed], int]:
        """Claim due messages; return them and how many were found exhausted and made dead."""
        now = self.clock.now()
        due = (
            select(
                outbox.c.id,
                outbox.c.letter_id,
                outbox.c.channel,
                outbox.c.recipient,
                outbox.c.idempotency_key,
                outbox.c.payload,
                outbox.c.attempts,
                dossiers.c.reference,
            )
            .join(dossiers, dossiers.c.id == outbox.c.dossier_id)
            .where(outbox.c.status == PENDING)
            .where(outbox.c.next_attempt_at <= now)
            .where(outbox.c.channel.in_(sorted(self.channels)))
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(self.batch_size)
            # SQLite ignores the locking clause; its write lock already serialises claims.
            .with_for_update(of=outbox, skip_locked=True)
        )
        claimed: list[_Claimed] = []
        exhausted = 0
        with write_transaction(self.database) as connection:
            for row in connection.execute(due).all():
                if row.attempts >= self.policy.max_attempts:
                    # Every earlier claim ended without a recorded result: the relay died
                    # while delivering it, possibly because of this very message.
                    connection.execute(
                        update(outbox)
                        .where(outbox.c.id == row.id)
                        .values(
                            status=DEAD,
                            last_error=f"no result recorded after {row.attempts} attempts "
                            "(the relay stopped while delivering it)",
                        )
                    )
                    log.error("outbox message %d dead: relay stopped during every attempt", row.id)
                    exhausted += 1
                    continue
                connection.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(attempts=row.attempts + 1, next_attempt_at=now + self.lease)
                )
                claimed.append(
                    _Claimed(
                        id=row.id,
                        letter_id=row.letter_id,
                        channel=row.channel,
                        recipient=row.recipient,
                        idempotency_key=row.idempotency_key,
                        payload=dict(row.payload),
                        attempts=row.attempts + 1,
                        dossier_reference=row.reference,
                    )
                )
        return claimed, exhausted

    def _process(self, claimed: _Claimed) -> RelayResult:
        try:
            message = self._prepare(claimed)
            self.channels[claimed.channel].deliver(message)
        except PermanentDeliveryError as error:
            return self._record_failure(claimed, error, permanent=True)
        except Exception as error:
            # Any other failure (server down, renderer missing, a bug in a channel) may pass;
            # the attempt limit bounds the retries.
            return self._record_failure(claimed, error, permanent=False)
        if self._after_send is not None:
            self._after_send(message)
        self._record_sent(claimed)
        return RelayResult(sent=1)

    def _prepare(self, claimed: _Claimed) -> OutgoingMessage:
        now = self.clock.now()
        document = self._letter(claimed.letter_id, now) if claimed.letter_id is not None else None
        return OutgoingMessage(
            outbox_id=claimed.id,
            idempotency_key=claimed.idempotency_key,
            channel=claimed.channel,
            recipient=claimed.recipient,
            dossier_reference=claimed.dossier_reference,
            attempt=claimed.attempts,
            attempted_at=now,
            payload=claimed.payload,
            letter=document,
        )

    def _letter(self, letter_id: int, now: datetime) -> LetterDocument:
        """Render the letter's PDF, archive its hash, and return it as it will be sent."""
        with read_transaction(self.database) as connection:
            versions = load_versions(connection, letter_id)
        sent = next((version for version in versions if version.letter_id == letter_id), None)
        if sent is None:
            raise PermanentDeliveryError(f"letter row {letter_id} of the outbox message is missing")
        if sha256_hex(sent.html) != sent.html_sha256:
            raise PermanentDeliveryError(
                f"letter {sent.registry_number} ({sent.language}): stored HTML does not match "
                "its SHA-256; the letter row was changed after issue, check Engine.verify() "
                "and the database's audit trail"
            )
        pdf = self._render_pdf(sent.html, sent.issued_at)
        digest = sha256_hex(pdf)
        if sent.pdf_sha256 is not None and sent.pdf_sha256 != digest:
            log.warning(
                "letter %s (%s): PDF rendered again differs from the archived one "
                "(renderer or fonts changed); archiving the new hash",
                sent.registry_number,
                sent.language,
            )
        archive_pdfs(self.database, [(sent, digest)], now=now)
        return LetterDocument(
            letter=sent.letter,
            language=sent.language,
            registry_number=sent.registry_number,
            subject=sent.subject,
            sender=sent.sender,
            recipient_code=sent.recipient_code,
            issued_at=sent.issued_at,
            html=sent.html,
            html_sha256=sent.html_sha256,
            pdf=pdf,
            pdf_sha256=digest,
        )

    def _record_sent(self, claimed: _Claimed) -> None:
        now = self.clock.now()
        with write_transaction(self.database) as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == claimed.id)
                .where(outbox.c.status != SENT)
                .values(status=SENT, sent_at=now, last_error=None)
            )
        log.info(
            "outbox message %d sent through %s (key %s, attempt %d)",
            claimed.id,
            claimed.channel,
            claimed.idempotency_key,
            claimed.attempts,
        )

    def _record_failure(
        self, claimed: _Claimed, error: Exception, *, permanent: bool
    ) -> RelayResult:
        now = self.clock.now()
        # Server replies often quote the address; it is personal data and stays out of logs.
        text = f"{type(error).__name__}: {error}"
        if claimed.recipient:
            text = text.replace(claimed.recipient, "<recipient>")
        text = text[:_MAX_ERROR_LENGTH]

        dead = permanent or claimed.attempts >= self.policy.max_attempts
        values: dict[str, Any] = {"last_error": text}
        if dead:
            values["status"] = DEAD
        else:
            values["next_attempt_at"] = now + self.policy.delay(claimed.attempts)
        with write_transaction(self.database) as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == claimed.id)
                .where(outbox.c.status == PENDING)
                .values(**values)
            )

        if dead:
            log.error(
                "outbox message %d dead after attempt %d through %s: %s",
                claimed.id,
                claimed.attempts,
                claimed.channel,
                text,
            )
            return RelayResult(dead=1)
        log.warning(
            "outbox message %d: attempt %d through %s failed, retry at %s: %s",
            claimed.id,
            claimed.attempts,
            claimed.channel,
            values["next_attempt_at"].isoformat(),
            text,
        )
        return RelayResult(retried=1)
