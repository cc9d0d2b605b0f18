"""Account-wide rate limiting (being split into a package: the names stay importable from here)."""

from dispatcher.ratelimit.limiter import (
    PULL_SHARE,
    AccountLimiter,
    BalanceGate,
    LimiterPolicy,
    LocalLimiter,
    LocalRates,
    PullLimiter,
)

__all__ = [
    "PULL_SHARE",
    "AccountLimiter",
    "BalanceGate",
    "LimiterPolicy",
    "LocalLimiter",
    "LocalRates",
    "PullLimiter",
]
