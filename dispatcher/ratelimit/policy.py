"""How an account's limiter behaves, as plain data: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass


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
    # A request that wakes more than this after its slot (its process was busy: a store that kept the
    # claim waiting, a CPU shared with others) is not sent on it: sent late, it would land among the
    # next requests, sent on time, and fill a one-second window past R. It takes a new slot instead.
    # Half the margin's second, so a vendor's own clock and the network keep the other half.
    max_late_s: float = 0.015
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
        if self.max_late_s < 0:
            raise ValueError("max_late_s must be >= 0")
        if self.pause_s < 0 or self.recovery_s <= 0 or self.lookahead_s < 0 or self.idle_ttl_s <= 0:
            raise ValueError("durations must be positive")
