"""Exactly once under faults, with real `dispatcher worker` processes on a Redis broker: a worker killed
with SIGKILL mid-campaign, one stopped with SIGTERM twice (as a service manager stops it), and the Redis
restarted (its queues wiped) mid-campaign.

The store is the truth: the beat's tick (``workers.tasks.run_tick``) turns chunks a dead worker held
in ``sending`` into ``unknown`` once their lease expires, and hands queued chunks whose broker message
was lost to the queue again. Lease and staleness are shortened to seconds for the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu.exceptions import OperationalError
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from dispatcher import campaigns, runtime
from dispatcher.config import Settings
from dispatcher.simulator import RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.store import Recipient, make_engine, session_factory
from tests.stack import REDIS_URL, cleanup_redis, config_toml, write_contacts
from workers import tasks
from workers.app import make_celery

MESSAGES = 300
RATE = 60.0  # the account's requests/s: the campaign takes about five seconds
LEASE_SECONDS = "3"
STALE_SECONDS = "3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Harness:
    """A simulator, a store, a broker and `dispatcher worker` processes for one campaign."""

    def __init__(self, tmp: Path, database_url: str, broker_url: str, sim: RunningSimulator) -> None:
        self.tmp, self.sim, self.broker_url = tmp, sim, broker_url
        toml, self.accounts = config_toml(sim.base_url, uuid.uuid4().hex[:8], RATE)
        (tmp / "d.toml").write_text('send_window = "00:00-24:00"\n' + toml, encoding="utf-8")
        self.queue = f"faults-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "DISPATCHER_CONFIG": str(tmp / "d.toml"),
            "DISPATCHER_DATABASE_URL": database_url,
            "DISPATCHER_REDIS_URL": broker_url,
            "DISPATCHER_BROKER_URL": broker_url,
            "DISPATCHER_QUEUE": self.queue,
            "DISPATCHER_LEASE_SECONDS": LEASE_SECONDS,
            "DISPATCHER_STALE_QUEUED_SECONDS": STALE_SECONDS,
        }
        self.settings = Settings.load(self.env)
        self.engine = make_engine(database_url)
        self.sessions = session_factory(self.engine)
        self.app = make_celery(broker_url, redis_url=broker_url)
        self.app.conf.task_default_queue = self.queue
        self.workers: list[subprocess.Popen[bytes]] = []
        self.mobiles = [str(13600000000 + i) for i in range(MESSAGES)]

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker{len(self.workers)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "worker", "-c", "2", "-l", "WARNING"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool's children too
        )
        self.workers.append(process)
        return process

    def start_campaign(self) -> int:
        rows = [(m, f"客户{i}") for i, m in enumerate(self.mobiles)]
        path = write_contacts(self.tmp / "list.xlsx", rows)
        account = self.accounts["webservice"]
        created = campaigns.create(
            self.sessions, self.settings, path, "{姓名}您好【测试】", account, actor="t"
        )
        tasks.enqueue(campaigns.start(self.sessions, created.campaign_id, "t"), app=self.app)
        return created.campaign_id

    def accepted_by_vendor(self) -> Counter[str]:
        return Counter(e["mobile"] for e in self.sim.ledger()["accepted"] if e["vendor"] == "webservice")

    def wait(self, predicate: Callable[[], bool], timeout: float, *, tick: bool = False) -> None:
        """Poll ``predicate``; with ``tick``, run the beat's tick between polls (as the beat would)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if tick:
                # The broker may be restarting: the beat's next tick tries again.
                with contextlib.suppress(RedisError, OSError, OperationalError):
                    tasks.run_tick(self.app)
            if predicate():
                return
            time.sleep(0.5 if tick else 0.05)
        raise AssertionError("condition not reached in time")

    def state(self, campaign_id: int) -> str:
        with self.sessions() as session:
            return str(campaigns.status(session, campaign_id)["state"])

    def recipient_states(self) -> dict[str, str]:
        with self.sessions() as session:
            return {m: s for m, s in session.execute(select(Recipient.mobile, Recipient.state)).all() if m}

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.engine.dispose()


@pytest.fixture
def harness(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []
    simulators: dict[float, tuple[Any, RunningSimulator]] = {}  # by latency: its context, the simulator

    def make(broker_url: str, latency_ms: float = 100.0) -> Harness:
        if latency_ms not in simulators:
            config = SimulatorConfig(report_delay=0.0, seed=11, deliver_ratio=1.0, latency_ms=latency_ms)
            context = run_simulator(config)
            simulators[latency_ms] = (context, context.__enter__())
        h = Harness(tmp_path, database_url, broker_url, simulators[latency_ms][1])
        for key, value in h.env.items():
            if key.startswith("DISPATCHER_"):
                monkeypatch.setenv(key, value)  # run_tick in this process reads the same settings
        runtime.reset()
        made.append(h)
        return h

    try:
        yield make
    finally:
        for h in made:
            h.close()
        runtime.reset()
        for context, _ in simulators.values():
            context.__exit__(None, None, None)
        for h in made:
            with contextlib.suppress(RedisError):
                cleanup_redis(h.broker_url, h.accounts, [h.queue])


def assert_exactly_once(h: Harness, *, unknown_allowed: bool) -> dict[str, int]:
    """No number twice at the vendor; every recipient accepted (or unknown), none lost."""
    ledger = h.accepted_by_vendor()
    states = h.recipient_states()
    assert [m for m, n in ledger.items() if n > 1] == []  # no duplicate
    assert set(ledger) <= set(h.mobiles)
    assert sorted(states) == sorted(h.mobiles)  # every recipient is in the store
    allowed = {"accepted", "unknown"} if unknown_allowed else {"accepted"}
    assert {m: s for m, s in states.items() if s not in allowed} == {}  # none lost, none left queued
    # Accepted in the store means the vendor has it (no loss behind a false "accepted").
    assert [m for m, s in states.items() if s == "accepted" and ledger[m] != 1] == []
    return dict(Counter(states.values()))


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_two_workers_when_one_is_killed_mid_campaign_then_no_number_goes_twice_and_none_is_lost(
    harness: Callable[[str], Harness],
) -> None:
    # Given two worker processes sending a 300-message campaign at 60 requests/s
    h = harness(REDIS_URL)
    victim, survivor = h.start_worker(), h.start_worker()
    campaign_id = h.start_campaign()
    h.wait(lambda: sum(h.accepted_by_vendor().values()) >= 60, timeout=60)

    # When one worker (with its pool's children) is killed with SIGKILL in the middle of the campaign
    os.killpg(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=10) == -signal.SIGKILL
    at_kill = sum(h.accepted_by_vendor().values())
    assert at_kill < MESSAGES

    # Then the other worker and the beat's tick finish the campaign
    h.wait(lambda: h.state(campaign_id) in ("sent", "completed"), timeout=90, tick=True)
    assert survivor.poll() is None
    counts = assert_exactly_once(h, unknown_allowed=True)
    # Only what the dead worker held mid-send may be unknown; its queued work was sent by the other.
    assert counts.get("unknown", 0) <= 32 and counts["accepted"] >= MESSAGES - 32


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_a_worker_stopped_as_a_service_manager_does_then_its_rounds_are_recorded_and_nothing_is_unknown(
    harness: Callable[..., Harness],
) -> None:
    # Given two worker processes sending a 300-message campaign, the vendor answering in 1 s (some 60
    # requests on the wire at any time)
    h = harness(REDIS_URL, latency_ms=1000.0)
    stopped, survivor = h.start_worker(), h.start_worker()
    campaign_id = h.start_campaign()
    h.wait(lambda: sum(h.accepted_by_vendor().values()) >= 60, timeout=60)

    # When one is stopped as systemd stops a service: SIGTERM to every process of it (the pool's
    # children too), and again 50 ms later, while the terminated rounds await their answers
    os.killpg(stopped.pid, signal.SIGTERM)
    time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(stopped.pid, signal.SIGTERM)
    assert stopped.wait(timeout=30) is not None

    # Then every answer on the wire was recorded before the children ended: the other worker and the
    # beat finish the campaign with every number accepted once, none unknown
    h.wait(lambda: h.state(campaign_id) in ("sent", "completed"), timeout=90, tick=True)
    assert survivor.poll() is None
    assert assert_exactly_once(h, unknown_allowed=False) == {"accepted": MESSAGES}


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A Redis of this test's own (the shared one on 6379 must not restart): its URL, and a restart
    that kills it with SIGKILL and starts a fresh, empty one on the same port."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(tmp_path)]
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        client: Redis[Any] = Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def restart() -> None:
        processes[-1].send_signal(signal.SIGKILL)
        processes[-1].wait(timeout=10)
        time.sleep(1.0)  # down for a second: workers and the beat see connection errors
        start()

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
def test_given_a_campaign_when_redis_restarts_mid_campaign_then_the_store_requeues_and_each_number_goes_once(
    harness: Callable[[str], Harness], private_redis: tuple[str, Callable[[], None]]
) -> None:
    # Given two workers on a Redis of our own (broker and limiter) sending a 300-message campaign
    url, restart = private_redis
    h = harness(url)
    h.start_worker()
    h.start_worker()
    campaign_id = h.start_campaign()
    h.wait(lambda: sum(h.accepted_by_vendor().values()) >= 60, timeout=60)

    # When the Redis is killed and restarted empty: every queued message and the limiter state are gone
    restart()
    assert Redis.from_url(url).llen(h.queue) == 0
    at_restart = sum(h.accepted_by_vendor().values())
    assert at_restart < MESSAGES

    # Then the beat re-queues from the store what the broker lost, and every number goes exactly once
    h.wait(lambda: h.state(campaign_id) in ("sent", "completed"), timeout=90, tick=True)
    counts = assert_exactly_once(h, unknown_allowed=False)
    assert counts == {"accepted": MESSAGES}
