"""What every limiter backend shares: the waiting. A backend (``backends/``) decides atomically.

GCRA (generic cell rate algorithm) with an adaptive rate: a ``rate_limited`` answer halves the rate for
everyone and pauses sending briefly (:meth:`Limiter.penalise`), and successes raise it linearly back to
the configured ceiling (:meth:`Limiter.reward`); :class:`~dispatcher.ratelimit.policy.LimiterPolicy`
holds the figures.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

from dispatcher.ratelimit.policy import LimiterPolicy


class Limiter(abc.ABC):
    """One account's limiter: a backend reserves slots, this class waits for them."""

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

    def reserve_many(self, n: int, max_wait_s: float) -> tuple[list[float], float]:
        """One try, never sleeping: reserve up to ``n`` slots each within ``max_wait_s`` (their waits,
        in seconds from now), else ``([], seconds until the earliest slot)``. For a caller that waits
        elsewhere (an event loop) rather than on a thread."""
        return self._reserve_many(n, max_wait_s)

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
