"""What a worker process keeps alive between tasks: settings, the store, Redis, per-account senders.

Built on first use in each process (never at import), so ``celery -A workers`` can import the task
modules without a configuration, and a forked worker child builds its own connections.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import sendloop
from dispatcher.config import AccountConfig, Settings, redact_url
from dispatcher.decisions import SendAttempt
from dispatcher.dispatch import LEASE_SECONDS, AccountRuntime, ChunkRow, Next, Result, load_group, send_group
from dispatcher.keys import DEFAULT_KEYS
from dispatcher.operations import logs
from dispatcher.operations.counters import Request, RequestCounters
from dispatcher.operations.identity import process_token
from dispatcher.ratelimit import (
    PULL_SHARE,
    AccountInFlight,
    AccountLimiter,
    InFlight,
    LimiterPolicy,
    LocalInFlight,
    LocalLimiter,
    LocalRates,
    PullLimiter,
)
from dispatcher.store import make_engine, session_factory
from dispatcher.store.caps import CapCheck
from dispatcher.vendors.transport import for_account as transport_for

logger = logging.getLogger(__name__)

IN_MEMORY = "memory://"
# How the workers' limiters react to a "too frequent" answer. A single one at the configured rate
# comes from requests bunched by send jitter, not from a rate that is wrong: slow down by 15 % and
# pause a quarter second (the default halving and 1 s pause cost a third of the throughput, measured
# in BENCHMARKS.md); a rate truly too high still falls fast, each penalty multiplying it again.
DISPATCH_POLICY = LimiterPolicy(decrease_factor=0.85, pause_s=0.25)
# Seconds a claimed chunk stays ``sending`` before the sweep calls its sender dead (tests shorten it).
LEASE_ENV = "DISPATCHER_LEASE_SECONDS"
# Seconds an in-flight lease (``max_in_flight``) outlives a worker that died holding it: longer than a
# request takes from its claim to its answer (the transport's timeouts, on both of entinfo's addresses),
# so a live sender never loses one; a dead one blocks its account no longer than this.
IN_FLIGHT_LEASE_S = 60.0


def lease_seconds() -> float:
    """The chunk lease: ``DISPATCHER_LEASE_SECONDS`` if set, read when called, else the default."""
    value = float(os.environ.get(LEASE_ENV) or LEASE_SECONDS)
    if value <= 0:
        raise ValueError(f"{LEASE_ENV} must be positive")
    return value


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Redis[Any] | None
    accounts: dict[str, AccountRuntime] = field(default_factory=dict)
    pull_limiters: dict[str, PullLimiter | None] = field(default_factory=dict)
    local_rates: LocalRates = field(default_factory=LocalRates)
    local_deferrals: dict[str, float] = field(default_factory=dict)  # without Redis: account -> monotonic
    local_in_flight: dict[str, LocalInFlight] = field(default_factory=dict)  # without Redis
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings, *, use_redis: bool = True) -> Runtime:
        engine = make_engine(settings.database_url)
        # "memory://": no Redis (the embedded demo); limiters then live in this process only.
        in_memory = settings.redis_url.startswith(IN_MEMORY)
        redis = Redis.from_url(settings.redis_url) if use_redis and not in_memory else None
        return cls(settings, engine, session_factory(engine), redis)

    def account(self, name: str) -> AccountRuntime:
        with self._lock:
            runtime = self.accounts.get(name)
            if runtime is None:
                config = self.settings.account(name)
                limiter: AccountLimiter | LocalLimiter | None = None
                if config.rate_limit > 0:
                    limiter = (
                        AccountLimiter(self.redis, name, config.rate_limit, policy=DISPATCH_POLICY)
                        if self.redis is not None
                        else LocalLimiter(self.local_rates, name, config.rate_limit, policy=DISPATCH_POLICY)
                    )
                runtime = AccountRuntime(
                    config,
                    config.vendor_module(),
                    transport_for(config),
                    limiter,
                    lease_seconds=lease_seconds(),
                    in_flight=self._in_flight(name, config.max_in_flight),
                    caps=CapCheck(self.settings.caps_for(name)) if self.settings.counting else None,
                    observer=Counting(RequestCounters(self.redis)) if self.redis is not None else None,
                )
                self.accounts[name] = runtime
            return runtime

    def _in_flight(self, name: str, limit: int | None) -> InFlight | None:
        if limit is None:
            return None
        if self.redis is not None:
            return AccountInFlight(self.redis, name, limit, IN_FLIGHT_LEASE_S)
        return self.local_in_flight.setdefault(name, LocalInFlight(name, limit, IN_FLIGHT_LEASE_S))

    def pull_limiter(self, name: str) -> PullLimiter | None:
        """The limiter of account ``name``'s report and reply pulls (what its sends leave, at least their
        share of the account's rate)."""
        sender = self.account(name)
        with self._lock:
            if name not in self.pull_limiters:
                limiter: PullLimiter | None = None
                if sender.limiter is not None:
                    own_name = DEFAULT_KEYS.pull_rate_account(name)
                    ceiling = sender.limiter.ceiling_per_s * PULL_SHARE
                    own = (
                        AccountLimiter(self.redis, own_name, ceiling)
                        if self.redis is not None
                        else LocalLimiter(self.local_rates, own_name, ceiling)
                    )
                    limiter = PullLimiter(sender.limiter, own)
                self.pull_limiters[name] = limiter
            return self.pull_limiters[name]

    def pulls_deferred(self, name: str) -> float:
        """Seconds until account ``name`` may be pulled again (0.0: now), after a "too frequent" answer."""
        if self.redis is None:
            return max(0.0, self.local_deferrals.get(name, 0.0) - time.monotonic())
        ttl_ms = int(self.redis.pttl(DEFAULT_KEYS.pull_deferred_key(name)))
        return ttl_ms / 1000 if ttl_ms > 0 else 0.0

    def defer_pulls(self, name: str, seconds: float) -> None:
        """No pull of account ``name`` for ``seconds`` (recorded in Redis: every process sees it)."""
        if self.redis is None:
            self.local_deferrals[name] = time.monotonic() + seconds
            return
        self.redis.set(DEFAULT_KEYS.pull_deferred_key(name), "1", px=max(1, round(seconds * 1000)))

    def send_many(self, chunk_ids: Sequence[int]) -> list[Result]:
        """Send a task's group of chunks (:func:`dispatch.send_group`), concurrently on this process's
        event loop (:mod:`dispatcher.sendloop`); chunks of several accounts (a re-queued mix) go account by account."""
        if not chunk_ids:
            return []
        rows = load_group(self.sessions, chunk_ids)
        missing = sorted(set(chunk_ids) - {r.id for r in rows})
        if missing:
            # Chunk ids come only from a store: this worker's is not the one that queued them (another
            # directory's SQLite file, another database). Said loudly: otherwise it "succeeds" silently.
            logger.error(
                "chunks %s are not in this worker's store %s: the worker and whoever queued them use "
                "different stores (check DISPATCHER_DATABASE_URL on every host)",
                ",".join(map(str, missing)),
                redact_url(self.settings.database_url),
                extra={"chunk_ids": missing},
            )
        results = [Result(i, Next.DONE, state="missing") for i in missing]
        by_account: dict[str, list[ChunkRow]] = {}
        for row in rows:
            by_account.setdefault(row.account, []).append(row)
        me = worker_id()
        for account, part in by_account.items():
            ids = {"account": account, "chunk_ids": [r.id for r in part]}
            campaign_ids = sorted({r.campaign_id for r in part})
            with logs.context(campaign_id=campaign_ids[0] if len(campaign_ids) == 1 else campaign_ids, **ids):
                results += send_group(self.sessions, self.account(account), part, me, sendloop.default())
        return results

    def close(self) -> None:
        for account in self.accounts.values():
            account.transport.close()  # its aiohttp session too, on the sending loop
        self.engine.dispose()
        if self.redis is not None:
            self.redis.close()


@dataclass
class Counting:
    """Counts every request and limiter wait in Redis, where ``GET /metrics`` of any web process reads
    them (``operations.counters``)."""

    counters: RequestCounters

    def attempts(self, account: AccountConfig, attempts: Sequence[SendAttempt]) -> None:
        self.counters.add(
            account.name,
            account.vendor,
            [
                Request(
                    a.verdict.state.value,
                    a.verdict.error_class.value if a.verdict.error_class is not None else "",
                    max(0.0, (a.finished - a.started).total_seconds()),
                )
                for a in attempts
                if a.request is not None
            ],
        )

    def waited(self, account: AccountConfig, waits: Sequence[float]) -> None:
        self.counters.waited(account.name, waits)


def worker_id() -> str:
    """A claim's owner: host, pid, this process's random part (containers may share host and pid), thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_token()}:{threading.get_ident()}"


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def current() -> Runtime:
    """This process's runtime (rebuilt after a fork: connections must not cross processes)."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        _runtime = Runtime.from_settings(Settings.load())
        _runtime_pid = os.getpid()
    return _runtime


def reset() -> None:
    global _runtime
    if _runtime is not None:
        _runtime.close()
    _runtime = None
