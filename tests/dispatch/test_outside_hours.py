"""A vendor's "outside sending hours" (yunxin/trigger ``-8``) waits for the hours, without using up
retries, but not for ever: after 72 hours of nothing else, the chunk fails with the vendor's reason.
Real store, real HTTP to a loopback gateway answering ``-8``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from dispatcher import campaigns
from dispatcher.dispatch import Next
from dispatcher.store import Attempt, Chunk
from tests.dispatch.scenario import FIRST, chunks, create, recipients, runtime_for, send
from tests.vendors.loopback import gateway


def time_passes(stack: Any, hours: float) -> None:
    """The attempts so far happened ``hours`` earlier, and the chunk's wait is over."""
    shift = timedelta(hours=hours)
    with stack.sessions() as session:
        for attempt in session.scalars(select(Attempt)):
            attempt.started_at -= shift
            attempt.finished_at -= shift
        session.flush()
        session.execute(update(Chunk).values(not_before=None))
        session.commit()


def test_given_the_vendor_says_outside_its_hours_for_72_hours_then_the_chunk_fails_with_that_reason(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "trigger", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("status", status=200, answer=b"-8") as gw:
        runtime = runtime_for(stack, "trigger", gw.url)
        # Given the vendor has answered "outside sending hours" for 71 hours
        (first,) = send(stack, runtime, ids)
        assert first.next is Next.LATER
        time_passes(stack, 71)
        (again,) = send(stack, runtime, ids)
        assert again.next is Next.LATER and chunks(stack, campaign_id)[0].state == "queued"
        time_passes(stack, 1.5)

        # When it says so once more, 72 hours after the first
        (last,) = send(stack, runtime, ids)

    # Then the chunk gives up, failed with the vendor's code and why (a person may retry it)
    (chunk,) = chunks(stack, campaign_id)
    assert (last.next, chunk.state, chunk.error_class, chunk.code) == (
        Next.DONE,
        "failed",
        "retry_later",
        "-8",
    )
    assert chunk.detail is not None and "72" in chunk.detail
    assert recipients(stack, campaign_id)[str(FIRST)] == ("failed", "retry_later", "-8")
    assert campaigns.retry(stack.sessions, campaign_id, "t") == ids


def test_given_another_answer_between_when_outside_hours_again_then_the_72_hours_start_again(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "trigger", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("status", status=200, answer=b"-8") as gw:
        send(stack, runtime_for(stack, "trigger", gw.url), ids)
    time_passes(stack, 80)
    with gateway("status", status=200, answer=b"-1") as gw:  # "try again later": the hours were open
        send(stack, runtime_for(stack, "trigger", gw.url), ids)
    time_passes(stack, 0)
    with gateway("status", status=200, answer=b"-8") as gw:
        (result,) = send(stack, runtime_for(stack, "trigger", gw.url), ids)
    assert (result.next, chunks(stack, campaign_id)[0].state) == (Next.LATER, "queued")
