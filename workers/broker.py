"""kombu's Redis transport, made to survive a Redis restart while a worker holds unacknowledged messages.

With Celery 5.7 / kombu 5.7, a worker that loses its Redis connection while it holds delivered but
unacknowledged messages (a task running, a prefetched one, one with a countdown) collects the
connection (which drops the transport's client) and then closes its channel, which tries to put those
messages back into Redis: the connection pool cannot be rebuilt without the client, the channel
raises ``AttributeError`` ("'NoneType' object has no attribute 'hostname'"), which is not a
connection error, and the worker stops for good ("Unrecoverable error") instead of reconnecting.

Here that restore fails as the connection error it is. Nothing is lost that the store does not hold:
with Redis gone the messages are gone with it, and the beat re-queues chunks still ``queued`` from the
store; if Redis survived, they wait in its ``unacked`` hash for the visibility timeout as usual.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

TRANSPORT = f"{__name__}:Transport"


class QoS(kombu_redis.QoS):  # type: ignore[misc]
    def restore_unacked(self, client: Any = None) -> Any:
        transport = self.channel.connection
        if client is None and (transport is None or transport.client is None):
            raise RedisConnectionError("connection to the broker lost: unacknowledged messages not restored")
        return super().restore_unacked(client)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    QoS = QoS


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
