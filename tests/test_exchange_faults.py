"""Property: whatever the faults on the wire, both sides converge and apply each message once.

Hypothesis draws a fault for each send in each direction (delivered, lost before or after the
peer, duplicated, delayed, held and delivered later in shuffled order), an outage of the
receiver, and the agents' choices; both sides run in this process on SQLite files.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from case_workflow.exchange import Exchange, Fault, FaultyTransport
from tests.exchange_helpers import (
    ALOMRANE,
    MEDIATOR,
    DirectTransport,
    Policy,
    act,
    applied_message_ids,
    disagreements,
    file_and_transmit,
    make_keys,
    open_side,
)

faults = st.lists(st.sampled_from(list(Fault)), max_size=60)


def settle(sides: dict[str, Exchange], wires: dict[str, FaultyTransport]) -> None:
    """Relay and flush until no message is pending, held or waiting (faults end eventually)."""
    for _ in range(200):
        for name, side in sides.items():
            clock = side.clock
            clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
            side.relay(wires[name])
            wires[name].flush()
        idle = all(
            not side.pending() and not side.waiting() and not wires[name].held
            for name, side in sides.items()
        )
        if idle:
            return
    raise AssertionError("the exchange did not settle")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    to_respondent=faults,
    to_mediator=faults,
    dossiers=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=1000),
    outage=st.booleans(),
)
def test_faults_never_break_agreement(
    to_respondent: list[Fault],
    to_mediator: list[Fault],
    dossiers: int,
    seed: int,
    outage: bool,
) -> None:
    from case_workflow.clock import SimulatedClock
    from tests.exchange_helpers import START

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        make_keys(root / "keys")
        sides = {
            name: open_side(
                f"sqlite:///{root / name}.db",
                name,
                root / "keys",
                relay_clock=SimulatedClock(START),
            )
            for name in (MEDIATOR, ALOMRANE)
        }
        network = DirectTransport(sides)
        wires = {
            MEDIATOR: FaultyTransport(network, seed=seed, schedule=to_respondent),
            ALOMRANE: FaultyTransport(network, seed=seed + 1, schedule=to_mediator),
        }
        policy = Policy(seed)
        try:
            file_and_transmit(sides[MEDIATOR], dossiers, seed=seed)
            if outage:
                wires[MEDIATOR].down = True
                sides[MEDIATOR].relay(wires[MEDIATOR])
                wires[MEDIATOR].down = False
            settle(sides, wires)
            for round_number in range(6):
                act(sides[ALOMRANE], policy)
                act(sides[MEDIATOR], policy)
                settle(sides, wires)
                if round_number == 1:
                    sides[MEDIATOR].engine.clock.advance(timedelta(days=90))  # type: ignore[attr-defined]
                    sides[MEDIATOR].engine.sweep()
                    settle(sides, wires)
            assert disagreements(sides[MEDIATOR], sides[ALOMRANE]) == []
            for name, side in sides.items():
                applied = applied_message_ids(side)
                assert len(applied) == len(set(applied))
                peer = sides[ALOMRANE if name == MEDIATOR else MEDIATOR]
                assert {m.message_id for m in peer.sent()} == {
                    m.message_id for m in side.received()
                }
                assert side.rejected() == []
                assert side.engine.verify().ok
        finally:
            for side in sides.values():
                side.engine.close()
