"""An account's requests in flight, held to ``max_in_flight`` across every worker on every machine.

Some gateways take one request of an account at a time: entinfo answers -18 ("上次提交没有等待返回不能继续
提交") to a request sent while another is unanswered. Like the rate, this is the account's limit, not a
worker's: leases in Redis (``backends/inflight.lua``, atomic, timed by the Redis server's clock), one per
request, taken before the request's chunk is claimed and given back once its answer is in. A lease expires
by itself after ``lease_s``: a worker that dies holding one blocks the account that long at most.
:class:`LocalInFlight` is the same in one process, without Redis (the embedded demo).
"""

from __future__ import annotations

import abc
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from redis import Redis

from dispatcher.keys import DEFAULT_KEYS, KeySpace

# Seconds between two tries for a lease while the account's are all taken: a lease comes back when an
# answer does, tens of milliseconds to seconds apart.
POLL_S = 0.02


class InFlight(abc.ABC):
    """One account's in-flight leases: a backend grants and returns them, this class waits."""

    def __init__(
        self,
        account: str,
        limit: int,
        lease_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.account = account
        self.limit = limit
        self.lease_s = lease_s
        self._clock = clock
        self._sleep = sleep

    @abc.abstractmethod
    def _grant(self, tokens: list[str]) -> list[str]:
        """As many of ``tokens`` as there are free leases, in order; none when all are taken."""

    @abc.abstractmethod
    def release(self, tokens: Sequence[str]) -> None:
        """Give the leases back (one already expired or given back is ignored)."""

    def acquire(self, n: int, timeout: float) -> list[str]:
        """Up to ``n`` leases (at least one), waiting up to ``timeout`` seconds for the first; ``[]`` if
        none came. Each is released with :meth:`release`, or expires by itself."""
        if n <= 0:
            return []
        deadline = self._clock() + max(0.0, timeout)
        while True:
            granted = self._grant([uuid.uuid4().hex for _ in range(min(n, self.limit))])
            if granted:
                return granted
            remaining = deadline - self._clock()
            if remaining <= 0:
                return []
            self._sleep(min(POLL_S, remaining))


@cache
def _script_source() -> str:
    return files("dispatcher.ratelimit.backends").joinpath("inflight.lua").read_text(encoding="utf-8")


class AccountInFlight(InFlight):
    """The in-flight leases of one vendor account, shared by all workers through Redis. Redis errors
    are not caught here: without Redis nothing may send."""

    def __init__(
        self, redis: Redis[Any], account: str, limit: int, lease_s: float, *, keys: KeySpace = DEFAULT_KEYS
    ) -> None:
        super().__init__(account, limit, lease_s)
        self.key = keys.in_flight_key(account)
        self._script = redis.register_script(_script_source())
        self._params = [str(limit), str(max(1, round(lease_s * 1000)))]

    def _grant(self, tokens: list[str]) -> list[str]:
        granted = self._script(keys=[self.key], args=["acquire", *self._params, *tokens])
        return [t.decode() if isinstance(t, bytes) else str(t) for t in granted]

    def release(self, tokens: Sequence[str]) -> None:
        if tokens:
            self._script(keys=[self.key], args=["release", *self._params, *tokens])


class LocalInFlight(InFlight):
    """:class:`AccountInFlight` in one process (the threads of ONE process share it)."""

    def __init__(self, account: str, limit: int, lease_s: float, clock: Callable[[], float] = time.monotonic):
        super().__init__(account, limit, lease_s, clock)
        self._lock = threading.Lock()
        self._leases: dict[str, float] = {}  # token -> when it expires

    def _grant(self, tokens: list[str]) -> list[str]:
        with self._lock:
            now = self._clock()
            self._leases = {t: until for t, until in self._leases.items() if until > now}
            granted = tokens[: max(0, self.limit - len(self._leases))]
            self._leases.update(dict.fromkeys(granted, now + self.lease_s))
            return granted

    def release(self, tokens: Sequence[str]) -> None:
        with self._lock:
            for token in tokens:
                self._leases.pop(token, None)
