"""The beat decides by the database's clock, not its machine's; and its ticks go stale.

A beat on a machine whose clock is off must neither launch a campaign early nor leave lost work
un-queued; a backlog of ticks published while no worker consumed them (a broker outage, workers
down) is dropped, not run one after another. Real store, real Redis, a real Celery worker.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from celery.beat import Scheduler
from celery.contrib.testing.worker import start_worker
from redis import Redis
from sqlalchemy import select, update

from dispatcher import campaigns, scheduler
from dispatcher.store import Campaign, Chunk, utcnow
from tests.dispatch.scenario import create, numbers
from tests.helpers import machine_clock_off
from tests.stack import REDIS_URL
from workers.app import worker_queues

HOUR = timedelta(hours=1)


def state(stack: Any, campaign_id: int) -> str:
    with stack.sessions() as session:
        return str(session.execute(select(Campaign.state).where(Campaign.id == campaign_id)).scalar_one())


def test_given_a_beat_whose_clock_is_an_hour_ahead_then_a_campaign_is_not_launched_early(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", numbers(1))
    campaigns.schedule(stack.sessions, campaign_id, "t", utcnow() + timedelta(minutes=30))
    machine_clock_off(monkeypatch, HOUR)

    assert scheduler.launch_due(stack.sessions) == {}
    assert state(stack, campaign_id) == "scheduled"


def test_given_a_beat_whose_clock_is_an_hour_behind_then_lost_work_is_still_queued_again(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", numbers(1))
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:  # its broker message was lost a minute ago
        session.execute(update(Chunk).values(updated_at=utcnow() - timedelta(minutes=1)))
        session.commit()
    machine_clock_off(monkeypatch, -HOUR)

    assert scheduler.requeue_stale(stack.sessions) == ids


def test_given_ticks_queued_while_no_worker_ran_when_a_worker_comes_back_then_the_stale_ones_are_dropped(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", numbers(1))
    # A campaign due now: any tick that runs launches it
    campaigns.schedule(stack.sessions, campaign_id, "t", utcnow() - timedelta(minutes=1))
    beat = Scheduler(app=stack.app, lazy=True)
    beat.setup_schedule()
    entry = beat.schedule["tick"]
    expires = entry.options.get("expires")
    assert expires is not None, "the beat's tick carries no expiry"
    # Given the beat published ticks while no worker consumed them, longer ago than they last
    for _ in range(3):
        beat.apply_async(entry, advance=False)
    time.sleep(float(expires) + 1)

    # When a worker comes back
    queues = worker_queues(stack.app.conf.task_default_queue)
    with start_worker(stack.app, pool="threads", concurrency=2, perform_ping_check=False, queues=queues):
        time.sleep(3)
        # Then it ran none of them: the campaign was not launched by a stale tick
        assert state(stack, campaign_id) == "scheduled"
        # ... while a fresh tick does run
        beat.apply_async(entry, advance=False)
        stack.wait_for(lambda: state(stack, campaign_id) != "scheduled", timeout=20)
    Redis.from_url(REDIS_URL).delete(queues[1])
