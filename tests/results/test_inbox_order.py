"""The inbox processed by several connections at once: no claim waits for another transaction, and a
recipient keeps the report of the latest body whichever batch commits first."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from dispatcher import campaigns
from dispatcher.results import inbox
from dispatcher.results.inbox import process_pending, record_raw
from dispatcher.store import Chunk, ChunkState, Outcome, RawPull, ReportRow, claim_chunk, finish_chunk, utcnow
from tests.results.scenario import FIRST, TEMPLATE, contacts
from tests.results.test_reconcile import states
from tests.stack import PG_URL, Stack


def _sent(stack: Stack, numbers: int) -> int:
    """A campaign of ``numbers`` recipients on webservice, one chunk each, accepted with batch ids
    7770003<n>; returns its id."""
    created = campaigns.create(
        stack.sessions, stack.settings, contacts(stack.tmp, numbers), TEMPLATE, stack.accounts["webservice"],
        actor="t",
    )  # fmt: skip
    campaigns.start(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        for n, chunk_id in enumerate(session.execute(select(Chunk.id).order_by(Chunk.id)).scalars().all()):
            assert claim_chunk(session, chunk_id, "w", 60)
            now = utcnow()
            finish_chunk(
                session, chunk_id, "w", Outcome(ChunkState.ACCEPTED, now, now, batch_id=f"7770003{n}")
            )
    return created.campaign_id


def test_given_two_bodies_reporting_a_number_when_the_earlier_is_applied_last_then_the_later_one_stays(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = _sent(stack, 1)
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
    campaign_id = _sent(stack, 1)
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
    campaign_id = _sent(stack, 2)
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
