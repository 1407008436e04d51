"""Two engines in two processes, each with its own SQLite database, over loopback HTTP.

Each side runs tests/exchange_peer.py: uvicorn on 127.0.0.1 with a free port, a relay thread
whose transport injects faults from a seeded generator (lost requests and responses,
duplicates, delays, held and reordered messages), and an agent policy. The tests kill the
receiver for a while and the sender between its commit and its sending, then check that both
sides agree on every dossier, that no message was applied twice or lost, that nothing was
rejected and that the event hash chains verify.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.exchange_helpers import (
    ALOMRANE,
    MEDIATOR,
    applied_message_ids,
    disagreements,
    make_keys,
    open_side,
)

PEER_SCRIPT = Path(__file__).with_name("exchange_peer.py")
SETTLE_LIMIT_SECONDS = 150.0


class Peer:
    """A running peer process and its command channel."""

    def __init__(self, institution: str, folder: Path, seed: int) -> None:
        self.institution = institution
        self.folder = folder
        self.seed = seed
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(PEER_SCRIPT),
                institution,
                str(folder / f"{institution}.db"),
                str(folder / "keys"),
                str(seed),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read()
        self.url = f"http://127.0.0.1:{ready['port']}"

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.institution} peer exited with {self.process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def quit(self) -> None:
        if self.process.poll() is None:
            self.ask("quit")
            self.process.wait(timeout=60)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    make_keys(tmp_path / "keys")
    return tmp_path


@pytest.fixture
def peers(folder: Path) -> Iterator[dict[str, Peer]]:
    started = {MEDIATOR: Peer(MEDIATOR, folder, 11), ALOMRANE: Peer(ALOMRANE, folder, 12)}
    connect(started)
    yield started
    for peer in started.values():
        if peer.process.poll() is None:
            peer.kill()


def connect(peers: dict[str, Peer]) -> None:
    peers[MEDIATOR].ask(f"peer {peers[ALOMRANE].url}")
    peers[ALOMRANE].ask(f"peer {peers[MEDIATOR].url}")


def settle(peers: dict[str, Peer]) -> None:
    """Wait until neither side has a message pending, held or waiting for a predecessor."""
    started = time.monotonic()
    while True:
        statuses = [peer.ask("status") for peer in peers.values()]
        if all(s["pending"] == 0 and s["held"] == 0 and s["waiting"] == 0 for s in statuses):
            return
        if time.monotonic() - started > SETTLE_LIMIT_SECONDS:
            raise AssertionError(f"exchange did not settle: {statuses}")
        time.sleep(0.05)


def play(peers: dict[str, Peer], dossiers: int) -> None:
    """File and transmit, let both agents act, sweep 90 days later, and act until done."""
    mediator, respondent = peers[MEDIATOR], peers[ALOMRANE]
    assert mediator.ask(f"file {dossiers}")["references"] == dossiers
    settle(peers)
    for round_number in range(8):
        fired = respondent.ask("act")["fired"]
        settle(peers)
        fired += mediator.ask("act")["fired"]
        settle(peers)
        if round_number == 1:
            fired += mediator.ask("sweep 90")["actions"]
            settle(peers)
        if fired == 0 and round_number > 1:
            return


def check_agreement(folder: Path, dossiers: int) -> None:
    keys = folder / "keys"
    mediator = open_side(f"sqlite:///{folder / 'mediator.db'}", MEDIATOR, keys)
    respondent = open_side(f"sqlite:///{folder / 'al-omrane.db'}", ALOMRANE, keys)
    try:
        linked = mediator.linked_dossiers()
        assert len(linked) == dossiers
        assert len(respondent.linked_dossiers()) == dossiers
        assert disagreements(mediator, respondent) == []
        assert {item.state for item in linked} == {"closed"}
        for side, peer in ((mediator, respondent), (respondent, mediator)):
            applied = applied_message_ids(side)
            assert len(applied) == len(set(applied)), "a message was applied twice"
            sent = {message.message_id for message in peer.sent()}
            received = {message.message_id for message in side.received()}
            assert sent == received, "a message was lost"
            assert {message.status for message in peer.sent()} == {"sent"}
            assert side.rejected() == []
            assert side.waiting() == []
            assert side.engine.verify().ok
    finally:
        mediator.engine.close()
        respondent.engine.close()


def test_processes_converge_with_faults(peers: dict[str, Peer], folder: Path) -> None:
    mediator, respondent = peers[MEDIATOR], peers[ALOMRANE]
    assert mediator.ask("file 40")["references"] == 40
    respondent.kill()  # the receiver is down while the sender retries
    time.sleep(0.5)
    peers[ALOMRANE] = Peer(ALOMRANE, folder, 13)
    connect(peers)
    play(peers, 20)
    faults = mediator.ask("status")["faults"]
    for peer in peers.values():
        peer.quit()
    assert faults.get("duplicate", 0) > 0
    assert faults.get("hold", 0) > 0
    check_agreement(folder, 60)


def test_sender_killed_after_commit(peers: dict[str, Peer], folder: Path) -> None:
    mediator = peers[MEDIATOR]
    mediator.ask("pause")
    assert mediator.ask("file 15")["references"] == 15
    assert mediator.ask("status")["pending"] == 15
    mediator.kill()  # committed, never sent
    peers[MEDIATOR] = Peer(MEDIATOR, folder, 14)
    connect(peers)
    play(peers, 0)
    for peer in peers.values():
        peer.quit()
    check_agreement(folder, 15)


@pytest.mark.slow
def test_two_thousand_dossiers_converge(peers: dict[str, Peer], folder: Path) -> None:
    play(peers, 2000)
    for peer in peers.values():
        peer.quit()
    check_agreement(folder, 2000)
