"""Every inbox run tries the unmatched reports again (a report may come before its request's batch id is
recorded), but only those whose body arrived within ``reconcile.REMATCH_WINDOW``: older ones can match
nothing any more, and trying every orphan ever stored made each run cost more than the last."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from dispatcher.results.inbox import process_pending, record_raw
from dispatcher.results.reconcile import REMATCH_WINDOW, unmatched_ids
from dispatcher.store import RawPull, Recipient, ReportRow, utcnow
from tests.results.scenario import accepted_campaign, states


def test_given_unmatched_reports_older_than_the_window_then_the_inbox_does_not_try_them_again(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    account = stack.accounts["webservice"]
    # Given: a campaign's two numbers accepted (batches 77700030, 77700031), and a report of each under
    # a batch id not recorded yet: unmatched
    campaign_id = accepted_campaign(stack, 2)
    with stack.sessions() as session:
        old = record_raw(
            session, account, "reports", "pull", "88800000,13900000000,2026/12/08 09:00:00,DELIVRD|"
        )
        new = record_raw(
            session, account, "reports", "pull", "88800001,13900000001,2026/12/08 09:00:00,DELIVRD|"
        )
    process_pending(stack.sessions, stack.settings)
    now = utcnow()
    with stack.sessions() as session:
        assert len(unmatched_ids(session, now)) == 2
        # the first body arrived before the window, the second within it
        for raw_id, ago in (
            (old, REMATCH_WINDOW + timedelta(hours=1)),
            (new, REMATCH_WINDOW - timedelta(hours=1)),
        ):
            session.execute(update(RawPull).where(RawPull.id == raw_id).values(received_at=now - ago))
        # (the requests' batch ids recorded since: both reports could match now)
        for mobile, batch in (("13900000000", "88800000"), ("13900000001", "88800001")):
            session.execute(update(Recipient).where(Recipient.mobile == mobile).values(batch_id=batch))
        session.commit()
        assert len(unmatched_ids(session, now)) == 1
    # When the inbox runs again
    process_pending(stack.sessions, stack.settings)
    # Then only the report within the window was tried (and matched); the older one is left an orphan
    assert states(stack, campaign_id) == {
        "13900000000": ("accepted", None),
        "13900000001": ("delivered", "DELIVRD"),
    }
    with stack.sessions() as session:
        assert session.execute(
            select(ReportRow.raw_pull_id).where(ReportRow.recipient_id.is_(None))
        ).all() == [(old,)]


def test_given_no_body_within_the_window_then_nothing_is_tried_again(make_stack) -> None:
    stack = make_stack(worker=False)
    with stack.sessions() as session:
        record_raw(session, stack.accounts["webservice"], "reports", "pull", "1,13900000000,DELIVRD|")
    process_pending(stack.sessions, stack.settings)
    with stack.sessions() as session:
        assert len(unmatched_ids(session)) == 1
        assert unmatched_ids(session, utcnow() + REMATCH_WINDOW + timedelta(minutes=1)) == []
