"""Celery tasks: glue only. Each loads the process runtime, calls the library, queues what follows."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from dispatcher import runtime, scheduler
from dispatcher.dispatch import Next
from workers.app import MAX_COUNTDOWN, app, clamp_countdown

SUBMIT = "dispatcher.submit"
TICK = "dispatcher.tick"
GROUP = 16  # chunks per task for one-number-per-request vendors: sent concurrently by the task


@app.task(name=SUBMIT)
def submit(chunk_ids: list[int]) -> None:
    rt = runtime.current()
    for result in rt.send_many(chunk_ids):
        if result.next is Next.LATER and result.delay <= MAX_COUNTDOWN:
            submit.apply_async(([result.chunk_id],), countdown=clamp_countdown(result.delay))
        elif result.next is Next.SPLIT:
            for child in result.children:
                submit.delay([child])
        # Longer waits (send window, long backoff) stay in the store: the tick re-queues them.


@app.task(name=TICK)
def tick() -> None:
    """The beat's heartbeat: launch due campaigns, sweep leases, re-queue lost work, complete."""
    sessions = runtime.current().sessions
    scheduler.sweep(sessions)
    for ids in scheduler.launch_due(sessions).values():
        enqueue(ids, app=app)
    enqueue(scheduler.requeue_stale(sessions), app=app)
    scheduler.complete_finished(sessions)


def enqueue(chunk_ids: Sequence[int], *, app: Celery = app, group: int = GROUP) -> int:
    """Hand chunks to the workers, ``group`` per task (a task sends its group concurrently)."""
    sent = 0
    for start in range(0, len(chunk_ids), group):
        app.send_task(SUBMIT, args=(list(chunk_ids[start : start + group]),))
        sent += 1
    return sent
