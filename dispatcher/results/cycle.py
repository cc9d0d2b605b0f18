"""The results beat: pull every pulling account, process the inbox, expire silent recipients."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from dispatcher.errors import DispatcherError
from dispatcher.keys import KeySpace
from dispatcher.results import reconcile
from dispatcher.results.inbox import ProcessStats, process_pending
from dispatcher.results.pull import drain, pulls
from dispatcher.runtime import Runtime

logger = logging.getLogger(__name__)
PULL_LOCK_SECONDS = 300  # one drain per account at a time; released early when done


@dataclass
class CycleStats:
    bodies: dict[str, int] = field(default_factory=dict)  # account/kind -> bodies pulled
    failures: dict[str, str] = field(default_factory=dict)
    processed: ProcessStats = field(default_factory=ProcessStats)
    expired: int = 0


def pull_all(runtime: Runtime, stats: CycleStats) -> None:
    keys = KeySpace()
    for account in runtime.settings.accounts.values():
        if not pulls(account):
            continue
        lock = None
        if runtime.redis is not None:
            lock = runtime.redis.lock(keys.lock_key(f"pull:{account.name}"), timeout=PULL_LOCK_SECONDS)
            if not lock.acquire(blocking=False):
                continue  # another worker is draining this account right now
        try:
            transport = runtime.account(account.name).transport
            for kind in ("reports", "replies"):
                name = f"{account.name}/{kind}"
                try:
                    stats.bodies[name] = drain(runtime.sessions, transport, account, kind)
                except DispatcherError as exc:
                    stats.failures[name] = str(exc)
                    logger.warning("pull %s failed: %s", name, exc)
        finally:
            if lock is not None:
                lock.release()


def run(runtime: Runtime, *, now: datetime | None = None) -> CycleStats:
    stats = CycleStats()
    pull_all(runtime, stats)
    stats.processed = process_pending(runtime.sessions, runtime.settings, now=now)
    with runtime.sessions() as session:
        stats.expired = reconcile.expire(session, now)
        session.commit()
    return stats
