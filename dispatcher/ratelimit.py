"""Account-wide rate limiting in Redis, shared by every worker on every machine.

Celery's ``rate_limit`` is per worker, so it cannot honour a vendor's limit across many workers
(DESIGN.md, "Rate limits"). :class:`AccountLimiter` keeps one GCRA limiter per vendor account in
Redis (``ratelimit.lua``: atomic, timed by the Redis server's clock). Its rate adapts: a
``rate_limited`` answer halves it for everyone and pauses sending briefly (:meth:`penalise`), and
successes raise it linearly back to the configured ceiling (:meth:`reward`).

:class:`BalanceGate` keeps balance queries of an account at least the vendor's minimum interval
apart (``-16`` once per 5 s, ``-23`` once per 10 s) across all workers.

Redis errors (``redis.exceptions.RedisError``) are not caught here: without Redis nothing may send.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from redis import Redis

from dispatcher.keys import DEFAULT_KEYS, KeySpace


@cache
def _script_source() -> str:
    return files("dispatcher").joinpath("ratelimit.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class LimiterPolicy:
    """How an account's limiter spaces, bursts, backs off and recovers."""

    # Requests allowed back to back on top of the spacing. A vendor counting fixed one-second
    # windows refuses rate+1 requests in one window, so the default is none; capped at 1 s worth.
    burst: int = 0
    # Fraction of the rate left unused: a worker that wakes a few ms late must not let the next
    # second's requests land in this second's window. 3 % keeps the sustained rate >= 95 % of R.
    margin: float = 0.03
    # A penalty multiplies the rate by this, down to ``floor_fraction`` of the ceiling.
    decrease_factor: float = 0.5
    floor_fraction: float = 0.05
    # Nobody sends for this long after a penalty: the vendor's one-second window resets.
    pause_s: float = 1.0
    # Seconds of steady success to climb from 0 to the ceiling (from half: half of this).
    recovery_s: float = 10.0
    # acquire() reserves a slot at most this far ahead; farther waiters sleep and ask again, so
    # a penalty or a lowered rate reaches them. Bounds the requests already promised a slot.
    lookahead_s: float = 0.1
    # Idle state expires (and the next start is at the ceiling again).
    idle_ttl_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.burst < 0:
            raise ValueError("burst must be >= 0")
        if not 0 <= self.margin < 1:
            raise ValueError("margin must be in [0, 1)")
        if not 0 < self.decrease_factor < 1:
            raise ValueError("decrease_factor must be in (0, 1)")
        if not 0 < self.floor_fraction <= 1:
            raise ValueError("floor_fraction must be in (0, 1]")
        if self.pause_s < 0 or self.recovery_s <= 0 or self.lookahead_s < 0 or self.idle_ttl_s <= 0:
            raise ValueError("durations must be positive")


class AccountLimiter:
    """The rate limiter of one vendor account, shared through Redis."""

    def __init__(
        self,
        redis: Redis[Any],
        account: str,
        ceiling_per_s: float,
        *,
        policy: LimiterPolicy = LimiterPolicy(),
        keys: KeySpace = DEFAULT_KEYS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if ceiling_per_s <= 0:
            raise ValueError("ceiling_per_s must be positive")
        self.account = account
        self.ceiling_per_s = float(ceiling_per_s)
        self.policy = policy
        self.key = keys.rate_key(account)
        self._script = redis.register_script(_script_source())
        self._clock = clock
        self._sleep = sleep
        # Everything but the op and max_wait, in the script's ARGV order.
        self._params = [
            repr(self.ceiling_per_s),
            str(min(policy.burst, math.floor(self.ceiling_per_s))),
            repr(policy.margin),
            repr(self.ceiling_per_s * policy.floor_fraction),
            repr(policy.decrease_factor),
            str(round(policy.pause_s * 1e6)),
            repr(policy.recovery_s),
            str(max(1, round(policy.idle_ttl_s * 1000))),
        ]

    def _call(self, op: str, max_wait_s: float = 0.0) -> Any:
        return self._script(keys=[self.key], args=[op, *self._params, str(math.floor(max_wait_s * 1e6))])

    def _reserve(self, max_wait_s: float) -> tuple[bool, float]:
        granted, wait_us = self._call("acquire", max_wait_s)
        return bool(granted), int(wait_us) / 1e6

    def try_acquire(self) -> float:
        """Take a slot if one is free now: 0.0 when granted, else the seconds until the next one."""
        granted, wait = self._reserve(0.0)
        return 0.0 if granted else max(wait, 1e-6)

    def acquire(self, timeout: float | None = None) -> bool:
        """Block until this worker may send one request; False if that cannot happen within ``timeout``.

        Sleeps exactly the computed wait. A slot is reserved in Redis only when it is at most
        ``policy.lookahead_s`` away; a farther waiter sleeps until then and asks again.
        """
        deadline = None if timeout is None else self._clock() + max(0.0, timeout)
        while True:
            remaining = math.inf if deadline is None else max(0.0, deadline - self._clock())
            granted, wait = self._reserve(min(remaining, self.policy.lookahead_s))
            if granted:
                if wait > 0:
                    self._sleep(wait)
                return True
            if wait > remaining:
                return False
            self._sleep(max(wait - self.policy.lookahead_s, 0.0))

    def penalise(self) -> float:
        """The vendor answered "too frequent": lower the rate for every worker and pause briefly.

        Returns the new rate. Penalties during the pause count once (they answer the same overload).
        """
        return float(self._call("penalise"))

    def reward(self) -> float:
        """A request succeeded: raise the rate back towards the ceiling (additive increase)."""
        return float(self._call("reward"))

    def current_rate(self) -> float:
        """The rate every worker is held to now, in requests/s (before the safety margin)."""
        return float(self._call("rate"))


class BalanceGate:
    """Lets one balance query of an account through per ``min_interval_s``, across all workers."""

    def __init__(
        self,
        redis: Redis[Any],
        account: str,
        min_interval_s: float,
        *,
        slack_s: float = 0.5,
        keys: KeySpace = DEFAULT_KEYS,
    ) -> None:
        # ``slack_s``: two queries sent min_interval apart can arrive closer if the first was slower.
        self._redis = redis
        self._gate = keys.balance_gate_key(account)
        self._cache = keys.balance_cache_key(account)
        self._interval_ms = max(1, round((min_interval_s + slack_s) * 1000))

    def may_query(self) -> bool:
        """True for exactly one caller per interval; that caller then queries the vendor."""
        return bool(self._redis.set(self._gate, "1", nx=True, px=self._interval_ms))

    def remember(self, balance: str) -> None:
        """Keep the last answer so that callers refused by the gate can show it."""
        self._redis.set(self._cache, balance, ex=24 * 3600)

    def last(self) -> str | None:
        """The last remembered balance answer, if any."""
        value = self._redis.get(self._cache)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
