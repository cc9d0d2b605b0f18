"""The results beat: pull every pulling account, process the inbox, expire silent recipients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dispatcher.results import reconcile
from dispatcher.results.inbox import ProcessStats, process_pending
from dispatcher.results.pull import pull_account, pulls
from dispatcher.runtime import Runtime


@dataclass
class CycleStats:
    bodies: dict[str, int] = field(default_factory=dict)  # account/kind -> bodies pulled
    failures: dict[str, str] = field(default_factory=dict)  # account/kind -> what went wrong
    skipped: dict[str, str] = field(default_factory=dict)  # account -> why it was not pulled
    alerts: list[str] = field(default_factory=list)  # account errors a person must act on
    processed: ProcessStats = field(default_factory=ProcessStats)
    expired: int = 0


def pull_all(runtime: Runtime, stats: CycleStats) -> None:
    for account in runtime.settings.accounts.values():
        if not pulls(account):
            continue
        pulled = pull_account(runtime, account)
        for kind, count in pulled.bodies.items():
            stats.bodies[f"{account.name}/{kind}"] = count
        for kind, failure in pulled.failures.items():
            stats.failures[f"{account.name}/{kind}"] = failure
        if pulled.skipped:
            stats.skipped[account.name] = pulled.skipped
        if pulled.alert:
            stats.alerts.append(pulled.alert)


def run(runtime: Runtime, *, now: datetime | None = None) -> CycleStats:
    stats = CycleStats()
    pull_all(runtime, stats)
    stats.processed = process_pending(runtime.sessions, runtime.settings, now=now)
    with runtime.sessions() as session:
        stats.expired = reconcile.expire(session, now)
        session.commit()
    return stats
