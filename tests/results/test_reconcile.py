"""Reports and replies against the simulator over HTTP, through a real Celery worker and the store."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.results import cycle, reconcile
from dispatcher.results.inbox import process_pending, record_raw
from dispatcher.results.pull import pulls
from dispatcher.runtime import Runtime
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import Chunk, OptOut, RawPull, Recipient, ReplyRow, ReportRow, utcnow
from tests.results.conftest import PushReceiver
from tests.results.scenario import (
    FIRST,
    TEMPLATE,
    accepted_campaign,
    contacts,
    drain_account,
    send,
    states,
    wait_sent,
)
from tests.stack import Stack
from workers.tasks import enqueue


def expected(stack: Stack, vendor: str) -> dict[str, tuple[str, str | None]]:
    ledger = [e for e in stack.sim.ledger()["accepted"] if e["vendor"] == vendor]
    return {
        e["mobile"]: ("delivered", "DELIVRD") if e["status"] == "DELIVRD" else ("undelivered", e["status"])
        for e in ledger
    }


@pytest.mark.parametrize("vendor", ["webservice", "yunxin", "trigger"])
def test_given_a_sent_campaign_when_reports_are_pulled_then_each_recipient_has_its_vendor_outcome(
    make_stack, vendor: str
) -> None:
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=7, deliver_ratio=0.6))
    campaign_id = send(stack, vendor, contacts(stack.tmp, 30))
    wait_sent(stack, campaign_id)

    assert drain_account(stack, vendor) >= 1
    stats = process_pending(stack.sessions, stack.settings)

    assert stats.reports == 30 and stats.matched == 30
    assert states(stack, campaign_id) == expected(stack, vendor)
    with stack.sessions() as session:
        status = campaigns.status(session, campaign_id)
    assert status["delivered"] + status["undelivered"] == 30
    assert status["delivery_rate"] == round(status["delivered"] / 30, 4)
    assert sum(status["failure_codes"].values()) == status["undelivered"]
    assert status["orphans"] == 0


@pytest.mark.parametrize("vendor", ["webservice", "yunxin", "trigger"])
def test_given_a_pushing_vendor_when_reports_are_pushed_then_recipients_are_reconciled(
    make_stack, receiver: PushReceiver, vendor: str
) -> None:
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=9, deliver_ratio=0.5, push_url=receiver.url))
    receiver.bind(stack.sessions, {v: stack.accounts[v] for v in ("webservice", "yunxin", "trigger")})
    campaign_id = send(stack, vendor, contacts(stack.tmp, 12))
    wait_sent(stack, campaign_id)

    def reconciled() -> bool:
        process_pending(stack.sessions, stack.settings)
        return states(stack, campaign_id) == expected(stack, vendor)

    stack.wait_for(reconciled, timeout=20)
    with stack.sessions() as session:
        sources = set(session.execute(select(RawPull.source)).scalars())
    assert sources == {"push"}


def test_given_a_crash_after_the_pull_when_processing_restarts_then_no_report_is_lost(make_stack) -> None:
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=0.7))
    campaign_id = send(stack, "yunxin", contacts(stack.tmp, 40))
    wait_sent(stack, campaign_id)

    # Given: the pull consumed the records at the vendor and the process died before parsing.
    drain_account(stack, "yunxin")
    assert drain_account(stack, "yunxin") == 0  # gone from the vendor for good
    with stack.sessions() as session:
        pending = session.execute(select(RawPull.id).where(RawPull.parsed_at.is_(None))).scalars().all()
    assert pending

    # When: a fresh process (new engine, no memory of the pull) processes the inbox
    fresh = Runtime.from_settings(stack.settings, use_redis=False)
    try:
        process_pending(fresh.sessions, stack.settings)
    finally:
        fresh.close()

    # Then: every report is there and applied
    assert states(stack, campaign_id) == expected(stack, "yunxin")


def test_given_a_report_before_the_batch_id_is_recorded_then_it_is_matched_when_it_is(make_stack) -> None:
    stack = make_stack(worker=False)
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        contacts(stack.tmp, 1),
        TEMPLATE,
        stack.accounts["webservice"],
        actor="t",
    )
    campaigns.start(stack.sessions, created.campaign_id, "t")
    account = stack.accounts["webservice"]
    # Given: the report comes first (a push can beat the send answer)
    with stack.sessions() as session:
        record_raw(session, account, "reports", "pull", f"777000111,{FIRST},2026/01/02 10:00:00,DELIVRD|")
    process_pending(stack.sessions, stack.settings)
    assert states(stack, created.campaign_id)[str(FIRST)] == ("queued", None)

    # When: the worker records the send answer with that batch id
    from dispatcher.store import ChunkState, Outcome, claim_chunk, finish_chunk

    with stack.sessions() as session:
        chunk_id = session.execute(select(Chunk.id)).scalar_one()
        assert claim_chunk(session, chunk_id, "w", 60)
        now = utcnow()
        finish_chunk(session, chunk_id, "w", Outcome(ChunkState.ACCEPTED, now, now, batch_id="777000111"))
    stats = process_pending(stack.sessions, stack.settings)

    # Then
    assert stats.matched == 1
    assert states(stack, created.campaign_id)[str(FIRST)] == ("delivered", "DELIVRD")


def test_given_several_reports_of_a_number_in_one_batch_then_each_is_stored_and_the_last_one_wins(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = accepted_campaign(stack, 2, batch_prefix="77700022")
    with stack.sessions() as session:
        batch = dict(session.execute(select(Recipient.mobile, Recipient.batch_id)).tuples().all())
    account = stack.accounts["webservice"]
    first, second = str(FIRST), str(FIRST + 1)
    # Given: the first number reported twice in one body, the second once in each of two bodies
    with stack.sessions() as session:
        for body in (
            f"{batch[first]},{first},2026/01/02 10:00:00,UNDELIVRD|{batch[first]},{first},2026/01/02 10:00:05,DELIVRD|",
            f"{batch[second]},{second},2026/01/02 10:00:00,DELIVRD|",
            f"{batch[second]},{second},2026/01/02 10:01:00,REJECTD|",
        ):
            record_raw(session, account, "reports", "pull", body)

    # When: they are processed in one batch
    stats = process_pending(stack.sessions, stack.settings)

    # Then: every report is stored with its match, in arrival order; each recipient has its last one
    assert (stats.bodies, stats.reports, stats.matched) == (3, 4, 4)
    with stack.sessions() as session:
        stored = session.execute(
            select(ReportRow.mobile, ReportRow.status, ReportRow.recipient_id.is_not(None)).order_by(
                ReportRow.id
            )
        ).all()
    assert [tuple(r) for r in stored] == [
        (str(FIRST), "UNDELIVRD", True),
        (str(FIRST), "DELIVRD", True),
        (str(FIRST + 1), "DELIVRD", True),
        (str(FIRST + 1), "REJECTD", True),
    ]
    outcome = states(stack, campaign_id)
    assert outcome[str(FIRST)] == ("delivered", "DELIVRD")
    assert outcome[str(FIRST + 1)] == ("undelivered", "REJECTD")


def test_given_a_report_that_matches_nothing_then_it_is_kept_and_listed_as_an_orphan(make_stack) -> None:
    stack = make_stack(worker=False)
    with stack.sessions() as session:
        record_raw(session, stack.accounts["yunxin"], "reports", "pull", "999,13911112222,UNDELIVRD|")
    process_pending(stack.sessions, stack.settings)
    process_pending(stack.sessions, stack.settings)

    from dispatcher.results.orphans import list_orphans

    with stack.sessions() as session:
        orphans = list_orphans(session)
    assert [(o["batch_id"], o["mobile"], o["status"]) for o in orphans] == [
        ("999", "13911112222", "UNDELIVRD")
    ]


def test_given_unknown_chunks_when_reports_name_their_numbers_then_they_settle_as_accepted(
    make_stack,
) -> None:
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=1.0, fault_rate=1.0))
    campaign_id = send(stack, "webservice", contacts(stack.tmp, 30))

    def some_lost_answers() -> bool:
        ledger = {e["mobile"] for e in stack.sim.ledger()["accepted"]}
        current = states(stack, campaign_id)
        return len(ledger) >= 3 and all(current[m][0] == "unknown" for m in ledger)

    stack.wait_for(some_lost_answers, timeout=60)
    campaigns.cancel(stack.sessions, campaign_id, "t")
    stack.wait_for(lambda: not any(s == "sending" for s, _ in states(stack, campaign_id).values()), 30)
    ledger = {e["mobile"]: e["batch_id"] for e in stack.sim.ledger()["accepted"]}

    drain_account(stack, "webservice")
    stats = process_pending(stack.sessions, stack.settings)

    current = states(stack, campaign_id)
    assert stats.settled_chunks == len(ledger)
    assert all(current[m] == ("delivered", "DELIVRD") for m in ledger)
    assert all(s != "delivered" for m, (s, _) in current.items() if m not in ledger)
    with stack.sessions() as session:
        batches = dict(session.execute(select(Recipient.mobile, Recipient.batch_id)).all())
    assert all(batches[m] == b for m, b in ledger.items())


def test_given_no_report_72_hours_after_acceptance_then_recipients_expire_except_at_entinfo(
    make_stack,
) -> None:
    stack = make_stack()
    ws = send(stack, "webservice", contacts(stack.tmp, 3, "w.xlsx"))
    en = send(stack, "entinfo", contacts(stack.tmp, 3, "e.xlsx", first=13800000000))
    wait_sent(stack, ws)
    wait_sent(stack, en)

    with stack.sessions() as session:
        assert reconcile.expire(session, utcnow() + timedelta(hours=71)) == 0
        assert reconcile.expire(session, utcnow() + timedelta(hours=73)) == 3
        session.commit()
        en_status = campaigns.status(session, en)

    assert {s for s, _ in states(stack, ws).values()} == {"expired"}
    assert {s for s, _ in states(stack, en).values()} == {"accepted"}
    assert en_status["has_reports"] is False and "entinfo" in en_status["note"]
    assert not pulls(stack.settings.account(stack.accounts["entinfo"]))


@pytest.mark.parametrize("vendor", ["yunxin", "trigger"])
def test_given_an_optout_reply_then_the_number_is_never_sent_again(make_stack, vendor: str) -> None:
    stack = make_stack()
    first = send(stack, vendor, contacts(stack.tmp, 5))
    wait_sent(stack, first)
    # A second campaign to the same numbers, planned but not started yet
    later = campaigns.create(
        stack.sessions,
        stack.settings,
        contacts(stack.tmp, 5, "d.xlsx"),
        TEMPLATE,
        stack.accounts[vendor],
        actor="t",
    )
    stack.sim.add_reply(vendor, "demo", str(FIRST + 1), "ＴＤ")
    stack.sim.add_reply(vendor, "demo", str(FIRST + 2), "谢谢")

    drain_account(stack, vendor, "replies")
    stats = process_pending(stack.sessions, stack.settings)

    assert stats.replies == 2 and stats.optouts == 1
    with stack.sessions() as session:
        optouts = session.execute(select(OptOut.mobile, OptOut.source)).all()
        replies = session.execute(select(ReplyRow.mobile, ReplyRow.campaign_id, ReplyRow.is_optout)).all()
    assert optouts == [(str(FIRST + 1), "reply")]
    assert sorted(replies) == [(str(FIRST + 1), first, True), (str(FIRST + 2), first, False)]
    # The planned campaign drops the number; a new upload rejects it.
    assert states(stack, later.campaign_id)[str(FIRST + 1)][0] == "rejected"
    enqueue(campaigns.start(stack.sessions, later.campaign_id, "t"), app=stack.app)
    wait_sent(stack, later.campaign_id)
    sent = Counter(e["mobile"] for e in stack.sim.ledger()["accepted"])
    assert sent[str(FIRST + 1)] == 1 and sent[str(FIRST + 2)] == 2
    third = campaigns.create(
        stack.sessions,
        stack.settings,
        contacts(stack.tmp, 5, "e.xlsx"),
        TEMPLATE,
        stack.accounts[vendor],
        actor="t",
    )
    assert [r.value for r in third.result.rejected] == [str(FIRST + 1)]


def test_given_the_beat_cycle_then_it_pulls_processes_and_skips_entinfo(make_stack) -> None:
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=1, deliver_ratio=1.0))
    campaign_id = send(stack, "trigger", contacts(stack.tmp, 4))
    wait_sent(stack, campaign_id)
    runtime = Runtime.from_settings(stack.settings)
    try:
        stats = cycle.run(runtime)
    finally:
        runtime.close()
    assert not stats.failures
    assert not any(name.startswith(stack.accounts["entinfo"]) for name in stats.bodies)
    assert {s for s, _ in states(stack, campaign_id).values()} == {"delivered"}
    with stack.sessions() as session:
        assert session.execute(select(ReportRow.ref)).scalars().all()  # trigger's customerUuid kept
