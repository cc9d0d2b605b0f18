"""The Celery app: built when called, configured lazily from the environment.

``celery -A workers.app worker`` (or ``-A workers`` once ``workers/__init__.py`` re-exports
``app``) needs a module-level ``app``; its configuration is a promise that Celery evaluates the
first time a setting is read, i.e. when the worker starts, so nothing is read from the
environment at import.

Broker: ``DISPATCHER_BROKER_URL``, else the embedded default, kombu's SQLAlchemy transport on a
SQLite file in the working directory (no server to install). Production uses Redis.

Settings that go with the chunk state machine (README, "How sending stays exactly once"):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its
  task finished, and redelivered if the worker process died; the chunk claim in the store
  (``queued -> sending``) turns a redelivery into a no-op.
- ``worker_prefetch_multiplier=1``: a worker holds one unacknowledged message at a time, so a
  crash strands at most one and other workers are not starved.
- ``task_acks_on_failure=True``: a task that raised has written its outcome or left its chunk in
  ``sending`` for the lease to settle; redelivering it would only loop on the same bug.
- ``task_acks_on_timeout=False``: a task killed by its time limit may not have claimed its chunk
  yet (waiting on the rate limiter); requeueing it is safe because the claim is idempotent.
  (Celery 5.7 split the old ``task_acks_on_failure_or_timeout`` into these two.)
- ``visibility_timeout`` (Redis broker) longer than any countdown: a message with a countdown is
  held unacknowledged by a worker, and Redis redelivers it to another worker once the timeout
  passes: Celery's duplicate-delivery trap. Longer waits belong in the store (beat launches).

Queues: sends go to the send queue, ``DISPATCHER_QUEUE`` (default ``dispatcher``); the beat's
periodic tasks (every task named in ``beat_schedule``: launch/sweep/re-queue, results pulls) are
routed to its beat queue, the same name plus ``.beat`` (``dispatcher.beat``), so that they never wait
behind a backlog of sends. ``dispatcher worker`` consumes both unless told ``-Q``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps

from workers.broker import TRANSPORT as REDIS_TRANSPORT

logger = logging.getLogger(__name__)

BROKER_ENV = "DISPATCHER_BROKER_URL"
REDIS_ENV = "DISPATCHER_REDIS_URL"
QUEUE_ENV = "DISPATCHER_QUEUE"
DEFAULT_QUEUE = "dispatcher"
BEAT_QUEUE_SUFFIX = ".beat"
EMBEDDED_BROKER_URL = "sqla+sqlite:///dispatcher-broker.sqlite3"

# Seconds. No task may be scheduled further ahead than MAX_COUNTDOWN (see the module docstring).
VISIBILITY_TIMEOUT = 2 * 3600
MAX_COUNTDOWN = 3600
assert MAX_COUNTDOWN < VISIBILITY_TIMEOUT, "a countdown past the visibility timeout is delivered twice"

# kombu's SQLAlchemy transport polls its table; the default (1 s) would add up to a second of
# latency to every task of the embedded broker. It cannot go in broker_transport_options: that
# transport hands every option to create_engine(), which rejects unknown ones (TypeError), so a
# worker bootstep sets it on the connected transport instead.
SQLA_POLLING_INTERVAL = 0.1
# SQLite's busy timeout for the embedded broker: producers and polling workers all take the
# file's write lock (the transport's _get starts with BEGIN IMMEDIATE); wait rather than fail.
SQLITE_BUSY_TIMEOUT = 30

_OPTIONAL_TASK_MODULES = ("workers.tasks",)


def clamp_countdown(seconds: float) -> float:
    """A countdown Celery may safely hold: within [0, MAX_COUNTDOWN]."""
    return min(max(seconds, 0.0), float(MAX_COUNTDOWN))


def is_sql_broker(broker_url: str) -> bool:
    return broker_url.split("://", 1)[0].split("+", 1)[0] in ("sqla", "sqlalchemy")


def transport_options(broker_url: str) -> dict[str, Any]:
    """``broker_transport_options`` for a broker (pure)."""
    if not is_sql_broker(broker_url):
        return {"visibility_timeout": VISIBILITY_TIMEOUT}
    # The SQLAlchemy transport passes these to create_engine(); it has no visibility timeout.
    if "+sqlite:" in broker_url:
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
    return {}


def broker_transport(broker_url: str) -> str | None:
    """``broker_transport`` for a broker: kombu's Redis transport fixed to reconnect after a Redis
    restart (see :mod:`workers.broker`) for ``redis://`` and ``rediss://``; else the URL's own."""
    return REDIS_TRANSPORT if broker_url.split("://", 1)[0] in ("redis", "rediss") else None


def celery_settings(broker_url: str, redis_url: str | None) -> dict[str, Any]:
    """The app's settings for a broker (pure)."""
    return {
        "broker_url": broker_url,
        "broker_transport": broker_transport(broker_url),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options(broker_url),
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure": True,
        "task_acks_on_timeout": False,
        "worker_prefetch_multiplier": 1,
        # A task running when the broker connection drops is left to finish: its outcome goes to
        # the store, the truth. Cancelling it (SIGTERM into the child) could cut it between its claim
        # and its record, leaving chunks the vendor accepted as ``unknown``. If the broker redelivers
        # the message, the second run finds its chunks no longer ``queued`` and does nothing.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "enable_utc": True,
        "timezone": "Asia/Shanghai",
        # Limiter, locks and pings: its own setting; a Redis broker doubles as this Redis.
        "dispatcher_redis_url": redis_url or (broker_url if broker_url.startswith("redis") else None),
        # Task modules written apart from this one, imported by the worker when they exist.
        "imports": [m for m in _OPTIONAL_TASK_MODULES if importlib.util.find_spec(m) is not None],
    }


def beat_queue(send_queue: str) -> str:
    """The queue of the beat's periodic tasks beside a send queue (``dispatcher`` → ``dispatcher.beat``)."""
    return send_queue + BEAT_QUEUE_SUFFIX


def worker_queues(send_queue: str) -> list[str]:
    """What a worker consumes by default: the send queue and its beat queue."""
    return [send_queue, beat_queue(send_queue)]


def ping(marker: str | None = None, token: str = "pong") -> str:
    """Proof of life: writes ``token`` to the file ``marker`` (results are ignored) and returns it."""
    if marker:
        Path(marker).write_text(token, encoding="utf-8")
    return token


class PollingInterval(bootsteps.StartStopStep):
    """Worker consumer step: poll a SQL broker every SQLA_POLLING_INTERVAL s instead of every 1 s."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, parent: Any) -> None:
        transport = parent.connection.transport
        if getattr(transport, "driver_type", "") == "sql":
            transport.polling_interval = SQLA_POLLING_INTERVAL
            logger.info("polling the SQL broker every %s s", SQLA_POLLING_INTERVAL)


def make_celery(broker_url: str | None = None, *, redis_url: str | None = None) -> Celery:
    """A new app. Arguments win over the environment, which is read only when a setting is."""

    def settings() -> dict[str, Any]:
        broker = broker_url or os.environ.get(BROKER_ENV) or EMBEDDED_BROKER_URL
        settings = celery_settings(broker, redis_url or os.environ.get(REDIS_ENV))
        # One queue name per deployment (or per test run sharing a Redis).
        settings["task_default_queue"] = os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE
        settings["task_routes"] = (route_periodic,)
        return settings

    def route_periodic(name: str, *_args: Any, **_kwargs: Any) -> dict[str, str] | None:
        # Read when a task is sent, so a default queue changed after the app was built still counts.
        periodic = {entry["task"] for entry in app.conf.beat_schedule.values()}
        return {"queue": beat_queue(app.conf.task_default_queue)} if name in periodic else None

    app = Celery("dispatcher", set_as_current=False)
    app.add_defaults(settings)
    app.task(name="dispatcher.ping")(ping)
    app.steps["consumer"].add(PollingInterval)
    return app


app = make_celery()
