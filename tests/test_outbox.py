"""Outbox relay: PDF archive in the event chain, drop folder, webhook, retries, dead letters."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from case_workflow import Complainant, Engine, InvalidInput, SimulatedClock
from case_workflow.delivery import (
    ARCHIVE_TRIGGER,
    DropFolderChannel,
    OutboxRelay,
    OutboxStatus,
    OutgoingMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
    RetryPolicy,
    WebhookChannel,
    archive_pending,
    count_outbox,
    deliver,
    list_outbox,
    load_delivery_config,
    purge_sent,
    render_letter_pdf,
    retry_dead,
    verify_signature,
)
from case_workflow.delivery.channel import safe_file_stem
from case_workflow.delivery.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from case_workflow.notifications import LetterRenderer
from case_workflow.store.tables import letters
from tests.conftest import MEDIATOR_AGENT

pytest.importorskip("weasyprint")

RESPONDENT = "al-omrane-rabat-sale-kenitra"
SECRET = b"shared webhook secret"


def file_dossier(engine: Engine, name: str = "Citoyen 00042", **complainant: str) -> str:
    return engine.file(
        "mediator-alomrane",
        actor=MEDIATOR_AGENT,
        complainant=Complainant(name, **complainant),
        subject="Lot non attribué",
        respondent=RESPONDENT,
    ).reference


class RecordingChannel:
    """Accepts every message and keeps it; optionally fails the first ``failures`` calls."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.messages: list[OutgoingMessage] = []
        self.failures = failures
        self.error = error or RetryableDeliveryError("server busy")
        self.lock = threading.Lock()

    def deliver(self, message: OutgoingMessage) -> None:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                raise self.error
            self.messages.append(message)


class Crash(BaseException):
    """Stands for the relay process dying right after a delivery."""


def crash(_message: OutgoingMessage) -> None:
    raise Crash


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "bureau-ordre"
    path.mkdir()
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- archive and drop folder ------------------------------------------------------------------


def test_drop_folder_gets_pdf_and_sidecar(engine: Engine, folder: Path) -> None:
    reference = file_dossier(engine)

    result = deliver(engine, {"registry": DropFolderChannel(folder)})

    assert result.sent == 1
    stem = safe_file_stem(f"{reference}:1:acknowledgement")
    assert sorted(path.name for path in folder.iterdir()) == [f"{stem}.json", f"{stem}.pdf"]
    sidecar = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
    pdf = (folder / f"{stem}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert sidecar["idempotency_key"] == f"{reference}:1:acknowledgement"
    assert sidecar["letter"]["registry_number"] == "IMR/2024/00001"
    assert sidecar["letter"]["pdf_sha256"] == sha256(pdf)
    assert sidecar["pdf_file"] == f"{stem}.pdf"


def test_drop_folder_redelivery_same_files(engine: Engine, folder: Path) -> None:
    file_dossier(engine)
    channel = RecordingChannel()
    deliver(engine, {"registry": channel})
    (message,) = channel.messages
    drop = DropFolderChannel(folder)

    drop.deliver(message)
    first = {path.name: path.read_bytes() for path in folder.iterdir()}
    drop.deliver(message)
    second = {path.name: path.read_bytes() for path in folder.iterdir()}

    assert first == second
    assert len(first) == 2


def test_missing_drop_folder_retries(engine: Engine, tmp_path: Path) -> None:
    file_dossier(engine)

    result = deliver(engine, {"registry": DropFolderChannel(tmp_path / "absent")})

    assert result.retried == 1
    (entry,) = list_outbox(engine)
    assert entry.status is OutboxStatus.PENDING
    assert entry.last_error is not None
    assert "absent" in entry.last_error


def test_archive_event_covers_sent_pdf(engine: Engine) -> None:
    reference = file_dossier(engine, language="ar")
    channel = RecordingChannel()

    deliver(engine, {"registry": channel})

    history = engine.history(reference)
    assert [event.trigger for event in history] == ["file", ARCHIVE_TRIGGER]
    archived = history[-1]
    assert archived.from_state == archived.to_state == "filed"
    (entry,) = archived.payload["letters"]
    (message,) = channel.messages
    assert message.letter is not None
    assert entry["language"] == message.letter.language == "ar"
    assert entry["pdf_sha256"] == sha256(message.letter.pdf)
    assert entry["html_sha256"] == message.letter.html_sha256
    assert entry["registry_number"] == "IMR/2024/00001"
    with engine.database.connect() as connection:
        rows = connection.execute(select(letters.c.language, letters.c.pdf_sha256))
        stored = {row.language: row.pdf_sha256 for row in rows}
    assert stored == {"ar": entry["pdf_sha256"], "fr": None}
    assert engine.verify().broken == ()


def test_archive_pending_covers_unsent(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    deliver(engine, {"registry": RecordingChannel()})

    assert archive_pending(engine, now=clock.now()) == 1
    assert archive_pending(engine, now=clock.now()) == 0

    events = [event for event in engine.history(reference) if event.trigger == ARCHIVE_TRIGGER]
    assert [entry["language"] for event in events for entry in event.payload["letters"]] == [
        "fr",
        "ar",
    ]
    with engine.database.connect() as connection:
        rows = connection.execute(select(letters.c.html, letters.c.issued_at, letters.c.pdf_sha256))
        for html, issued_at, pdf_sha256 in rows:
            assert pdf_sha256 == sha256(render_letter_pdf(html, issued_at))
    assert engine.verify().broken == ()


def test_resend_appends_no_second_archive(engine: Engine, clock: SimulatedClock) -> None:
    reference = file_dossier(engine)
    channel = RecordingChannel()
    relay = OutboxRelay(engine.database, {"registry": channel}, clock=clock, after_send=crash)

    with pytest.raises(Crash):
        relay.run_once()
    clock.advance(relay.lease)
    deliver(engine, {"registry": channel}, clock=clock)

    first, second = channel.messages
    assert first.idempotency_key == second.idempotency_key
    assert first.letter is not None
    assert second.letter is not None
    assert first.letter.pdf == second.letter.pdf
    triggers = [event.trigger for event in engine.history(reference)]
    assert triggers.count(ARCHIVE_TRIGGER) == 1


RENDER_SCRIPT = """
import sys
from datetime import datetime
from pathlib import Path
from case_workflow.delivery import render_letter_pdf

html = Path(sys.argv[1]).read_text(encoding="utf-8")
pdf = render_letter_pdf(html, datetime.fromisoformat(sys.argv[2]))
Path(sys.argv[3]).write_bytes(pdf)
"""


def test_pdf_rendering_is_byte_stable(tmp_path: Path, clock: SimulatedClock) -> None:
    with Engine(f"sqlite:///{tmp_path}/store.db", clock=clock, create_schema=True) as engine:
        reference = file_dossier(engine, "عائشة بنعلي", language="ar")
        letter = next(item for item in engine.letters(reference) if item.language == "ar")
    html_path = tmp_path / "letter.html"
    html_path.write_text(letter.html, encoding="utf-8")
    other_process = tmp_path / "other.pdf"

    this_process = render_letter_pdf(letter.html, letter.issued_at)
    subprocess.run(
        [
            sys.executable,
            "-c",
            RENDER_SCRIPT,
            str(html_path),
            letter.issued_at.isoformat(),
            str(other_process),
        ],
        check=True,
    )

    assert sha256(this_process) == sha256(other_process.read_bytes())


def test_html_rerendered_from_context(engine: Engine) -> None:
    reference = file_dossier(engine)
    renderer = LetterRenderer(engine.workflow("mediator-alomrane").template_dirs)

    for letter in engine.letters(reference):
        html = renderer.render_context(letter.template, letter.language, letter.context)

        assert sha256(html.encode("utf-8")) == letter.sha256


def test_changed_html_is_not_sent(engine: Engine) -> None:
    file_dossier(engine)
    with engine.database.begin() as connection:
        connection.execute(letters.update().values(html=letters.c.html + "<p>added</p>"))
    channel = RecordingChannel()

    result = deliver(engine, {"registry": channel})

    assert result.dead == 1
    assert channel.messages == []
    (entry,) = list_outbox(engine, status="dead")
    assert entry.last_error is not None
    assert "does not match its SHA-256" in entry.last_error


# -- retries, dead letters, leases ------------------------------------------------------------


def test_backoff_then_dead(engine: Engine, clock: SimulatedClock) -> None:
    file_dossier(engine)
    channel = RecordingChannel(failures=10)
    policy = RetryPolicy(max_attempts=3, first_delay=timedelta(minutes=1))
    start = clock.now()

    assert deliver(engine, {"registry": channel}, policy=policy).retried == 1
    (entry,) = list_outbox(engine)
    assert entry.attempts == 1
    assert entry.next_attempt_at == start + timedelta(minutes=1)
    assert deliver(engine, {"registry": channel}, policy=policy).handled == 0

    clock.advance(timedelta(minutes=1))
    assert deliver(engine, {"registry": channel}, policy=policy).retried == 1
    (entry,) = list_outbox(engine)
    assert entry.next_attempt_at == clock.now() + timedelta(minutes=2)

    clock.advance(timedelta(minutes=2))
    assert deliver(engine, {"registry": channel}, policy=policy).dead == 1
    (entry,) = list_outbox(engine)
    assert entry.status is OutboxStatus.DEAD
    assert entry.attempts == 3
    assert entry.last_error == "RetryableDeliveryError: server busy"


def test_retry_after_failure_succeeds(engine: Engine, clock: SimulatedClock) -> None:
    file_dossier(engine)
    channel = RecordingChannel(failures=1)

    deliver(engine, {"registry": channel})
    clock.advance(timedelta(hours=1))
    result = deliver(engine, {"registry": channel})

    assert result.sent == 1
    (entry,) = list_outbox(engine)
    assert entry.status is OutboxStatus.SENT
    assert entry.attempts == 2
    assert entry.sent_at == clock.now()
    assert entry.last_error is None


def test_permanent_error_dead_at_once(engine: Engine) -> None:
    file_dossier(engine)
    channel = RecordingChannel(failures=1, error=PermanentDeliveryError("no such mailbox"))

    result = deliver(engine, {"registry": channel})

    assert result.dead == 1
    (entry,) = list_outbox(engine)
    assert entry.status is OutboxStatus.DEAD
    assert entry.attempts == 1


def test_retry_dead_revives(engine: Engine, clock: SimulatedClock) -> None:
    file_dossier(engine)
    file_dossier(engine)
    failing = RecordingChannel(failures=2, error=PermanentDeliveryError("rejected"))
    deliver(engine, {"registry": failing})
    first, second = list_outbox(engine)

    assert retry_dead(engine, now=clock.now(), ids=[first.id]) == 1
    assert count_outbox(engine) == {
        OutboxStatus.PENDING: 1,
        OutboxStatus.SENT: 0,
        OutboxStatus.DEAD: 1,
    }
    channel = RecordingChannel()
    deliver(engine, {"registry": channel})
    assert [message.outbox_id for message in channel.messages] == [first.id]
    assert retry_dead(engine, now=clock.now()) == 1
    assert list_outbox(engine, status="pending")[0].id == second.id


def test_purge_sent_older_than(engine: Engine, clock: SimulatedClock) -> None:
    file_dossier(engine)
    deliver(engine, {"registry": RecordingChannel()})
    clock.advance(timedelta(days=10))
    file_dossier(engine)

    assert purge_sent(engine, now=clock.now(), older_than_days=30) == 0
    assert purge_sent(engine, now=clock.now(), older_than_days=7) == 1
    (remaining,) = list_outbox(engine)
    assert remaining.status is OutboxStatus.PENDING


def test_list_outbox_filters(engine: Engine) -> None:
    file_dossier(engine, email="c42@example.org")
    file_dossier(engine)

    assert [entry.channel for entry in list_outbox(engine)] == ["email", "registry"]
    assert [entry.channel for entry in list_outbox(engine, channel="email")] == ["email"]
    assert list_outbox(engine, status="sent") == []
    with pytest.raises(InvalidInput, match="unknown outbox status 'lost'"):
        list_outbox(engine, status="lost")


def test_relay_leaves_other_channels(engine: Engine) -> None:
    file_dossier(engine, email="c42@example.org")
    file_dossier(engine)
    channel = RecordingChannel()

    deliver(engine, {"registry": channel})

    assert [message.channel for message in channel.messages] == ["registry"]
    (pending,) = list_outbox(engine, status="pending")
    assert pending.channel == "email"


def test_lease_hides_claimed_message(engine: Engine, clock: SimulatedClock) -> None:
    file_dossier(engine)
    channel = RecordingChannel()
    relay = OutboxRelay(
        engine.database,
        {"registry": channel},
        clock=clock,
        lease=timedelta(minutes=10),
        after_send=crash,
    )
    with pytest.raises(Crash):
        relay.run_once()

    clock.advance(timedelta(minutes=9))
    assert deliver(engine, {"registry": channel}).handled == 0
    clock.advance(timedelta(minutes=1))
    assert deliver(engine, {"registry": channel}).sent == 1

    assert len(channel.messages) == 2
    assert list_outbox(engine)[0].status is OutboxStatus.SENT


def test_claims_without_result_go_dead(engine: Engine, clock: SimulatedClock) -> None:
    file_dossier(engine)
    channel = RecordingChannel()
    policy = RetryPolicy(max_attempts=2)
    relay = OutboxRelay(
        engine.database, {"registry": channel}, clock=clock, policy=policy, after_send=crash
    )
    for _ in range(2):
        with pytest.raises(Crash):
            relay.run_once()
        clock.advance(relay.lease)

    result = deliver(engine, {"registry": channel}, policy=policy)

    assert result.dead == 1
    assert len(channel.messages) == 2
    (entry,) = list_outbox(engine)
    assert entry.status is OutboxStatus.DEAD
    assert entry.last_error is not None
    assert "relay stopped" in entry.last_error


def test_two_relays_send_each_once(engine: Engine) -> None:
    for _ in range(6):
        file_dossier(engine)
    channel = RecordingChannel()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def relay() -> None:
        start.wait()
        try:
            deliver(engine, {"registry": channel}, batch_size=1)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    keys = [message.idempotency_key for message in channel.messages]
    assert len(keys) == 6
    assert len(set(keys)) == 6
    assert count_outbox(engine)[OutboxStatus.SENT] == 6


def test_deliver_loop_stops_after_rounds(engine: Engine) -> None:
    file_dossier(engine)
    channel = RecordingChannel()

    result = deliver(engine, {"registry": channel}, loop=True, interval=0.01, max_rounds=3)

    assert result.sent == 1


def test_deliver_loop_stops_on_event(engine: Engine) -> None:
    stop = threading.Event()
    stop.set()

    result = deliver(engine, {"registry": RecordingChannel()}, loop=True, stop=stop)

    assert result.handled == 0


# -- webhook ----------------------------------------------------------------------------------


class WebhookReceiver(BaseHTTPRequestHandler):
    """Checks the signature, records each request and replies with the server's status."""

    def do_POST(self) -> None:
        server: ReceiverServer = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        valid = verify_signature(
            SECRET,
            timestamp=self.headers[TIMESTAMP_HEADER],
            body=body,
            signature=self.headers[SIGNATURE_HEADER],
            now=server.clock.now(),
        )
        server.received.append((dict(self.headers), body, valid))
        status = server.status if valid else 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class ReceiverServer(ThreadingHTTPServer):
    def __init__(self, clock: SimulatedClock, status: int) -> None:
        super().__init__(("127.0.0.1", 0), WebhookReceiver)
        self.clock = clock
        self.status = status
        self.received: list[tuple[dict[str, str], bytes, bool]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/letters"


@pytest.fixture
def receiver(request: pytest.FixtureRequest, clock: SimulatedClock) -> Iterator[ReceiverServer]:
    server = ReceiverServer(clock, getattr(request, "param", 200))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def webhook(url: str, secret: bytes = SECRET) -> WebhookChannel:
    return WebhookChannel(url, secret, timeout=30.0, trust_env=False)


def test_webhook_signed_and_keyed(engine: Engine, receiver: ReceiverServer) -> None:
    reference = file_dossier(engine)

    result = deliver(engine, {"registry": webhook(receiver.url)})

    assert result.sent == 1
    ((headers, body, valid),) = receiver.received
    assert valid
    assert headers[IDEMPOTENCY_HEADER] == f"{reference}:1:acknowledgement"
    document = json.loads(body)
    assert document["idempotency_key"] == f"{reference}:1:acknowledgement"
    pdf = base64.b64decode(document["pdf_base64"])
    assert pdf.startswith(b"%PDF-")
    assert document["letter"]["pdf_sha256"] == sha256(pdf)
    assert document["letter"]["registry_number"] == "IMR/2024/00001"


def test_webhook_wrong_secret_rejected(engine: Engine, receiver: ReceiverServer) -> None:
    file_dossier(engine)

    result = deliver(engine, {"registry": webhook(receiver.url, b"another secret")})

    assert result.dead == 1
    ((_headers, _body, valid),) = receiver.received
    assert not valid
    (entry,) = list_outbox(engine)
    assert entry.last_error is not None
    assert "HTTP 401" in entry.last_error


@pytest.mark.parametrize("receiver", [503], indirect=True)
def test_webhook_server_error_retries(engine: Engine, receiver: ReceiverServer) -> None:
    file_dossier(engine)

    result = deliver(engine, {"registry": webhook(receiver.url)})

    assert result.retried == 1
    assert list_outbox(engine)[0].status is OutboxStatus.PENDING


def test_webhook_unreachable_retries(engine: Engine) -> None:
    server = ReceiverServer(SimulatedClock(engine.clock.now()), 200)
    url = server.url
    server.server_close()
    file_dossier(engine)

    result = deliver(engine, {"registry": webhook(url)})

    assert result.retried == 1


def test_signature_rejects_stale_timestamp(clock: SimulatedClock) -> None:
    stamp = str(int(clock.now().timestamp()) - 301)
    body = b"{}"

    assert not verify_signature(
        SECRET, timestamp=stamp, body=body, signature=sign(SECRET, stamp, body), now=clock.now()
    )
    assert verify_signature(
        SECRET,
        timestamp=str(int(clock.now().timestamp())),
        body=body,
        signature=sign(SECRET, str(int(clock.now().timestamp())), body),
        now=clock.now(),
    )


# -- configuration and helpers -----------------------------------------------------------------


def test_config_builds_channels(tmp_path: Path) -> None:
    config = load_delivery_config(
        {
            "channels": {
                "email": {"transport": "smtp", "host": "127.0.0.1", "port": 2525},
                "registry": {"transport": "drop_folder", "path": str(tmp_path)},
                "platform": {
                    "transport": "webhook",
                    "url": "http://127.0.0.1:9/hook",
                    "secret_env": "HOOK_SECRET",
                },
            },
            "retry": {"max_attempts": 4, "first_delay_seconds": 30},
            "lease_seconds": 60,
        },
        environ={"HOOK_SECRET": "s3cret"},
    )

    assert sorted(config.channels) == ["email", "platform", "registry"]
    platform = config.channels["platform"]
    assert isinstance(platform, WebhookChannel)
    assert platform.secret == b"s3cret"
    assert config.policy.max_attempts == 4
    assert config.policy.delay(2) == timedelta(seconds=60)
    assert config.lease == timedelta(seconds=60)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"transport": "pigeon"}, "unknown transport 'pigeon'"),
        ({"transport": "smtp"}, "missing 'host'"),
        ({"transport": "webhook", "url": "http://h/x", "secret_env": "NOPE"}, "'NOPE'"),
        ({"transport": "webhook", "url": "ftp://h/x", "secret": "s"}, "invalid webhook URL"),
    ],
)
def test_config_errors(section: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_delivery_config({"channels": {"registry": section}}, environ={})


@given(st.text(min_size=1), st.text(min_size=1))
def test_file_stems_distinct(first: str, second: str) -> None:
    if first != second:
        assert safe_file_stem(first) != safe_file_stem(second)
    assert "/" not in safe_file_stem(first)
    assert not safe_file_stem(first).startswith(".")


@given(st.integers(min_value=1, max_value=60))
def test_backoff_grows_to_maximum(attempts: int) -> None:
    policy = RetryPolicy()

    assert policy.delay(attempts) <= policy.delay(attempts + 1) <= policy.max_delay
    assert policy.delay(1) == policy.first_delay
