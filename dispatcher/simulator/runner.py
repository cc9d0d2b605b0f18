"""Running the simulator for tests, the demo and benchmarks.

- ``run_simulator(config)``: in this process, on a background thread with its own event loop. Cheap to
  start (milliseconds); shares the GIL with the caller, so not for throughput measurements.
- ``start_simulator_process(config)``: a child process (``python -m dispatcher.simulator``), for
  benchmarks. The config, passwords included, goes through the child's stdin, never its command line.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx

from dispatcher.simulator.config import SimulatorConfig, config_to_json
from dispatcher.simulator.server import SimulatorServer, new_event_loop
from dispatcher.simulator.state import SimState

T = TypeVar("T")
READY_PREFIX = "simulator listening on "


class RunningSimulator:
    """A simulator on a background thread. State is only touched on its loop (``call``)."""

    def __init__(self, server: SimulatorServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self.config = server.config
        self.base_url = server.base_url

    def call(self, fn: Callable[[SimState], T]) -> T:
        """Run ``fn(state)`` on the simulator's loop and return its result."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn(self._server.state))
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        return self.call(lambda state: state.ledger())

    def reset(self) -> None:
        self.call(lambda state: state.reset())

    def add_reply(self, vendor: str, account: str, mobile: str, text: str) -> None:
        import time

        def add(state: SimState) -> None:
            acct = state.lookup(vendor, account)
            if acct is None:
                raise KeyError(f"no {vendor} account {account!r}")
            state.add_reply(acct, mobile, text, time.time())

        self.call(add)


@contextmanager
def run_simulator(config: SimulatorConfig | None = None) -> Iterator[RunningSimulator]:
    config = config or SimulatorConfig()
    loop = new_event_loop()
    server = SimulatorServer(config)
    started: Future[None] = Future()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=main, name="sms-simulator", daemon=True)
    thread.start()
    started.result(timeout=30)
    try:
        yield RunningSimulator(server, loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


class SimulatorProcess:
    """A simulator in a child process; the ledger and reset go over HTTP."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url

    @property
    def pid(self) -> int:
        return self.process.pid

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        data: dict[str, list[dict[str, Any]]] = httpx.get(self.base_url + "/_sim/ledger", timeout=120).json()
        return data

    def reset(self) -> None:
        httpx.post(self.base_url + "/_sim/reset", timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def start_simulator_process(config: SimulatorConfig | None = None) -> Iterator[SimulatorProcess]:
    config = config or SimulatorConfig()
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.simulator", "--config-stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    handle = None
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(config_to_json(config))
        process.stdin.close()
        line = process.stdout.readline()  # the child prints its address once it listens
        if not line.startswith(READY_PREFIX):
            raise RuntimeError(f"simulator process did not start (said {line!r})")
        handle = SimulatorProcess(process, line[len(READY_PREFIX) :].strip())
        yield handle
    finally:
        if handle is not None:
            handle.stop()
        elif process.poll() is None:
            process.kill()
            process.wait()
