"""The inbox processed by several connections at once: no claim waits for another transaction, and a
recipient keeps the report of the latest body whichever batch commits first."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dispatcher import campaigns
from dispatcher.results import inbox
from dispatcher.results.inbox import process_pending, record_raw
from dispatcher.results.optout_words import optout_matcher
from dispatcher.results.reconcile import reconcile_staged
from dispatcher.results.rows import Body, open_stage, stage_bodies
from dispatcher.store import (
    Chunk,
    ChunkState,
    OptOut,
    Outcome,
    RawPull,
    ReportRow,
    claim_chunk,
    finish_chunk,
    utcnow,
)
from tests.helpers import sent_before
from tests.results.scenario import FIRST, TEMPLATE, accepted_campaign, contacts, states
from tests.stack import PG_URL


def test_given_two_bodies_reporting_a_number_when_the_earlier_is_applied_last_then_the_later_one_stays(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = accepted_campaign(stack, 1)
    account, number = stack.accounts["webservice"], str(FIRST)
    # Given: an "undelivered" report, then a later body saying "delivered"
    with stack.sessions() as session:
        earlier = record_raw(
            session, account, "reports", "pull", f"77700030,{number},2026/01/02 10:00:00,UNDELIVRD|"
        )
        record_raw(session, account, "reports", "pull", f"77700030,{number},2026/01/02 10:05:00,DELIVRD|")
        # When: the later body's batch commits first (two connections: the other one is still busy)
        session.execute(update(RawPull).where(RawPull.id == earlier).values(parsed_at=utcnow()))
        session.commit()
    process_pending(stack.sessions, stack.settings)
    assert states(stack, campaign_id)[number] == ("delivered", "DELIVRD")
    with stack.sessions() as session:
        session.execute(update(RawPull).where(RawPull.id == earlier).values(parsed_at=None))
        session.commit()
    stats = process_pending(stack.sessions, stack.settings)

    # Then: the earlier report is stored, matched, and does not replace the later one
    assert (stats.bodies, stats.matched) == (1, 1)
    assert states(stack, campaign_id)[number] == ("delivered", "DELIVRD")
    with stack.sessions() as session:
        stored = session.execute(select(ReportRow.status, ReportRow.recipient_id.is_not(None))).all()
    assert sorted(tuple(r) for r in stored) == [("DELIVRD", True), ("UNDELIVRD", True)]


def test_given_earlier_unmatched_reports_of_two_bodies_when_matched_together_then_the_later_body_wins(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = accepted_campaign(stack, 1)
    account, number = stack.accounts["webservice"], str(FIRST)
    # Given: two bodies' reports stored unmatched (their batch id was not known yet), the later body's
    # report stored first (ids follow the order rows are written, not the order bodies came in)
    with stack.sessions() as session:
        earlier = record_raw(session, account, "reports", "pull", "x|")
        later = record_raw(session, account, "reports", "pull", "y|")
        session.execute(update(RawPull).values(parsed_at=utcnow()))
        for raw, status in ((later, "DELIVRD"), (earlier, "UNDELIVRD")):
            session.add(
                ReportRow(account=account, batch_id="77700030", mobile=number, status=status, raw_pull_id=raw)
            )
        session.commit()

    # When: the retry of unmatched reports matches both at once
    stats = process_pending(stack.sessions, stack.settings)

    # Then: the report of the later body is the recipient's
    assert stats.matched == 2
    assert states(stack, campaign_id)[number] == ("delivered", "DELIVRD")


@pytest.mark.skipif(not PG_URL, reason="DISPATCHER_TEST_POSTGRES_URL is not set (SQLite has one writer)")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_given_a_batch_held_by_another_connection_when_processing_then_the_rest_is_done_without_waiting(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = accepted_campaign(stack, 2)
    account = stack.accounts["webservice"]
    with stack.sessions() as session:
        for n in range(2):
            record_raw(
                session, account, "reports", "pull", f"7770003{n},{FIRST + n},2026/01/02 10:00:00,DELIVRD|"
            )
    # Given: another processor has claimed the first body and not committed yet
    holder = stack.sessions()
    held = inbox._claim(holder, 1, None)
    assert held is not None and len(held) == 1
    try:
        # When: this one processes the inbox
        done = threading.Event()
        result: list[inbox.ProcessStats] = []

        def run() -> None:
            result.append(process_pending(stack.sessions, stack.settings, connections=1))
            done.set()

        threading.Thread(target=run, daemon=True).start()

        # Then: it takes the other body at once, without waiting for the holder to end
        assert done.wait(15), "the processor waited for the other transaction's claim"
        assert (result[0].bodies, result[0].matched) == (1, 1)
        assert states(stack, campaign_id) == {
            str(FIRST): ("accepted", None),
            str(FIRST + 1): ("delivered", "DELIVRD"),
        }
    finally:
        holder.rollback()
        holder.close()
    # and the held body, handed back, is processed by the next run
    assert process_pending(stack.sessions, stack.settings).matched == 1
    assert states(stack, campaign_id)[str(FIRST)] == ("delivered", "DELIVRD")


_ON_POSTGRESQL = (
    pytest.mark.skipif(not PG_URL, reason="DISPATCHER_TEST_POSTGRES_URL is not set (SQLite has one writer)"),
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
)


@_ON_POSTGRESQL[0]
@_ON_POSTGRESQL[1]
def test_given_batches_reporting_numbers_in_crossed_orders_when_two_connections_process_them_then_the_last_wins(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = accepted_campaign(stack, 10)
    account = stack.accounts["webservice"]
    # Given: 80 bodies reporting the same ten numbers, in ascending and descending order by turns;
    # only the last body says "delivered"
    with stack.sessions() as session:
        for turn in range(80):
            order = range(10) if turn % 2 == 0 else range(9, -1, -1)
            status = "DELIVRD" if turn == 79 else "UNDELIVRD"
            body = "".join(f"7770003{n},{FIRST + n},2026/01/02 10:00:00,{status}|" for n in order)
            record_raw(session, account, "reports", "pull", body)

    # When: two connections process them a body a batch
    stats = process_pending(stack.sessions, stack.settings, batch=1, connections=2)

    # Then: every report is counted once and every number shows the last body's
    assert (stats.bodies, stats.reports, stats.matched) == (80, 800, 800)
    assert set(states(stack, campaign_id).values()) == {("delivered", "DELIVRD")}


@_ON_POSTGRESQL[0]
@_ON_POSTGRESQL[1]
def test_given_opt_out_replies_in_crossed_orders_when_two_connections_process_them_then_a_deadlock_is_retried(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    account = stack.accounts["webservice"]
    numbers = [13900000000 + i for i in range(40)]
    sent_before(
        stack.sessions, account, "webservice", [str(n) for n in numbers]
    )  # replies opt out its numbers
    # Given: six rounds of 40 "TD" replies, the numbers ascending then descending: two batches of 40
    # opt out the same numbers in opposite orders (a deadlock on the opt-outs' index)
    with stack.sessions() as session:
        for turn in range(6):
            for n in numbers if turn % 2 == 0 else reversed(numbers):
                record_raw(session, account, "replies", "pull", f"{n}|,|TD|,|2026-01-02 10:00:00")

    # When
    stats = process_pending(stack.sessions, stack.settings, batch=40, connections=2)

    # Then: the losing batch went again; every body is processed and counted once
    assert stats.bodies == 240
    with stack.sessions() as session:
        assert len(session.execute(select(OptOut.mobile)).all()) == 40
        assert session.execute(select(RawPull.id).where(RawPull.parsed_at.is_(None))).first() is None


@_ON_POSTGRESQL[0]
@_ON_POSTGRESQL[1]
def test_given_one_unknown_chunk_proven_in_two_batches_at_once_then_it_is_settled_and_counted_once(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    account = stack.accounts["webservice"]
    created = campaigns.create(
        stack.sessions, stack.settings, contacts(stack.tmp, 1), TEMPLATE, account, actor="t"
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        chunk_id = session.execute(select(Chunk.id)).scalar_one()
        assert claim_chunk(session, chunk_id, "w", 60)
        now = utcnow()
        finish_chunk(session, chunk_id, "w", Outcome(ChunkState.UNKNOWN, now, now))
    # Given: two bodies, each with a report proving the unknown chunk's request was taken
    at = (utcnow() + timedelta(hours=8)).strftime("%Y/%m/%d %H:%M:%S")
    with stack.sessions() as session:
        for status in ("UNDELIVRD", "DELIVRD"):
            record_raw(session, account, "reports", "pull", f"5550001,{FIRST},{at},{status}|")
    words = optout_matcher(stack.settings.optout_words)
    first, second = stack.sessions(), stack.sessions()
    counted: list[int] = []

    def process(session: Session, claimed: list[inbox._Raw]) -> None:
        open_stage(session)
        parsed: list[Body] = []
        for raw in claimed:
            inbox._process_one(session, stack.settings, raw, words, inbox.ProcessStats(), parsed)
        stage_bodies(session, parsed)
        counted.append(
            reconcile_staged(session, ReportRow.raw_pull_id.in_([r.id for r in claimed])).settled_chunks
        )
        session.commit()

    try:
        # When: one connection settles the chunk and, before it commits, the other tries too
        one, other = inbox._claim(first, 1, None), inbox._claim(second, 1, None)
        assert one and other
        open_stage(first)
        parsed: list[Body] = []
        inbox._process_one(first, stack.settings, one[0], words, inbox.ProcessStats(), parsed)
        stage_bodies(first, parsed)
        counted.append(reconcile_staged(first, ReportRow.raw_pull_id.in_([one[0].id])).settled_chunks)
        waiting = threading.Thread(target=process, args=(second, other))
        waiting.start()
        waiting.join(2)
        assert waiting.is_alive()  # waits for the chunk's row
        first.commit()
        waiting.join(30)
    finally:
        first.close()
        second.close()

    # Then: settled once, counted once
    assert sorted(counted) == [0, 1]
    with stack.sessions() as session:
        assert session.execute(select(Chunk.state)).scalar_one() == "accepted"
