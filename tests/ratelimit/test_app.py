"""The Celery app: settings, lazy configuration, and a real worker on each broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.ratelimit.conftest import delete_prefix
from workers.app import (
    BROKER_ENV,
    EMBEDDED_BROKER_URL,
    MAX_COUNTDOWN,
    VISIBILITY_TIMEOUT,
    clamp_countdown,
    make_celery,
)

CELERY = str(Path(sys.executable).with_name("celery"))
REDIS_BROKER = "redis://127.0.0.1:6379/11"


def test_given_no_broker_anywhere_then_the_embedded_sqlite_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BROKER_ENV, raising=False)
    assert make_celery().conf.broker_url == EMBEDDED_BROKER_URL


def test_given_the_env_var_set_after_the_app_was_built_then_it_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BROKER_ENV, raising=False)
    app = make_celery()  # what `import workers.app` does
    monkeypatch.setenv(BROKER_ENV, REDIS_BROKER)  # what the worker's environment does
    assert app.conf.broker_url == REDIS_BROKER
    assert app.conf.dispatcher_redis_url == REDIS_BROKER  # a Redis broker doubles as the Redis


def test_given_an_argument_then_it_wins_over_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROKER_ENV, REDIS_BROKER)
    app = make_celery("sqla+sqlite:///x.sqlite3", redis_url="redis://h:6379/2")
    assert app.conf.broker_url == "sqla+sqlite:///x.sqlite3"
    assert app.conf.dispatcher_redis_url == "redis://h:6379/2"


def test_given_the_app_then_exactly_once_settings_are_on() -> None:
    conf = make_celery("memory://").conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_acks_on_failure is True and conf.task_acks_on_timeout is False
    assert conf.task_ignore_result and conf.result_backend is None
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.broker_connection_retry_on_startup
    assert MAX_COUNTDOWN < VISIBILITY_TIMEOUT


def test_given_a_redis_broker_then_its_visibility_timeout_outlasts_any_countdown() -> None:
    conf = make_celery(REDIS_BROKER).conf
    assert conf.broker_transport_options == {"visibility_timeout": VISIBILITY_TIMEOUT}


def test_given_a_sql_broker_then_only_engine_arguments_are_passed_to_the_transport() -> None:
    # kombu's SQLAlchemy transport gives every option to create_engine(), which rejects others.
    assert make_celery("sqla+sqlite:///b.sqlite3").conf.broker_transport_options == {
        "connect_args": {"timeout": 30}
    }
    assert make_celery("sqla+postgresql://u@h/db").conf.broker_transport_options == {}


def test_given_a_countdown_beyond_the_maximum_then_it_is_clamped() -> None:
    assert clamp_countdown(10 * VISIBILITY_TIMEOUT) == MAX_COUNTDOWN
    assert clamp_countdown(-3) == 0.0
    assert clamp_countdown(12.5) == 12.5


def test_given_two_apps_then_each_has_the_ping_task() -> None:
    assert "dispatcher.ping" in make_celery("memory://").tasks
    assert "dispatcher.ping" in make_celery("memory://").tasks


@pytest.fixture
def worker_dir(tmp_path: Path) -> Path:
    return tmp_path


def start_worker(cwd: Path, queue: str, broker_env: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != BROKER_ENV}
    if broker_env is not None:
        env[BROKER_ENV] = broker_env
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    log = (cwd / "worker.log").open("wb")
    return subprocess.Popen(
        [CELERY, "-A", "workers.app", "worker", "-Q", queue, "-P", "solo", "-l", "info",
         "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.fixture(params=["redis", "embedded-sqlite"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Celery, str | None]]:
    """(producer app, the worker's DISPATCHER_BROKER_URL); None = the embedded default."""
    if request.param == "redis":
        app = make_celery(REDIS_BROKER)
        yield app, REDIS_BROKER
    else:
        # The worker runs in tmp_path with no env var: the default relative SQLite file lands there.
        app = make_celery(f"sqla+sqlite:///{tmp_path / 'dispatcher-broker.sqlite3'}")
        yield app, None
    app.close()


def test_given_a_real_worker_on_each_broker_when_ping_is_sent_then_the_worker_runs_it(
    broker: tuple[Celery, str | None], tmp_path: Path
) -> None:
    app, worker_broker = broker
    queue = f"test-ratelimit-{uuid.uuid4().hex[:10]}"
    marker = tmp_path / "pong"
    token = uuid.uuid4().hex
    # Sent before the worker starts: the message waits in the broker (the table, or the Redis list).
    app.send_task("dispatcher.ping", kwargs={"marker": str(marker), "token": token}, queue=queue)
    worker = start_worker(tmp_path, queue, worker_broker)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert marker.exists(), log
        assert marker.read_text() == token
        # A ready worker picks each new task up promptly (kombu's default SQL polling is 1 s).
        latencies = []
        for n in range(5):
            sent = time.monotonic()
            app.send_task("dispatcher.ping", kwargs={"marker": str(marker), "token": str(n)}, queue=queue)
            while marker.read_text() != str(n) and time.monotonic() - sent < 5:
                time.sleep(0.01)
            latencies.append(time.monotonic() - sent)
        assert sorted(latencies)[2] < 0.4, latencies
        if worker_broker is None:
            assert "sqla+sqlite:///dispatcher-broker.sqlite3" in log
            assert "polling the SQL broker every 0.1 s" in log
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        if worker_broker is not None:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_delete(queue)
            # kombu keeps per-queue binding keys besides the queue itself.
            client: redis.Redis[Any] = redis.Redis.from_url(REDIS_BROKER)
            delete_prefix(client, f"*{queue}")
            client.close()
