"""The worker's heartbeat (``dispatcher.operations.heartbeat``): a bootstep of the worker's main process,
started once the worker knows its queues, stopped when it shuts down. Also the JSON log format, when set."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps, signals
from celery.beat import PersistentScheduler

from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.operations import heartbeat, logs
from dispatcher.operations.fingerprint import Fingerprints, store_fingerprint

logger = logging.getLogger(__name__)
IN_MEMORY = "memory://"


def start_heartbeat(
    settings: Settings,
    kind: str,
    queues: list[str],
    ready: Callable[[], bool] = lambda: True,
    last_tick: Callable[[], float] | None = None,
) -> heartbeat.Heartbeater | None:
    """Write ``kind``'s heartbeat to the limiter's Redis from now on, while ``ready()`` (none without a
    Redis: the demo); ``last_tick``: when the beat's loop last ticked, stamped into each record."""
    if settings.redis_url.startswith(IN_MEMORY):
        return None
    record = heartbeat.record_for(kind, Fingerprints.of(settings), queues, settings.heartbeat_seconds)
    beater = heartbeat.Heartbeater(
        settings.redis_url,
        record,
        ready=ready,
        last_tick=last_tick,
        store_of=lambda: store_fingerprint(settings.database_url),
    )
    beater.start()
    return beater


def connected(worker: Any) -> bool:
    """The worker's consumer holds a live broker connection (it can receive tasks)."""
    connection = getattr(getattr(worker, "consumer", None), "connection", None)
    return bool(connection is not None and connection.connected)


class Heartbeat(bootsteps.StartStopStep):
    """Worker step: the heartbeat thread, in the main process (a pool child's death does not stop it;
    the worker's does)."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.beater: heartbeat.Heartbeater | None = None

    def start(self, parent: Any) -> None:
        try:
            settings = Settings.load()
        except ConfigError as exc:
            logger.error("no heartbeat: %s", exc)
            return
        queues = sorted(parent.app.amqp.queues.consume_from or parent.app.amqp.queues)
        self.beater = start_heartbeat(settings, heartbeat.WORKER, queues, ready=lambda: connected(parent))

    def stop(self, parent: Any) -> None:
        if self.beater is not None:
            self.beater.stop()


class TickingScheduler(PersistentScheduler):
    """Celery's beat scheduler, noting when its loop last completed a tick (``time.monotonic()``): the
    beat's heartbeat says so, so that a loop that hangs shows as a dead beat although the heartbeat's
    thread goes on. The beat runs with ``max_interval`` = the heartbeat interval: it ticks at least
    that often, however far its next task."""

    last_tick: float = time.monotonic()  # class-wide: one beat per process

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = float(super().tick(*args, **kwargs))
        TickingScheduler.last_tick = time.monotonic()
        return interval


def beat_last_tick() -> float:
    return TickingScheduler.last_tick


def install(app: Celery) -> None:
    app.steps["worker"].add(Heartbeat)


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def json_logs(logger: logging.Logger, **_: Any) -> None:
    """Celery sets up the worker's and the beat's logging itself: switch its handlers to JSON if asked."""
    try:
        settings = Settings.load()
    except ConfigError:
        return
    if settings.log_format == "json":
        logs.use_json(logger)
