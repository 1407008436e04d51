"""One institution's side of the exchange in its own process, driven by line commands.

Run by tests/test_exchange_processes.py as ``python tests/exchange_peer.py INSTITUTION DB KEYS
SEED``. The process serves the exchange app with uvicorn on 127.0.0.1 (a free port it reports),
relays its outbox to the peer through a fault-injecting HTTP transport in a background thread,
and writes one JSON line per command read from standard input:

    peer URL        send to the peer's app at URL
    file N          (Mediator) file N dossiers and transmit them
    act             run one round of this side's agent policy
    sweep DAYS      advance the engine's clock by DAYS days and sweep
    pause / resume  stop or restart the relay (pause first flushes held messages)
    status          counts of pending, waiting, rejected and held messages
    quit            stop and exit
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn

from case_workflow.clock import SystemClock
from case_workflow.exchange import Fault, FaultyTransport, TransportError
from case_workflow.exchange.http import HttpTransport, create_app
from tests.exchange_helpers import (
    MEDIATOR,
    Policy,
    act,
    file_and_transmit,
    open_side,
)

RATES = {
    Fault.DELIVER: 0.70,
    Fault.LOSE_REQUEST: 0.06,
    Fault.LOSE_RESPONSE: 0.06,
    Fault.DUPLICATE: 0.06,
    Fault.DELAY: 0.06,
    Fault.HOLD: 0.06,
}


def main() -> None:
    institution, database, keys, seed = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    exchange = open_side(f"sqlite:///{database}", institution, keys, relay_clock=SystemClock())
    policy = Policy(int(seed))
    network = FaultyTransport(HttpTransport("http://127.0.0.1:9"), seed=int(seed), rates=RATES)
    lock = threading.Lock()
    relaying = threading.Event()
    relaying.set()
    stopping = threading.Event()

    def relay_loop() -> None:
        while not stopping.is_set():
            if not relaying.wait(0.05):
                continue
            with lock:
                result = exchange.relay(network, limit=200)
                with contextlib.suppress(TransportError):
                    network.flush()  # keeps held what it could not deliver
            if result.attempted == 0:
                stopping.wait(0.02)

    server = uvicorn.Server(
        uvicorn.Config(create_app(exchange), host="127.0.0.1", port=0, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        stopping.wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    relay_thread = threading.Thread(target=relay_loop, daemon=True)
    relay_thread.start()
    print(json.dumps({"ready": True, "port": port}), flush=True)

    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        answer: dict[str, object] = {"command": command}
        if command == "peer":
            with lock:
                network.inner = HttpTransport(argument)
        elif command == "file":
            answer["references"] = len(file_and_transmit(exchange, int(argument), seed=int(seed)))
        elif command == "act":
            answer["fired"] = act(exchange, policy)
        elif command == "sweep":
            exchange.engine.clock.advance(timedelta(days=int(argument)))  # type: ignore[attr-defined]
            result = exchange.engine.sweep()
            answer["actions"] = result.actions
        elif command == "pause":
            relaying.clear()
            with lock:
                network.flush()
        elif command == "resume":
            relaying.set()
        elif command == "status":
            with lock:
                answer["held"] = len(network.held)
                answer["faults"] = {fault.value: count for fault, count in network.counts.items()}
            answer["pending"] = len(exchange.pending())
            answer["waiting"] = len(exchange.waiting())
            answer["rejected"] = len(exchange.rejected())
            answer["stuck"] = len(exchange.stuck(min_attempts=1000))
        elif command == "quit":
            break
        print(json.dumps(answer), flush=True)
    stopping.set()
    relay_thread.join()
    server.should_exit = True
    exchange.engine.close()
    print(json.dumps({"command": "quit"}), flush=True)


if __name__ == "__main__":
    assert sys.argv[1] in {MEDIATOR, "al-omrane"}, sys.argv
    main()
