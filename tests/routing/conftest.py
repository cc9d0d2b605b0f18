"""A dispatch stack with accounts of the test's choosing (prices, balances, wrong passwords, dead
addresses): the simulator on loopback, the store (SQLite, and PostgreSQL when configured), real Redis
and a real Celery worker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import runtime
from dispatcher.config import Settings
from dispatcher.keys import DEFAULT_KEYS
from dispatcher.simulator import Account, RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.store import make_engine, session_factory
from tests.stack import REDIS_URL, Disposing, cleanup_redis
from workers import tasks
from workers.app import make_celery

__all__ = ["Acct", "RoutingStack"]


@dataclass(frozen=True)
class Acct:
    """One dispatcher account: ``user``/``password`` as the dispatcher sends them; ``sim_password``
    and ``balance`` what the simulator holds (a different password: a wrong one)."""

    name: str
    vendor: str
    user: str
    password: str = "demo"
    sim_password: str | None = None
    balance: int | None = None
    price: str | None = "1"
    base_url: str | None = None  # default: the simulator's; dead_url(): refuses connections
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoutingStack:
    sim: RunningSimulator
    settings: Settings
    sessions: sessionmaker[Session]
    app: Any
    tmp: Path
    names: dict[str, str]  # short name -> the dispatcher's account name (unique per test)
    redis: Redis[Any]

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.sim.ledger()["accepted"])


@pytest.fixture
def routing_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[Callable[..., RoutingStack]]:
    contexts: list[Any] = []
    cleanups: list[Callable[[], None]] = []

    def build(
        accounts: list[Acct], *, top: str = "", worker: bool = True, sim: SimulatorConfig | None = None
    ) -> RoutingStack:
        sim_accounts = tuple(
            Account(a.vendor, a.user, a.sim_password or a.password, balance=a.balance)
            for a in accounts
            if a.base_url is None
        )
        config = sim or SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0, accounts=sim_accounts)
        sim_cm = run_simulator(config)
        running = sim_cm.__enter__()
        contexts.append(sim_cm)
        suffix = uuid.uuid4().hex[:8]
        names = {a.name: f"{a.name}-{suffix}" for a in accounts}
        lines = ['send_window = "00:00-24:00"', top, ""]
        for a in accounts:
            lines += [
                f'[accounts."{names[a.name]}"]',
                f'vendor = "{a.vendor}"',
                f'base_url = "{a.base_url or running.base_url}"',
                f'user = "{a.user}"',
                f'password = "{a.password}"',
                f'channel = "{37 if a.vendor == "yunxin" else ""}"',
                "rate_limit = 1000",
                *([f"price_per_segment = {a.price}"] if a.price is not None else []),
                *(f"{k} = {v}" for k, v in a.extra.items()),
                "",
            ]
        (tmp_path / "dispatcher.toml").write_text("\n".join(lines), encoding="utf-8")
        monkeypatch.setenv("DISPATCHER_CONFIG", str(tmp_path / "dispatcher.toml"))
        monkeypatch.setenv("DISPATCHER_DATABASE_URL", database_url)
        monkeypatch.setenv("DISPATCHER_REDIS_URL", REDIS_URL)
        monkeypatch.setenv("DISPATCHER_BROKER_URL", REDIS_URL)
        runtime.reset()
        settings = Settings.load()
        app = make_celery(REDIS_URL, redis_url=REDIS_URL)
        app.conf.task_default_queue = f"test-{suffix}"
        redis: Redis[Any] = Redis.from_url(REDIS_URL)
        gates = [
            k
            for n in names.values()
            for k in (DEFAULT_KEYS.balance_gate_key(n), DEFAULT_KEYS.balance_cache_key(n))
        ]
        cleanups.append(lambda: (redis.delete(*gates), redis.close()))
        cleanups.append(lambda: cleanup_redis(REDIS_URL, names, [f"test-{suffix}"]))
        tasks.register(app)
        if worker:
            worker_cm = start_worker(
                app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=20
            )
            worker_cm.__enter__()
            contexts.append(worker_cm)
        engine = make_engine(database_url)
        contexts.append(Disposing(engine))
        return RoutingStack(running, settings, session_factory(engine), app, tmp_path, names, redis)

    yield build
    for cm in reversed(contexts):
        cm.__exit__(None, None, None)
    runtime.reset()
    for cleanup in cleanups:
        cleanup()
