"""The beat's failover step against the other writers of a campaign and the clocks: a person's pause
wins over a failover decided before it; two overlapping ticks never lose a move's record (the campaign
would fail over again, off a healthy account); and what the move writes is stamped with the database's
clock, never the beat's."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from dispatcher import campaigns, failover, scheduler
from dispatcher.store import Campaign, Chunk, Recipient
from dispatcher.store.chunks import claim_chunks
from tests.helpers import machine_clock_off
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import write_contacts

TEMPLATE = "会员日全场8折，回T退订【测试】"
ACCOUNTS = [Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx"), Acct("yx2", "yunxin", "yx2")]


def _paused_by_an_account_error(stack: RoutingStack, count: int = 100) -> tuple[int, list[int]]:
    """A trigger campaign (50 numbers a request) with two yunxin fallbacks, paused by the worker: its
    first request was sent back by an account error. Returns it and its chunks' ids."""
    path = write_contacts(stack.tmp / "c.xlsx", [(str(13900000000 + i), "张三") for i in range(count)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["tg"], actor="t",
        fallbacks=[stack.names["yx"], stack.names["yx2"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == ids[0]).values(error_class="account", code="-2"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    return campaign_id, ids


def _campaign(stack: RoutingStack, campaign_id: int) -> tuple[str, str, dict[str, Any]]:
    with stack.sessions() as session:
        row = session.get_one(Campaign, campaign_id)
        return row.state, row.account, dict(row.routing or {})


def test_given_a_failover_waiting_for_a_request_in_flight_when_a_person_pauses_then_the_campaign_stays_paused(
    routing_stack: Any,
) -> None:
    # Given a campaign paused by an account error whose failover waits for a request still in flight
    stack = routing_stack(ACCOUNTS, worker=False)
    campaign_id, ids = _paused_by_an_account_error(stack)
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == ids[1]).values(state="sending"))
        session.execute(update(Recipient).where(Recipient.chunk_id == ids[1]).values(state="sending"))
        session.commit()
    assert failover.run(stack.sessions, stack.settings) == []
    assert _campaign(stack, campaign_id)[2].get("failing_over") == "account"

    # When a person resumes it and pauses it again, and the request in flight is then answered
    campaigns.resume(stack.sessions, campaign_id, "alice")
    campaigns.pause(stack.sessions, campaign_id, "alice")
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == ids[1]).values(state="accepted"))
        session.execute(update(Recipient).where(Recipient.chunk_id == ids[1]).values(state="accepted"))
        session.commit()
    new = failover.run(stack.sessions, stack.settings)

    # Then the person's pause wins: nothing moved, nothing runs, the campaign waits on its account
    state, account, routing = _campaign(stack, campaign_id)
    assert (new, state, account, routing.get("moves")) == ([], "paused", stack.names["tg"], None)


def test_given_two_overlapping_ticks_when_one_fails_over_then_the_other_keeps_its_record_and_there_is_no_second_move(
    routing_stack: Any,
) -> None:
    # Given a campaign paused by an account error, and a beat tick held just before it counts what
    # is in flight (it has read the campaign by then)
    stack = routing_stack(ACCOUNTS, worker=False)
    campaign_id, _ = _paused_by_an_account_error(stack)
    engine = stack.sessions.kw["bind"]
    reached, go = threading.Event(), threading.Event()

    def hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        ours = threading.current_thread().name == "tick2"
        if ours and "count(*)" in statement and "FROM chunks" in statement and not reached.is_set():
            reached.set()
            go.wait(20)

    event.listen(engine, "before_cursor_execute", hold)
    tick2 = threading.Thread(target=lambda: failover.run(stack.sessions, stack.settings), name="tick2")
    tick2.start()

    def tick1() -> None:
        # ... while another tick fails the campaign over, and a worker claims a request on the new account
        failover.switch(stack.sessions, stack.settings, campaign_id, "account")
        with stack.sessions() as session:
            queued = session.execute(
                select(Chunk.id).where(Chunk.campaign_id == campaign_id, Chunk.state == "queued")
            ).scalars()
            claim_chunks(session, list(queued)[:1], "w1", 120, account=stack.names["yx"])

    other = threading.Thread(target=tick1, name="tick1")
    try:
        assert reached.wait(20)
        # When the other tick moves meanwhile (it waits if the held one has the campaign's lock)
        other.start()
        other.join(3)
    finally:
        go.set()
        tick2.join(30)
        event.remove(engine, "before_cursor_execute", hold)
    other.join(30)
    failover.run(stack.sessions, stack.settings)  # the next tick

    # Then the campaign moved once, to its first fallback, keeps that move's record and runs there
    state, account, routing = _campaign(stack, campaign_id)
    assert (state, account) == ("running", stack.names["yx"])
    assert [m["to"] for m in routing["moves"]] == [stack.names["yx"]]
    assert "failing_over" not in routing


def test_given_a_beat_whose_clock_is_an_hour_ahead_when_it_fails_over_then_a_lost_enqueue_is_queued_again(
    routing_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a campaign paused by an account error, and a beat whose clock is an hour ahead
    stack = routing_stack(ACCOUNTS, worker=False)
    campaign_id, _ = _paused_by_an_account_error(stack)
    machine_clock_off(monkeypatch, timedelta(hours=1))

    # When it fails the campaign over and the message handing the new requests to the workers is lost
    new = failover.run(stack.sessions, stack.settings)
    assert new

    # Then the requeue sweep hands them out again once they are stale by the database's clock
    assert scheduler.requeue_stale(stack.sessions, ahead=timedelta(seconds=60)) == sorted(new)
    assert _campaign(stack, campaign_id)[0] == "running"
