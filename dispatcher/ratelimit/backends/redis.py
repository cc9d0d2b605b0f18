"""The limiter shared by every worker on every machine: its state and decisions in Redis.

``redis.lua`` runs each decision atomically, timed by the Redis server's clock, so that client clocks
never matter. Redis errors (``redis.exceptions.RedisError``) are not caught here: without Redis nothing
may send.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

from redis import Redis

from dispatcher.keys import DEFAULT_KEYS, KeySpace
from dispatcher.ratelimit.limiter import Limiter
from dispatcher.ratelimit.policy import LimiterPolicy


@cache
def _script_source() -> str:
    return files("dispatcher.ratelimit.backends").joinpath("redis.lua").read_text(encoding="utf-8")


class AccountLimiter(Limiter):
    """The rate limiter of one vendor account, shared by all workers through Redis."""

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
        super().__init__(account, ceiling_per_s, policy, clock, sleep)
        self.key = keys.rate_key(account)
        self._script = redis.register_script(_script_source())
        # Everything but the op and max_wait, in the script's ARGV order.
        self._params = [
            repr(self.ceiling_per_s),
            str(self.burst),
            repr(policy.margin),
            repr(self.ceiling_per_s * policy.floor_fraction),
            repr(policy.decrease_factor),
            str(round(policy.pause_s * 1e6)),
            repr(policy.recovery_s),
            str(max(1, round(policy.idle_ttl_s * 1000))),
        ]

    def _call(self, op: str, max_wait_s: float = 0.0, *extra: str) -> Any:
        args = [op, *self._params, str(math.floor(max_wait_s * 1e6)), *extra]
        return self._script(keys=[self.key], args=args)

    def _reserve(self, max_wait_s: float) -> tuple[bool, float]:
        granted, wait_us = self._call("acquire", max_wait_s)
        return bool(granted), int(wait_us) / 1e6

    def _reserve_many(self, n: int, max_wait_s: float) -> tuple[list[float], float]:
        count, *waits_us = self._call("acquire_many", max_wait_s, str(n))
        if int(count) == 0:
            return [], int(waits_us[0]) / 1e6
        return [int(w) / 1e6 for w in waits_us], 0.0

    def penalise(self) -> float:
        return float(self._call("penalise"))

    def reward(self, count: int = 1) -> float:
        return float(self._script(keys=[self.key], args=["reward", *self._params, str(count)]))

    def current_rate(self) -> float:
        return float(self._call("rate"))
