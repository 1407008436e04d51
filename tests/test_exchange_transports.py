"""The transport contract, run on the HTTP transport and on the drop-folder transport.

Each case builds the Mediator's side, Al Omrane's side and a way to reach it: a uvicorn server
on 127.0.0.1 with a free port, or an inbox folder that Al Omrane's receiver polls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from case_workflow.exchange import (
    Exchange,
    FolderReceiver,
    FolderTransport,
    MessageRejected,
    OutboundMessage,
    Receipt,
    ReceiptStatus,
    Transport,
    TransportError,
)
from case_workflow.exchange.envelope import MAX_BODY_BYTES
from case_workflow.exchange.http import MESSAGES_PATH, HttpTransport, create_app
from tests.exchange_helpers import ALOMRANE, MEDIATOR, file_and_transmit, make_keys, open_side


@dataclass
class Wire:
    """A transport to Al Omrane and the step that makes Al Omrane process what arrived."""

    transport: Transport
    process: Callable[[], None]
    url: str | None = None


def serve(exchange: Exchange) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(exchange), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()
    while not server.started:
        started.wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def sides(tmp_path: Path) -> Iterator[tuple[Exchange, Exchange]]:
    make_keys(tmp_path / "keys")
    mediator = open_side(f"sqlite:///{tmp_path}/m.db", MEDIATOR, tmp_path / "keys")
    respondent = open_side(f"sqlite:///{tmp_path}/r.db", ALOMRANE, tmp_path / "keys")
    yield mediator, respondent
    mediator.engine.close()
    respondent.engine.close()


@pytest.fixture(params=["http", "folder"])
def wire(
    request: pytest.FixtureRequest, sides: tuple[Exchange, Exchange], tmp_path: Path
) -> Iterator[Wire]:
    respondent = sides[1]
    if request.param == "http":
        server, thread, url = serve(respondent)
        transport = HttpTransport({ALOMRANE: url})
        yield Wire(transport, lambda: None, url)
        transport.close()
        server.should_exit = True
        thread.join()
    else:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        receiver = FolderReceiver(respondent, inbox)
        yield Wire(FolderTransport({ALOMRANE: inbox}), lambda: receiver.poll() and None)


def one_message(mediator: Exchange) -> OutboundMessage:
    file_and_transmit(mediator, 1)
    captured: list[OutboundMessage] = []

    class Capture:
        def send(self, message: OutboundMessage) -> Receipt:
            captured.append(message)
            raise TransportError("captured, not sent")

    mediator.relay(Capture())
    return captured[0]


def test_sent_message_is_applied(sides: tuple[Exchange, Exchange], wire: Wire) -> None:
    mediator, respondent = sides
    file_and_transmit(mediator, 2)
    assert mediator.relay(wire.transport).sent == 2
    wire.process()
    assert [linked.state for linked in respondent.linked_dossiers()] == ["received"] * 2
    assert {message.receipt for message in mediator.sent()} <= {"applied", "stored"}


def test_same_message_twice_applies_once(sides: tuple[Exchange, Exchange], wire: Wire) -> None:
    mediator, respondent = sides
    message = one_message(mediator)
    first = wire.transport.send(message)
    wire.process()
    second = wire.transport.send(message)
    wire.process()
    assert first.accepted and second.accepted
    assert len(respondent.linked_dossiers()) == 1
    assert [item.status for item in respondent.received()] == ["applied"]


def test_tampered_message_rejected_at_receiver(
    sides: tuple[Exchange, Exchange], wire: Wire
) -> None:
    mediator, respondent = sides
    message = one_message(mediator)
    data = json.loads(message.body)
    data["payload"]["respondent"] = "someone-else"
    forged = OutboundMessage(message.message_id, ALOMRANE, json.dumps(data).encode())
    try:
        receipt = wire.transport.send(forged)
    except MessageRejected as rejected:
        assert rejected.reason is not None and rejected.reason.value == "bad_signature"
    else:
        assert receipt.status is ReceiptStatus.STORED  # a folder cannot return a verdict at once
    wire.process()
    assert [item.reason for item in respondent.rejected()] == ["bad_signature"]
    assert respondent.linked_dossiers() == []


def test_unreachable_peer_raises_transport_error(
    sides: tuple[Exchange, Exchange], wire: Wire, tmp_path: Path
) -> None:
    mediator, _ = sides
    message = one_message(mediator)
    if wire.url is not None:
        unreachable: Transport = HttpTransport({ALOMRANE: "http://127.0.0.1:9"}, timeout=2.0)
    else:
        unreachable = FolderTransport({ALOMRANE: tmp_path / "not-mounted"})
    with pytest.raises(TransportError):
        unreachable.send(message)


def test_http_refuses_oversized_body(sides: tuple[Exchange, Exchange]) -> None:
    server, thread, url = serve(sides[1])
    try:
        response = httpx.post(url + MESSAGES_PATH, content=b" " * (MAX_BODY_BYTES + 1))
        assert response.status_code == 413
        assert response.json()["status"] == "rejected"
        bad = httpx.post(url + MESSAGES_PATH, content=b"{}")
        assert bad.status_code == 400
        assert bad.json()["reason"] == "malformed"
    finally:
        server.should_exit = True
        thread.join()


def test_folder_moves_processed_files(sides: tuple[Exchange, Exchange], tmp_path: Path) -> None:
    mediator, respondent = sides
    inbox = tmp_path / "drop"
    inbox.mkdir()
    file_and_transmit(mediator, 1)
    mediator.relay(FolderTransport(inbox))
    (written,) = inbox.glob("*.json")
    assert not list(inbox.glob(".*.tmp"))
    (inbox / "broken.json").write_bytes(b"{")
    receipts = FolderReceiver(respondent, inbox).poll()
    assert sorted(receipt.status.value for receipt in receipts) == ["applied", "rejected"]
    assert list(inbox.glob("*.json")) == []
    assert (inbox / "processed" / written.name).exists()
    assert (inbox / "rejected" / "broken.json").exists()
