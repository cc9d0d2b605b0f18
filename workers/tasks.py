"""Celery tasks: glue only. Each loads the process runtime, calls the library, queues what follows.

``register(app)`` puts the tasks on an app (the module-level one at import, or a test's own).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from celery import Celery, signals

from dispatcher import runtime, scheduler, unknowns
from dispatcher.dispatch import Next
from workers.app import MAX_COUNTDOWN, app, broker_transport, clamp_countdown

if TYPE_CHECKING:
    from dispatcher.config import Settings

logger = logging.getLogger(__name__)
SUBMIT = "dispatcher.submit"
TICK = "dispatcher.tick"
# Chunks per task: sent concurrently, their store work done in a few statements per round. 64 halves
# that work per message against 32 (BENCHMARKS.md, "Fourth round"), most on PostgreSQL.
GROUP = 64
TICK_SECONDS = 2.0
RESULTS = "dispatcher.results"
RESULTS_SECONDS = 5.0  # each account's reports and replies are pulled this often
KEYWORDS = "dispatcher.keywords"
KEYWORDS_SECONDS = 24 * 3600.0  # the vendors' forbidden-word lists are refreshed daily
SCHEDULES = "dispatcher.schedules"
PRUNE_COUNTS = "dispatcher.prune_counts"
PRUNE_COUNTS_SECONDS = 3600.0  # the frequency caps' counts of days no cap reads any more are deleted hourly
SCHEDULES_SECONDS = 10.0  # recurring schedules are looked at this often (a firing is late by at most this)
SCHEDULES_ENV = "DISPATCHER_SCHEDULES_SECONDS"  # overrides SCHEDULES_SECONDS (tests: seconds-field crons)


def stale_after(every: float) -> float:
    """Seconds after which a periodic task still in the queue is dropped (Celery's ``expires``): a
    backlog published while no worker consumed (workers down, a broker outage) is not run tick after
    tick; a newer one is queued by then. At least 10 s, so that machines' clocks a few seconds apart
    (the beat stamps the expiry, the worker reads it) drop nothing fresh; at most an hour."""
    return min(max(5 * every, 10.0), 3600.0)


def celery_app(settings: Settings) -> Celery:
    """The module's app, with its tasks and beat schedule, pointed at ``settings``' broker and Redis."""
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport=broker_transport(settings.broker_url),
        dispatcher_redis_url=settings.redis_url,
    )
    return app


def submit_chunks(app: Celery, chunk_ids: list[int]) -> None:
    later: dict[float, list[int]] = {}
    for result in runtime.current().send_many(chunk_ids):
        if result.next is Next.LATER and result.delay <= MAX_COUNTDOWN:
            later.setdefault(clamp_countdown(result.delay), []).append(result.chunk_id)
        elif result.next is Next.SPLIT:
            for child in result.children:
                app.send_task(SUBMIT, args=([child],))
        # Longer waits (send window, long backoff) stay in the store: the tick re-queues them.
    # Chunks due again together (those the rate limiter had no slot for within the task's wait, a
    # window opening) go back together, GROUP a task: a task each would cost each a round of store
    # work of its own. A backoff's jitter gives each retry its own countdown, and its own task.
    for countdown, ids in later.items():
        for start in range(0, len(ids), GROUP):
            app.send_task(SUBMIT, args=(ids[start : start + GROUP],), countdown=countdown)


def run_tick(app: Celery) -> None:
    """The beat's heartbeat: sweep dead leases, launch due campaigns, fail over, re-send the unknowns
    that settled themselves (``settle_unknown_after``), re-queue lost work, complete. The steps do not depend on each other: one that fails (a store error, a campaign a step
    cannot handle) is logged and the others still run, then the tick fails with the first error; one
    step's lasting failure must not stop campaigns from launching or completing."""
    current = runtime.current()
    sessions = current.sessions
    # issue 14: routing (balance guard before a launch; failover between accounts)
    from dispatcher import balance_guard, failover

    def launch() -> None:
        guard = balance_guard.beat_guard(sessions, current.settings, current.redis)
        for ids in scheduler.launch_due(sessions, guard=guard).values():
            enqueue(ids, app=app)

    steps: tuple[tuple[str, Callable[[], object]], ...] = (
        ("sweep", lambda: scheduler.sweep(sessions)),
        ("launch", launch),
        ("failover", lambda: enqueue(failover.run(sessions, current.settings), app=app)),
        ("unknowns", lambda: enqueue(unknowns.resend_settled(sessions, current.settings), app=app)),
        ("requeue", lambda: enqueue(scheduler.requeue_stale(sessions), app=app)),
        ("complete", lambda: scheduler.complete_finished(sessions)),
    )
    errors: list[Exception] = []
    for name, step in steps:
        try:
            step()
        except Exception as exc:
            logger.exception("beat tick: %s failed; the other steps go on", name)
            errors.append(exc)
    if errors:
        raise errors[0]


def schedules_every() -> float:
    """How often the beat looks at the schedules: ``DISPATCHER_SCHEDULES_SECONDS``, read when the beat starts."""
    value = os.environ.get(SCHEDULES_ENV)
    return float(value) if value else SCHEDULES_SECONDS


def enqueue(chunk_ids: Sequence[int], *, app: Celery = app, group: int = GROUP) -> int:
    """Hand chunks to the workers, ``group`` per task (a task sends its group concurrently)."""
    sent = 0
    for start in range(0, len(chunk_ids), group):
        app.send_task(SUBMIT, args=(list(chunk_ids[start : start + group]),))
        sent += 1
    return sent


def register(target: Celery) -> None:
    from workers.liveness import install

    install(target)  # the workers' heartbeat
    # A callable default: read when the beat starts, not at import.
    target.add_defaults(
        lambda: {
            "beat_schedule": {
                name: {"task": task, "schedule": every, "options": {"expires": stale_after(every)}}
                for name, task, every in (
                    ("tick", TICK, TICK_SECONDS),
                    ("results", RESULTS, RESULTS_SECONDS),
                    ("keywords", KEYWORDS, KEYWORDS_SECONDS),
                    ("schedules", SCHEDULES, schedules_every()),
                    ("prune_counts", PRUNE_COUNTS, PRUNE_COUNTS_SECONDS),
                )
            }
        }
    )

    @target.task(name=SUBMIT, bind=True, shared=False)
    def submit(self: Any, chunk_ids: list[int]) -> None:
        submit_chunks(self.app, chunk_ids)

    @target.task(name=TICK, bind=True, shared=False)
    def tick(self: Any) -> None:
        run_tick(self.app)

    @target.task(name=RESULTS, shared=False)
    def results() -> None:
        # Pull reports and replies of every pulling account, reconcile, apply opt-outs, expire.
        from dispatcher.results import cycle

        cycle.run(runtime.current())

    @target.task(name=SCHEDULES, shared=False)
    def fire_schedules() -> int:
        # Each due firing of a recurring schedule creates its campaign, scheduled at once: the tick's
        # launch step starts it. Its own task: a large list's reading never delays a tick's sweep.
        from dispatcher.schedules import firing

        current = runtime.current()
        return len(firing.fire_due(current.sessions, current.settings))

    @target.task(name=PRUNE_COUNTS, shared=False)
    def prune_counts() -> int:
        # contact_counts keeps a row per number and day: those older than the longest cap's window go.
        from dispatcher.store.caps import prune

        current = runtime.current()
        with current.sessions() as session:
            pruned = prune(session, current.settings)
            session.commit()
        return pruned

    @target.task(name=KEYWORDS, shared=False)
    def refresh_keywords() -> dict[str, str]:
        # Pull every listing account's forbidden words into the store (yunxin GetKeyWords).
        from dispatcher import keywords

        return keywords.refresh(runtime.current())


@signals.worker_init.connect
def load_sending_library(**_: Any) -> None:
    """Import aiohttp in the worker's parent, before the pool forks: in each child it would cost its
    first round ~0.1 s, after the rate limiter had given that round its slots, so those requests would
    reach the vendor late, bunched with the next ones sent on time. Likewise the DES cipher of encrypted
    accounts, which the vendor modules import when first used (the CLI starts faster without it)."""
    import aiohttp  # noqa: F401
    import Crypto.Cipher.DES
    import Crypto.Util.Padding  # noqa: F401


register(app)
