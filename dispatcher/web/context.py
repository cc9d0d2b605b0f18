"""What every request handler needs: settings, the store, the Celery app, the upload directory, the
sandbox that reads uploads, and the Redis key space (sign-in throttling)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.keys import DEFAULT_KEYS, KeySpace
from dispatcher.web.sandbox import Sandbox
from dispatcher.web.throttle import SignInThrottle

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis

DEFAULT_MAX_UPLOAD = 50 * 1024 * 1024


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
    series_cache: dict[int, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _redis: Redis[Any] | None = field(default=None, repr=False)
    _throttle: SignInThrottle | None = field(default=None, repr=False)

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

    def enqueue(self, chunk_ids: list[int]) -> None:
        if chunk_ids:
            from workers.tasks import enqueue

            enqueue(chunk_ids, app=self.celery)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
