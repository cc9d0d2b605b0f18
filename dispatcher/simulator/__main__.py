"""``python -m dispatcher.simulator --config-stdin``: the child process of ``start_simulator_process``.
People use ``dispatcher simulate``."""

from __future__ import annotations

import asyncio
import signal
import sys

from dispatcher.simulator.config import config_from_json
from dispatcher.simulator.runner import READY_PREFIX
from dispatcher.simulator.server import SimulatorServer, new_event_loop, serve_forever


def main() -> None:
    if sys.argv[1:] != ["--config-stdin"]:
        sys.exit("usage: python -m dispatcher.simulator --config-stdin  (a JSON SimulatorConfig on stdin)")
    config = config_from_json(sys.stdin.read())

    def ready(server: SimulatorServer) -> None:
        print(READY_PREFIX + server.base_url, flush=True)

    loop = new_event_loop()
    task = loop.create_task(serve_forever(config, ready))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()


if __name__ == "__main__":
    main()
