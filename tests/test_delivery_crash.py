"""A relay process killed between sending an e-mail and recording it: nothing lost, duplicates
carry their idempotency key.

The relay runs in a child process. The child installs an ``after_send`` hook that sends
SIGKILL to its own process after the number of sends named by ``CW_TEST_KILL_AFTER_SENDS``,
that is after the SMTP server accepted a message and before the outbox row is marked sent.
Each run uses a later clock reading than the one before, so the leases of the killed run
have ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest

from case_workflow import Complainant, Engine
from case_workflow.delivery import ARCHIVE_TRIGGER, OutboxStatus, count_outbox, list_outbox
from tests.conftest import MEDIATOR_AGENT
from tests.test_delivery_smtp import LoopbackController, Mailbox, pdf_attachment

pytest.importorskip("weasyprint")

RESPONDENT = "al-omrane-rabat-sale-kenitra"
DOSSIERS = 5
KILL_POINTS = (1, 2, 1)

RELAY_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from case_workflow import SimulatedClock
    from case_workflow.delivery import OutboxRelay, SmtpChannel
    from case_workflow.store.database import connect

    url, port, now = sys.argv[1], int(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
    kill_after = int(os.environ.get("CW_TEST_KILL_AFTER_SENDS", "0"))
    sends = 0

    def after_send(message):
        global sends
        sends += 1
        if kill_after and sends >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    relay = OutboxRelay(
        connect(url),
        {"email": SmtpChannel("127.0.0.1", port, sender="bo@mediateur.example")},
        clock=SimulatedClock(now),
        batch_size=2,
        after_send=after_send,
    )
    while relay.run_once().handled:
        pass
    """
)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    controller = LoopbackController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def run_relay(engine: Engine, port: int, hours_later: int, kill_after: int) -> int:
    environment = dict(os.environ)
    environment["CW_TEST_KILL_AFTER_SENDS"] = str(kill_after)
    now = engine.clock.now() + timedelta(hours=hours_later)
    url = engine.database.url.render_as_string(hide_password=False)
    completed = subprocess.run(
        [sys.executable, "-c", RELAY_SCRIPT, url, str(port), now.isoformat()],
        env=environment,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"relay failed with status {completed.returncode}: {completed.stderr}")
    return completed.returncode


def test_killed_relay_loses_nothing(engine: Engine, mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    references = [
        engine.file(
            "mediator-alomrane",
            actor=MEDIATOR_AGENT,
            complainant=Complainant(f"Citoyen {index}", email=f"c{index}@example.org"),
            subject="Lot non attribué",
            respondent=RESPONDENT,
        ).reference
        for index in range(DOSSIERS)
    ]

    statuses = [
        run_relay(engine, port, hours, kill_after)
        for hours, kill_after in enumerate(KILL_POINTS, start=1)
    ]
    final = run_relay(engine, port, len(KILL_POINTS) + 1, kill_after=0)

    assert statuses == [-signal.SIGKILL] * len(KILL_POINTS)
    assert final == 0
    assert count_outbox(engine)[OutboxStatus.SENT] == DOSSIERS
    expected_keys = {entry.idempotency_key for entry in list_outbox(engine)}
    assert expected_keys == {f"{reference}:1:acknowledgement" for reference in references}

    received = Counter(mail["X-Idempotency-Key"] for mail in handler.messages)
    assert set(received) == expected_keys
    # Each kill came right after one send, so each left exactly one message to send again.
    assert sum(received.values()) == DOSSIERS + len(KILL_POINTS)
    for key, copies in received.items():
        if copies == 1:
            continue
        mails = [mail for mail in handler.messages if mail["X-Idempotency-Key"] == key]
        assert len({mail["Message-ID"].strip() for mail in mails}) == 1
        assert len({pdf_attachment(mail)[1] for mail in mails}) == 1


def test_killed_relay_archives_once(engine: Engine, mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    reference = engine.file(
        "mediator-alomrane",
        actor=MEDIATOR_AGENT,
        complainant=Complainant("Citoyenne", email="c@example.org", language="ar"),
        subject="Lot non attribué",
        respondent=RESPONDENT,
    ).reference

    assert run_relay(engine, port, 1, kill_after=1) == -signal.SIGKILL
    assert run_relay(engine, port, 2, kill_after=0) == 0

    assert len(handler.messages) == 2
    # The second process rendered the same PDF bytes, so no second archive event.
    triggers = [event.trigger for event in engine.history(reference)]
    assert triggers.count(ARCHIVE_TRIGGER) == 1
    assert engine.verify().broken == ()
