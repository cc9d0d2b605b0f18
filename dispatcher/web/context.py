"""What every request handler needs: settings, the store, the Celery app, the upload directory, the
sandbox that reads uploads, the turns of long requests, and the Redis key space (sign-in throttling)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.contacts.sandbox import Busy, Sandbox
from dispatcher.keys import DEFAULT_KEYS, KeySpace
from dispatcher.web.throttle import SignInThrottle
from dispatcher.web.turns import Turns

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis

    from dispatcher.operations.doctor import Check
    from dispatcher.operations.heartbeat import Liveness

DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024
EXPORTS_AT_ONCE = 2
EXPORT_WAIT_S = 30.0
T = TypeVar("T")


@dataclass
class WebContext:
    settings: Settings
    sessions: sessionmaker[Session]
    celery: Celery
    upload_dir: Path
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    process_push: bool = True  # parse pushed bodies in the background right after answering
    keys: KeySpace = DEFAULT_KEYS
    sandbox: Sandbox = field(default_factory=lambda: Sandbox(4096))
    # Exports read their stored list again in children of their own, one per export turn.
    list_sandbox: Sandbox = field(default_factory=lambda: Sandbox(4096, workers=EXPORTS_AT_ONCE))
    series_cache: dict[int, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    readers: Turns = field(init=False)  # requests that read an upload: as many as the sandbox's slots
    exports: Turns = field(init=False)
    _reading_users: set[str] = field(default_factory=set, repr=False)
    _redis: Redis[Any] | None = field(default=None, repr=False)
    _throttle: SignInThrottle | None = field(default=None, repr=False)
    _broker_redis: Redis[Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.readers = Turns(self.sandbox.workers)
        self.exports = Turns(EXPORTS_AT_ONCE)

    async def reading(self, user: str, func: Callable[..., T], *args: Any, creating: bool = False) -> T:
        """A request's work that reads an upload (in the sandbox), off the shared thread pool:
        :mod:`dispatcher.web.turns`. One at a time per user: whoever fires many cannot take every turn
        (the others keep theirs). Its readings take ``preview_timeout_s`` in all, ``parse_timeout_s``
        when ``creating`` a campaign (:meth:`Sandbox.within`): a page holds its turn once."""
        if user in self._reading_users:
            raise Busy("you are already reading a file; wait until it is done")
        self._reading_users.add(user)  # on the event loop: no other request runs between check and add
        try:
            busy = "the server is reading other files; try again in a minute"
            budget = self.settings.parse_timeout_s if creating else self.settings.preview_timeout_s
            return await self.readers.run(
                self.sandbox.busy_wait_s, busy, self.sandbox.within, budget, func, *args
            )
        finally:
            self._reading_users.discard(user)

    async def exporting(self, func: Callable[..., T], *args: Any) -> T:
        busy = "the server is writing other exports; try again in a minute"
        return await self.exports.run(EXPORT_WAIT_S, busy, func, *args)

    @property
    def redis(self) -> Redis[Any]:
        if self._redis is None:
            from redis import Redis

            self._redis = Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    @property
    def throttle(self) -> SignInThrottle:
        if self._throttle is None:
            self._throttle = SignInThrottle(self.redis, self.keys)
        return self._throttle

    def liveness(self) -> Liveness | None:
        """The heartbeats of this store's workers (on the send queue) and beat; None without a Redis."""
        from dispatcher.operations.heartbeat import liveness_for

        if self.settings.redis_url.startswith("memory://"):
            return None
        return liveness_for(self.redis, self.settings, self.celery.conf.task_default_queue)

    def metrics(self) -> bytes:
        """``GET /metrics``' body (``operations.metrics``), read now from the store and Redis."""
        from dispatcher.operations.metrics import Sources, exposition

        redis = None if self.settings.redis_url.startswith("memory://") else self.redis
        broker = None
        if self.settings.broker_url.split("://", 1)[0] in ("redis", "rediss"):
            broker = redis if self.settings.broker_url == self.settings.redis_url else self.broker_redis
        queue = self.celery.conf.task_default_queue
        return exposition(Sources(self.settings, self.sessions, redis, queue, broker))

    @property
    def broker_redis(self) -> Redis[Any]:
        if self._broker_redis is None:
            from redis import Redis

            self._broker_redis = Redis.from_url(
                self.settings.broker_url, socket_timeout=2, socket_connect_timeout=2
            )
        return self._broker_redis

    def diagnose(self) -> list[Check]:
        """``dispatcher doctor``'s checks as this web process sees them (balances: the last answers)."""
        from dispatcher.operations.doctor import diagnose

        return diagnose(self.settings, self.celery.conf.task_default_queue, balance_wait=False)

    def enqueue(self, chunk_ids: list[int]) -> None:
        if chunk_ids:
            from workers.tasks import enqueue

            enqueue(chunk_ids, app=self.celery)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
        if self._broker_redis is not None:
            self._broker_redis.close()
