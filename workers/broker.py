"""kombu's Redis transport, made to survive a Redis restart while a worker holds unacknowledged messages.

With Celery 5.7 / kombu 5.7, a worker that loses its Redis connection collects that connection (the
transport forgets its client) but keeps using the old channel for the messages delivered on it: the
channel's close puts unacknowledged messages back into Redis, and a task that was running finishes
and acknowledges its message. Both rebuild the channel's connection pool from the forgotten client and
fail with ``AttributeError`` ("'NoneType' object has no attribute 'hostname'"), which is not a
connection error: the worker stops for good ("Unrecoverable error") instead of reconnecting.

Here a channel whose connection is gone fails as the connection error it is, which the worker already
handles (it logs the lost acknowledgement and goes on). Nothing is lost that the store does not hold:
with Redis wiped the messages are gone with it, and the beat re-queues chunks still ``queued``; if
Redis survived, they wait in its ``unacked`` hash for the visibility timeout as usual; and a chunk
already sent is no longer ``queued``, so a redelivered message does nothing.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

TRANSPORT = f"{__name__}:Transport"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("this channel's connection to the broker was lost")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    Channel = Channel
