"""Account-wide rate limiting, shared by every worker on every machine.

Celery's ``rate_limit`` is per worker, so it cannot honour a vendor's limit across many workers. Laid out
as dramatiq lays out ``rate_limits/``: the algorithm apart from where its state lives.

- ``policy.py``: :class:`LimiterPolicy`, how a limiter spaces, bursts, backs off and recovers (pure data).
- ``limiter.py``: :class:`Limiter`, the waiting every backend shares.
- ``backends/redis.py``: :class:`AccountLimiter`, one GCRA limiter per vendor account in Redis
  (``backends/redis.lua``: atomic, timed by the Redis server's clock).
- ``backends/memory.py``: :class:`LocalLimiter` on :class:`LocalRates`, the same algorithm in one
  process, without Redis (the embedded demo).
- ``pull.py``: :class:`PullLimiter`, report and reply pulls on the account's budget: what the sends leave idle, at least their share.
- ``balance.py``: :class:`BalanceGate`, balance queries the vendor's minimum interval apart.
- ``inflight.py``: :class:`AccountInFlight` (``backends/inflight.lua``) and :class:`LocalInFlight`, an
  account's requests unanswered at once held to its ``max_in_flight``.
"""

from dispatcher.ratelimit.backends.memory import LocalLimiter, LocalRates
from dispatcher.ratelimit.backends.redis import AccountLimiter
from dispatcher.ratelimit.balance import BalanceGate
from dispatcher.ratelimit.inflight import AccountInFlight, InFlight, LocalInFlight
from dispatcher.ratelimit.limiter import Limiter
from dispatcher.ratelimit.policy import LimiterPolicy
from dispatcher.ratelimit.pull import PULL_SHARE, PullLimiter

__all__ = [
    "PULL_SHARE",
    "AccountInFlight",
    "AccountLimiter",
    "BalanceGate",
    "InFlight",
    "Limiter",
    "LimiterPolicy",
    "LocalInFlight",
    "LocalLimiter",
    "LocalRates",
    "PullLimiter",
]
