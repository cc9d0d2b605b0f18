"""``dispatcher_queue_oldest_age_seconds`` counts from when a request became due (queued, or its
backoff over), whatever the beat's re-queue sweep does meanwhile: re-queueing a lost broker message
must not make a stuck queue look fresh (the DispatcherQueueStuck alert would never fire)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from dispatcher import campaigns, scheduler
from dispatcher.operations.metrics import Sources, exposition
from dispatcher.store import Chunk, utcnow
from tests.dispatch.scenario import create, numbers


def oldest_age(stack: Any) -> float:
    text = exposition(Sources(stack.settings, stack.sessions, None, "q")).decode()
    found = re.search(r"^dispatcher_queue_oldest_age_seconds (\S+)$", text, re.M)
    assert found is not None, text
    return float(found.group(1))


def test_given_a_chunk_requeued_by_the_sweep_many_times_then_its_queue_age_still_counts_from_queueing(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)  # nobody sends: the queue is stuck
    campaign_id = create(stack, "webservice", numbers(1))
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:  # queued ten minutes ago
        session.execute(update(Chunk).values(updated_at=utcnow() - timedelta(minutes=10)))
        session.commit()
    assert 590 <= oldest_age(stack) < 700
    for _ in range(3):  # the beat's sweep hands it to the broker again, every time it is due for that
        assert scheduler.requeue_stale(stack.sessions, ahead=timedelta(seconds=31)) == ids
    assert 590 <= oldest_age(stack) < 700
    # Not re-queued again while its last re-queue is recent
    assert scheduler.requeue_stale(stack.sessions) == []

    with stack.sessions() as session:  # queued ten minutes ago, its backoff over two minutes ago
        ago = utcnow() - timedelta(minutes=10)
        session.execute(update(Chunk).values(updated_at=ago, not_before=utcnow() - timedelta(minutes=2)))
        session.commit()
    assert 110 <= oldest_age(stack) < 200


def test_given_an_opt_out_of_one_recipient_of_a_stuck_chunk_then_the_chunk_s_queue_age_stays(
    make_stack: Any,
) -> None:
    from dispatcher.results import optout_store

    stack = make_stack(worker=False)  # nobody sends: the queue is stuck
    mobiles = numbers(2)
    campaign_id = create(stack, "yunxin", mobiles)  # one request for both numbers
    campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:  # queued ten minutes ago
        session.execute(update(Chunk).values(updated_at=utcnow() - timedelta(minutes=10)))
        session.commit()
    # When one recipient opts out (the withdrawal locks the chunk's row)
    with stack.sessions() as session:
        optout_store.add(session, mobiles[:1], source="test")
        session.commit()
    # Then the stuck chunk still looks as old as it is
    assert 590 <= oldest_age(stack) < 700
