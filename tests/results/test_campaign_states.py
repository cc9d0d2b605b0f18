"""Campaign states people can trust: ``sent`` until the reports are in, then ``completed``; a cancel's
unsent recipients are ``cancelled``. Against the simulator over HTTP, a real worker and the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dispatcher import campaigns, scheduler
from dispatcher.errors import StateError
from dispatcher.results.inbox import process_pending
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import AuditEntry, Recipient
from tests.results.scenario import contacts, drain_account, send, wait_sent
from tests.stack import Stack


def status(stack: Stack, campaign_id: int) -> dict[str, object]:
    scheduler.complete_finished(stack.sessions)
    with stack.sessions() as session:
        return campaigns.status(session, campaign_id)


def moves(stack: Stack, campaign_id: int) -> list[str]:
    with stack.sessions() as session:
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.campaign_id == campaign_id).order_by(AuditEntry.id)
        ).scalars()
        return [
            a.removeprefix("campaign.")
            for a in actions
            if a.startswith("campaign.") and a != "campaign.create"
        ]


def test_given_a_yunxin_campaign_when_every_request_is_accepted_then_it_is_sent_until_its_reports_arrive(
    make_stack,
) -> None:
    # Given a yunxin campaign whose every message the gateway accepted
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=0.8))
    campaign_id = send(stack, "yunxin", contacts(stack.tmp, 20))
    wait_sent(stack, campaign_id)
    # Then it is sent, not completed: no report has come yet, and it says so
    before = status(stack, campaign_id)
    assert before["state"] == "sent"
    assert before["accepted"] == 20 and before["delivered"] == 0
    assert before["waiting"] == "reports" and before["reports_due"] == 20
    # When the reports are pulled and matched
    assert drain_account(stack, "yunxin") >= 1
    process_pending(stack.sessions, stack.settings)
    # Then the beat completes it: every accepted recipient has its report
    after = status(stack, campaign_id)
    assert after["state"] == "completed" and after["waiting"] is None
    assert after["accepted"] == 0 and after["delivered"] + after["undelivered"] == 20
    assert moves(stack, campaign_id)[-3:] == ["running", "sent", "completed"]


def test_given_an_entinfo_campaign_when_every_request_is_accepted_then_it_is_completed_at_once(
    make_stack,
) -> None:
    # entinfo has no delivery reports: accepted is final, nothing is due
    stack = make_stack()
    campaign_id = send(stack, "entinfo", contacts(stack.tmp, 6))
    wait_sent(stack, campaign_id)
    final = status(stack, campaign_id)
    assert final["state"] == "completed" and final["accepted"] == 6 and final["waiting"] is None
    assert "sent" not in moves(stack, campaign_id)


def test_given_a_started_campaign_when_cancelled_before_it_sends_then_its_recipients_are_cancelled(
    make_stack,
) -> None:
    # Given a started campaign no worker has sent yet (no worker runs)
    stack = make_stack(worker=False)
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        contacts(stack.tmp, 8),
        "{姓名}您好，回T退订【测试】",
        stack.accounts["yunxin"],
        actor="t",
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    # When a person cancels it
    campaigns.cancel(stack.sessions, created.campaign_id, "t")
    # Then its recipients were never sent: cancelled, not failed; the counts say so
    with stack.sessions() as session:
        states = set(
            session.execute(
                select(Recipient.state).where(Recipient.campaign_id == created.campaign_id)
            ).scalars()
        )
    assert states == {"cancelled"}
    final = status(stack, created.campaign_id)
    assert final["state"] == "cancelled"
    assert final["cancelled"] == 8 and final["failed"] == 0 and final["recipients"] == 8
    assert final["failure_codes"] == {}
    assert stack.sim.ledger()["accepted"] == []


def test_given_a_scheduled_campaign_when_resumed_then_it_is_refused_and_stays_scheduled(make_stack) -> None:
    # "resume" is for a paused campaign: a scheduled one would run without its chunks ever queued
    stack = make_stack(worker=False)
    created = campaigns.create(
        stack.sessions, stack.settings, contacts(stack.tmp, 3), "{姓名}您好，回T退订【测试】",
        stack.accounts["yunxin"], actor="t", start_at=datetime.now(UTC) + timedelta(days=1),
    )  # fmt: skip
    with pytest.raises(StateError, match="cannot go from scheduled to running"):
        campaigns.resume(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        assert campaigns.status(session, created.campaign_id)["state"] == "scheduled"


def test_given_a_late_answer_after_the_campaign_finished_then_the_beat_puts_the_campaign_right(
    make_stack,
) -> None:
    from sqlalchemy import update

    from dispatcher.store import Campaign, Chunk

    stack = make_stack(worker=False)
    created = campaigns.create(
        stack.sessions, stack.settings, contacts(stack.tmp, 2), "{姓名}您好，回T退订【测试】",
        stack.accounts["yunxin"], actor="t",
    )  # fmt: skip
    campaign_id = created.campaign_id
    campaigns.start(stack.sessions, campaign_id, "t")

    def given(campaign: str, chunk: str, recipient: str) -> str:
        with stack.sessions() as session:
            session.execute(update(Campaign).where(Campaign.id == campaign_id).values(state=campaign))
            session.execute(update(Chunk).where(Chunk.campaign_id == campaign_id).values(state=chunk))
            session.execute(
                update(Recipient).where(Recipient.campaign_id == campaign_id).values(state=recipient)
            )
            session.commit()
        return str(status(stack, campaign_id)["state"])

    # A late answer re-queued a chunk of a sent campaign: it runs again (else the chunk would wait forever)
    assert given("sent", "queued", "queued") == "running"
    # ... of a completed one too
    assert given("completed", "queued", "queued") == "running"
    # A late answer accepted a chunk of a completed campaign: its reports are due again
    assert given("completed", "accepted", "accepted") == "sent"
    # Nothing left to send nor to hear: completed
    assert given("sent", "accepted", "delivered") == "completed"
