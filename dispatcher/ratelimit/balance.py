"""Balance queries of an account held the vendor's minimum interval apart (``-16`` once per 5 s, ``-23``
once per 10 s) across all workers, through Redis."""

from __future__ import annotations

from typing import Any

from redis import Redis

from dispatcher.keys import DEFAULT_KEYS, KeySpace


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
        self._read_at = keys.balance_read_at_key(account)
        self._interval_ms = max(1, round((min_interval_s + slack_s) * 1000))

    def may_query(self) -> bool:
        """True for exactly one caller per interval; that caller then queries the vendor."""
        return bool(self._redis.set(self._gate, "1", nx=True, px=self._interval_ms))

    def remember(self, balance: str, at: float | None = None) -> None:
        """Keep the last answer so that callers refused by the gate can show it, with when it came
        (``at``: epoch seconds; default now, by the Redis server's clock)."""
        if at is None:
            seconds, micros = self._redis.time()
            at = float(seconds) + float(micros) / 1e6
        with self._redis.pipeline() as pipe:
            pipe.set(self._cache, balance, ex=24 * 3600)
            pipe.set(self._read_at, repr(at), ex=24 * 3600)
            pipe.execute()

    def age(self) -> float | None:
        """Seconds since the last answer came (by the Redis server's clock); None if unknown (none
        kept, or kept by a version that did not say when)."""
        raw = self._redis.get(self._read_at)
        if raw is None:
            return None
        try:
            at = float(raw)
        except ValueError:
            return None
        seconds, micros = self._redis.time()
        return max(0.0, float(seconds) + float(micros) / 1e6 - at)

    def last(self) -> str | None:
        """The last remembered balance answer, if any."""
        value = self._redis.get(self._cache)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)
