"""Report and reply pulls paced on the account's own budget: work-conserving, and never starving the sends.

A pull takes a slot the account leaves idle, whatever its share: one free now, or the next one if no
sender has reserved it by the time it comes (a drain's pulls follow one another: the slot its last pull
took is no sign of sends). On an idle account (a campaign sent, its reports due) the drain goes at the
account's whole rate. While the account sends, its
senders have reserved the coming slots (they reserve ahead), none is idle, and a pull waits for a token
of its share (``own``: at most :data:`PULL_SHARE` of the rate), then for a slot after the sends already
reserved: the sends keep the rest.
"""

from __future__ import annotations

import time

from dispatcher.ratelimit.limiter import Limiter

PULL_SHARE = 0.25  # of an account's rate, what its report and reply pulls keep while it sends
IDLE_PROBE_S = 1.0  # a pull waits this long at most to see whether the account's next slot stays idle


class PullLimiter:
    """Tokens for one account's pulls: a slot of the account's limiter (``account``, that its sends take
    from) free right now, else a token of the pulls' share (``own``) and then a slot of the account's."""

    def __init__(self, account: Limiter, own: Limiter) -> None:
        self.account = account
        self.own = own

    def acquire(self, timeout: float) -> bool:
        """Block until one pull may go; False if that cannot happen within ``timeout`` seconds."""
        deadline = time.monotonic() + max(0.0, timeout)
        wait = self.account.try_acquire()
        if wait == 0.0:  # idle now: the sends did not want this slot
            return True
        if wait <= min(IDLE_PROBE_S, timeout):
            # Taken, perhaps by this drain's own last pull: the next slot, if no sender reserves it
            # before it comes (senders reserve theirs ahead), is idle too.
            time.sleep(wait + 0.001)
            if self.account.try_acquire() == 0.0:
                return True
        if not self.own.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return False
        return self.account.acquire(timeout=max(0.0, deadline - time.monotonic()))

    def penalise(self) -> None:
        """The vendor answered a pull "too frequent": the whole account slows down, sends included."""
        self.account.penalise()
