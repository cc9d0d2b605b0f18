"""A whole dispatch stack per test: simulator on loopback, the store, real Redis, a real Celery worker.

The store is SQLite, and PostgreSQL too when ``DISPATCHER_TEST_POSTGRES_URL`` is set: every test that
uses ``database_url`` (or ``make_stack``) then runs on both, the PostgreSQL one in a schema of its own,
dropped afterwards (other suites share that database).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import runtime
from dispatcher.config import Settings
from dispatcher.keys import rate_key
from dispatcher.simulator import Account, RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.store import make_engine, session_factory, upgrade
from workers import tasks
from workers.app import make_celery

REDIS_URL = "redis://127.0.0.1:6379/0"
ENTINFO_SN = "SDK-DEMO-010-00001"
PG_URL = os.environ.get("DISPATCHER_TEST_POSTGRES_URL")
# No skipped tests: PostgreSQL is a parameter only when a server is configured.
DATABASES = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty store: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        upgrade(url)
        yield url
        return
    assert PG_URL
    schema = f"test_dispatch_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = url.render_as_string(hide_password=False)
        upgrade(rendered)
        yield rendered
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def cleanup_redis(redis_url: str, accounts: dict[str, str], queues: list[str]) -> None:
    """Remove what a test left in the shared Redis: its accounts' limiter state and its queues."""
    client: Redis[Any] = Redis.from_url(redis_url)
    try:
        client.delete(*(rate_key(name) for name in accounts.values()), *queues)
    finally:
        client.close()


@dataclass
class Stack:
    sim: RunningSimulator
    settings: Settings
    sessions: sessionmaker[Session]
    app: Celery
    tmp: Path
    accounts: dict[str, str]  # vendor -> account name in the dispatcher config

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("condition not reached in time")


def write_contacts(
    path: Path, rows: list[tuple[Any, ...]], header: tuple[str, ...] = ("手机号", "姓名")
) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def config_toml(
    base_url: str, suffix: str, rate_limit: float, **overrides: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    accounts = {
        "webservice": ("webservice", "demo", "demo"),
        "yunxin": ("yunxin", "demo", "demo"),
        "trigger": ("trigger", "demo", "demo"),
        "entinfo": ("entinfo", ENTINFO_SN, "demo"),
    }
    names: dict[str, str] = {}
    lines = []
    for vendor, (v, user, password) in accounts.items():
        name = f"{vendor}-{suffix}"
        names[vendor] = name
        extra = overrides.get(vendor, {})
        lines += [
            f'[accounts."{name}"]',
            f'vendor = "{v}"',
            f'base_url = "{base_url}"',
            f'user = "{extra.get("user", user)}"',
            f'password = "{extra.get("password", password)}"',
            f'channel = "{37 if v == "yunxin" else ""}"',
            f"rate_limit = {rate_limit}",
            "",
        ]
    return "\n".join(lines), names


@pytest.fixture
def make_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[Callable[..., Stack]]:
    contexts: list[Any] = []
    cleanups: list[Callable[[], None]] = []

    def build(
        sim_config: SimulatorConfig | None = None,
        *,
        rate_limit: float = 1000.0,
        overrides: dict[str, dict[str, Any]] | None = None,
        worker: bool = True,
    ) -> Stack:
        config = sim_config or SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0)
        sim_cm = run_simulator(config)
        sim = sim_cm.__enter__()
        contexts.append(sim_cm)
        suffix = uuid.uuid4().hex[:8]
        toml, names = config_toml(sim.base_url, suffix, rate_limit, **(overrides or {}))
        (tmp_path / "dispatcher.toml").write_text('send_window = "00:00-24:00"\n' + toml, encoding="utf-8")
        db_url = database_url
        monkeypatch.setenv("DISPATCHER_CONFIG", str(tmp_path / "dispatcher.toml"))
        monkeypatch.setenv("DISPATCHER_DATABASE_URL", db_url)
        monkeypatch.setenv("DISPATCHER_REDIS_URL", REDIS_URL)
        monkeypatch.setenv("DISPATCHER_BROKER_URL", REDIS_URL)
        runtime.reset()
        settings = Settings.load()
        app = make_celery(REDIS_URL, redis_url=REDIS_URL)
        app.conf.task_default_queue = f"test-{suffix}"
        cleanups.append(lambda: cleanup_redis(REDIS_URL, names, [f"test-{suffix}"]))
        tasks.register(app)
        if worker:
            worker_cm = start_worker(
                app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=20
            )
            worker_cm.__enter__()
            contexts.append(worker_cm)
        engine = make_engine(db_url)
        contexts.append(_Disposing(engine))
        return Stack(sim, settings, session_factory(engine), app, tmp_path, names)

    yield build
    for cm in reversed(contexts):
        cm.__exit__(None, None, None)
    runtime.reset()
    for cleanup in cleanups:
        cleanup()


class _Disposing:
    """Closes an engine's connections when the stack is taken down (before its schema is dropped)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()


__all__ = ["Account", "Stack", "write_contacts"]
