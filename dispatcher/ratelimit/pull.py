"""Report and reply pulls paced on the account's own budget, so a long drain never starves the sends."""

from __future__ import annotations

import time

from dispatcher.ratelimit.limiter import Limiter

PULL_SHARE = 0.25  # of an account's rate, at most, for its report and reply pulls


class PullLimiter:
    """Tokens for one account's pulls: at most ``share`` of its rate (``own``), each also a token of the
    account's limiter that its sends take from (``account``)."""

    def __init__(self, account: Limiter, own: Limiter) -> None:
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
