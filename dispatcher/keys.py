"""Every Redis key the dispatcher uses, in one place (arq's ``constants`` module is the model).

Redis holds only queues, locks and rate-limit state: everything under one prefix can be
wiped without losing a campaign. The prefix is configurable so that tests, or two deployments
sharing one Redis, never see each other's keys: build a :class:`KeySpace` with your own prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "dispatcher:"


@dataclass(frozen=True)
class KeySpace:
    """Key names under one prefix. Account ids and names are used verbatim (they contain no spaces)."""

    prefix: str = DEFAULT_PREFIX

    def rate_key(self, account: str) -> str:
        """Hash with an account's limiter state: GCRA ``tat``, adaptive ``rate``, ``penalised_until``."""
        return f"{self.prefix}rate:{account}"

    def in_flight_key(self, account: str) -> str:
        """Sorted set of an account's requests in flight: lease tokens scored by when they expire (ms)."""
        return f"{self.prefix}inflight:{account}"

    def balance_gate_key(self, account: str) -> str:
        """Present while a balance query of the account is too recent to repeat (vendor -16 / -23)."""
        return f"{self.prefix}balance:gate:{account}"

    def balance_cache_key(self, account: str) -> str:
        """The last balance answer of the account, served while the gate is closed."""
        return f"{self.prefix}balance:value:{account}"

    def balance_read_at_key(self, account: str) -> str:
        """When that answer came (Redis server time, epoch seconds): how old the figure is."""
        return f"{self.prefix}balance:at:{account}"

    def pull_rate_account(self, account: str) -> str:
        """The limiter name of an account's pulls (their own share of the account's rate)."""
        return f"{account}:pulls"

    def pull_deferred_key(self, account: str) -> str:
        """Present while the account's pulls wait after a "too frequent" answer; expires when they may go."""
        return f"{self.prefix}pull:deferred:{account}"

    def lock_key(self, name: str) -> str:
        """A named mutual-exclusion lock (report pulls, beat launches)."""
        return f"{self.prefix}lock:{name}"

    def ping_key(self, token: str) -> str:
        """Written by the ``dispatcher.ping`` task: proof that a worker ran it."""
        return f"{self.prefix}ping:{token}"

    def heartbeats_key(self) -> str:
        """Hash of the workers' and the beat's heartbeats: process id -> JSON (``operations.heartbeat``)."""
        return f"{self.prefix}heartbeats"

    def metrics_key(self, name: str) -> str:
        """A hash of request counters every worker adds to (``operations.counters``): ``requests``,
        ``latency``, ``limiter``; read by ``GET /metrics``."""
        return f"{self.prefix}metrics:{name}"

    def login_key(self, kind: str, subject: str) -> str:
        """Sign-in throttling of one subject (``name:<sha256>`` or ``addr:<sha256>``): ``tries`` in the
        current window, ``strikes`` (blocks of the last day), ``block`` (present while blocked)."""
        return f"{self.prefix}login:{kind}:{subject}"


DEFAULT_KEYS = KeySpace()

# Module-level shortcuts under the default prefix.
rate_key = DEFAULT_KEYS.rate_key
in_flight_key = DEFAULT_KEYS.in_flight_key
balance_gate_key = DEFAULT_KEYS.balance_gate_key
balance_cache_key = DEFAULT_KEYS.balance_cache_key
pull_deferred_key = DEFAULT_KEYS.pull_deferred_key
lock_key = DEFAULT_KEYS.lock_key
ping_key = DEFAULT_KEYS.ping_key
login_key = DEFAULT_KEYS.login_key
heartbeats_key = DEFAULT_KEYS.heartbeats_key
