"""The shared stack fixtures: a whole dispatch stack per test (simulator on loopback, the store, real
Redis, a real Celery worker); its parts are in tests/stack.py.

The store is SQLite, and PostgreSQL too when ``DISPATCHER_TEST_POSTGRES_URL`` is set: every test that
uses ``database_url`` (or ``make_stack``) then runs on both, the PostgreSQL one in a schema of its own,
dropped afterwards (other suites share that database).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Imported here, before any test starts a thread: hypothesis's pytest plugin would otherwise import it
# at the end of a session that ran no property test, for its summary, and CPython 3.11 compiles it
# with an AST recursion counter shared by all threads: a thread compiling meanwhile (a test's leftover
# worker or loop importing lazily) made the run end in "SystemError: AST constructor recursion depth
# mismatch", exit status 1, after every test had passed.
import hypothesis  # noqa: F401
import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dispatcher import runtime
from dispatcher.config import Settings
from dispatcher.simulator import SimulatorConfig, run_simulator
from dispatcher.store import make_engine, session_factory, upgrade
from tests.stack import DATABASES, PG_URL, REDIS_URL, Disposing, Stack, cleanup_redis, config_toml
from workers import tasks
from workers.app import make_celery


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
        contexts.append(Disposing(engine))
        return Stack(sim, settings, session_factory(engine), app, tmp_path, names)

    yield build
    for cm in reversed(contexts):
        cm.__exit__(None, None, None)
    runtime.reset()
    for cleanup in cleanups:
        cleanup()
