"""Account-wide rate limiting in Redis, shared by every worker on every machine.

Celery's ``rate_limit`` is per worker, so it cannot honour a vendor's limit across many workers.
:class:`AccountLimiter` keeps one GCRA limiter per vendor account in Redis (``ratelimit.lua``: atomic, timed by the Redis server's clock). Its rate adapts: a
``rate_limited`` answer halves it for everyone and pauses sending briefly (:meth:`penalise`), and
successes raise it linearly back to the configured ceiling (:meth:`reward`).

:class:`PullLimiter` paces an account's report and reply pulls: each takes a token from the account's own
limiter (so the vendor sees sends and pulls together at the account's rate), and pulls are held to their
own share of that rate (so a long drain never starves the sends).

:class:`BalanceGate` keeps balance queries of an account at least the vendor's minimum interval
apart (``-16`` once per 5 s, ``-23`` once per 10 s) across all workers.

:class:`LocalLimiter` runs the same algorithm in one process, without Redis (the embedded demo).

Redis errors (``redis.exceptions.RedisError``) are not caught here: without Redis nothing may send.
"""

from __future__ import annotations

import abc
import math
import threading
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
    return files("dispatcher.ratelimit.backends").joinpath("redis.lua").read_text(encoding="utf-8")


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


class _Limiter(abc.ABC):
    """What every limiter backend shares: the waiting. Backends decide atomically."""

    def __init__(
        self,
        account: str,
        ceiling_per_s: float,
        policy: LimiterPolicy,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        if ceiling_per_s <= 0:
            raise ValueError("ceiling_per_s must be positive")
        self.account = account
        self.ceiling_per_s = float(ceiling_per_s)
        self.policy = policy
        # A burst is capped at one second's worth.
        self.burst = min(policy.burst, math.floor(self.ceiling_per_s))
        self._clock = clock
        self._sleep = sleep

    @abc.abstractmethod
    def _reserve(self, max_wait_s: float) -> tuple[bool, float]:
        """Reserve the next slot if it comes within ``max_wait_s``: (reserved, seconds until it)."""

    @abc.abstractmethod
    def _reserve_many(self, n: int, max_wait_s: float) -> tuple[list[float], float]:
        """Reserve up to ``n`` slots, each within ``max_wait_s``: (their waits, in seconds from now;
        else the seconds until the earliest slot when none could be reserved)."""

    @abc.abstractmethod
    def penalise(self) -> float:
        """The vendor answered "too frequent": lower the rate for every worker and pause briefly.

        Returns the new rate. Penalties during the pause count once (they answer the same overload).
        """

    @abc.abstractmethod
    def reward(self, count: int = 1) -> float:
        """``count`` requests succeeded: raise the rate back towards the ceiling (additive increase)."""

    @abc.abstractmethod
    def current_rate(self) -> float:
        """The rate every worker is held to now, in requests/s (before the safety margin)."""

    def try_acquire(self) -> float:
        """Take a slot if one is free now: 0.0 when granted, else the seconds until the next one."""
        granted, wait = self._reserve(0.0)
        return 0.0 if granted else max(wait, 1e-6)

    def acquire(self, timeout: float | None = None) -> bool:
        """Block until this worker may send one request; False if that cannot happen within ``timeout``.

        Sleeps exactly the computed wait. A slot is reserved only when it is at most
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

    def acquire_many(self, n: int, timeout: float | None = None) -> list[float]:
        """Reserve slots for up to ``n`` requests, as many as come within ``policy.lookahead_s`` of
        the first free one; waits for that first one like :meth:`acquire`, but does not sleep until
        the slots: returns each slot's wait in seconds from the return (the caller sends request
        ``i`` no earlier than that), or ``[]`` if no slot comes within ``timeout``."""
        if n <= 0:
            return []
        deadline = None if timeout is None else self._clock() + max(0.0, timeout)
        while True:
            remaining = math.inf if deadline is None else max(0.0, deadline - self._clock())
            waits, wait = self._reserve_many(n, min(remaining, self.policy.lookahead_s))
            if waits:
                return waits
            if wait > remaining:
                return []
            self._sleep(max(wait - self.policy.lookahead_s, 0.0))


class AccountLimiter(_Limiter):
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


@dataclass
class _State:
    tat: float
    rate: float
    penalised_until: float
    touched: float


class LocalRates:
    """In-process stand-in for Redis (dramatiq's stub backends are the model): the limiter state
    of every account, shared by the threads of ONE process only. For the embedded demo and
    in-process workers; several worker processes need :class:`AccountLimiter`.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.states: dict[str, _State] = {}


class LocalLimiter(_Limiter):
    """:class:`AccountLimiter`'s algorithm (``ratelimit.lua``, step for step) on a :class:`LocalRates`."""

    def __init__(
        self,
        rates: LocalRates,
        account: str,
        ceiling_per_s: float,
        *,
        policy: LimiterPolicy = LimiterPolicy(),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(account, ceiling_per_s, policy, clock, sleep)
        self._rates = rates
        self._floor = self.ceiling_per_s * policy.floor_fraction

    def _spacing(self, rate: float) -> float:
        return 1.0 / (rate * (1 - self.policy.margin))

    def _state(self, now: float) -> _State:
        state = self._rates.states.get(self.account)
        if state is None or now - state.touched > self.policy.idle_ttl_s:
            state = _State(tat=now, rate=self.ceiling_per_s, penalised_until=0.0, touched=now)
        state.rate = min(state.rate, self.ceiling_per_s)
        return state

    def _save(self, state: _State, now: float) -> None:
        state.touched = now
        self._rates.states[self.account] = state

    def _reserve(self, max_wait_s: float) -> tuple[bool, float]:
        with self._rates.lock:
            now = self._rates.clock()
            state = self._state(now)
            interval = self._spacing(state.rate)
            tat = max(state.tat, now)
            wait = max(tat - self.burst * interval - now, 0.0)
            if wait > max_wait_s:
                return False, wait
            state.tat = tat + interval
            self._save(state, now)
            return True, wait

    def _reserve_many(self, n: int, max_wait_s: float) -> tuple[list[float], float]:
        with self._rates.lock:
            now = self._rates.clock()
            state = self._state(now)
            interval = self._spacing(state.rate)
            tat = max(state.tat, now)
            waits: list[float] = []
            while len(waits) < n:
                wait = max(tat - self.burst * interval - now, 0.0)
                if wait > max_wait_s:
                    if not waits:
                        return [], wait
                    break
                waits.append(wait)
                tat += interval
            state.tat = tat
            self._save(state, now)
            return waits, 0.0

    def penalise(self) -> float:
        with self._rates.lock:
            now = self._rates.clock()
            state = self._state(now)
            if now >= state.penalised_until:
                state.rate = max(
                    min(self._floor, self.ceiling_per_s), state.rate * self.policy.decrease_factor
                )
                state.penalised_until = now + self.policy.pause_s
                resume = state.penalised_until + self.burst * self._spacing(state.rate)
                state.tat = max(state.tat, resume)
                self._save(state, now)
            return state.rate

    def reward(self, count: int = 1) -> float:
        with self._rates.lock:
            now = self._rates.clock()
            state = self._state(now)
            if now >= state.penalised_until and state.rate < self.ceiling_per_s:
                for _ in range(count):
                    step = self.ceiling_per_s / (state.rate * self.policy.recovery_s)
                    state.rate = min(self.ceiling_per_s, state.rate + step)
                self._save(state, now)
            return state.rate

    def current_rate(self) -> float:
        with self._rates.lock:
            return self._state(self._rates.clock()).rate


PULL_SHARE = 0.25  # of an account's rate, at most, for its report and reply pulls


class PullLimiter:
    """Tokens for one account's pulls: at most ``share`` of its rate (``own``), each also a token of the
    account's limiter that its sends take from (``account``)."""

    def __init__(self, account: _Limiter, own: _Limiter) -> None:
        self.account = account
        self.own = own

    def acquire(self, timeout: float) -> bool:
        """Block until one pull may go; False if that cannot happen within ``timeout`` seconds."""
        deadline = time.monotonic() + max(0.0, timeout)
        if not self.own.acquire(timeout=timeout):
            return False
        return self.account.acquire(timeout=max(0.0, deadline - time.monotonic()))

    def penalise(self) -> None:
        """The vendor answered a pull "too frequent": the whole account slows down, sends included."""
        self.account.penalise()


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
