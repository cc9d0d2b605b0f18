"""The limiter of one process, without Redis (the embedded demo): ``redis.lua``'s algorithm in Python."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher.ratelimit.limiter import Limiter
from dispatcher.ratelimit.policy import LimiterPolicy


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


class LocalLimiter(Limiter):
    """:class:`AccountLimiter`'s algorithm (``redis.lua``, step for step) on a :class:`LocalRates`."""

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
