"""Campaigns through a real Celery worker, the real Redis limiter and the simulator over HTTP."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import Chunk, Recipient
from dispatcher.store.recipients import recipient_text
from tests.dispatch.scenario import finished
from tests.stack import Stack, write_contacts
from workers.tasks import enqueue

TEMPLATE = "{姓名}您好，本周会员日全场8折，回T退订【测试】"
NAMES = ["张三", "李四", "王五"]


def contacts(tmp: Path, count: int, *, first: int = 13900000000) -> Path:
    rows = [(str(first + i), NAMES[i % 3]) for i in range(count)]
    return write_contacts(tmp / "contacts.xlsx", rows)


def run_campaign(stack: Stack, vendor: str, path: Path, template: str = TEMPLATE) -> int:
    created = campaigns.create(
        stack.sessions, stack.settings, path, template, stack.accounts[vendor], actor="t"
    )
    ids = campaigns.start(stack.sessions, created.campaign_id, "t")
    enqueue(ids, app=stack.app)
    return created.campaign_id


def accepted_in_ledger(stack: Stack, vendor: str) -> list[dict[str, str]]:
    return [e for e in stack.sim.ledger()["accepted"] if e["vendor"] == vendor]


@pytest.mark.parametrize("vendor", ["webservice", "yunxin", "trigger", "entinfo"])
def test_given_a_campaign_when_workers_send_it_then_every_recipient_is_accepted_exactly_once(
    make_stack, vendor: str
) -> None:
    stack = make_stack()
    campaign_id = run_campaign(stack, vendor, contacts(stack.tmp, 120))

    stack.wait_for(lambda: finished(stack, campaign_id), timeout=60)

    ledger = accepted_in_ledger(stack, vendor)
    assert Counter(e["mobile"] for e in ledger) == Counter(str(13900000000 + i) for i in range(120))
    with stack.sessions() as session:
        status = campaigns.status(session, campaign_id)
        texts = dict(  # a same-text chunk carries the text of its recipients
            session.execute(
                select(Recipient.mobile, recipient_text()).outerjoin(Chunk, Chunk.id == Recipient.chunk_id)
            ).all()
        )
    assert status["accepted"] == 120 and status["failed"] == 0 and status["unknown"] == 0
    assert all(e["content"] == texts[e["mobile"]] for e in ledger)


def test_given_a_blacklisted_number_in_a_batch_when_sent_then_the_chunk_is_split_and_only_it_fails(
    make_stack,
) -> None:
    bad = "13900000007"
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0, blacklist=(bad,)))
    # One text for all: one trigger SendBatchMsg of 20 numbers, which the vendor refuses whole.
    rows = [(str(13900000000 + i), "张三") for i in range(20)]
    campaign_id = run_campaign(stack, "trigger", write_contacts(stack.tmp / "c.xlsx", rows))

    stack.wait_for(lambda: finished(stack, campaign_id), timeout=60)

    ledger = accepted_in_ledger(stack, "trigger")
    assert sorted(e["mobile"] for e in ledger) == sorted(r[0] for r in rows if r[0] != bad)
    with stack.sessions() as session:
        failed = session.execute(
            select(Recipient.mobile, Recipient.error_class).where(Recipient.state == "failed")
        ).all()
        splits = session.execute(select(Chunk.id).where(Chunk.parent_id.is_not(None))).all()
    assert [(m, c) for m, c in failed] == [(bad, "bad_recipient")]
    assert len(splits) >= 2


def test_given_a_wrong_password_when_sending_then_the_campaign_pauses_and_nothing_is_lost(make_stack) -> None:
    stack = make_stack(overrides={"yunxin": {"password": "wrong"}})
    campaign_id = run_campaign(stack, "yunxin", contacts(stack.tmp, 10))

    def paused() -> bool:
        with stack.sessions() as session:
            return campaigns.status(session, campaign_id)["state"] == "paused"

    stack.wait_for(paused)
    assert accepted_in_ledger(stack, "yunxin") == []
    with stack.sessions() as session:
        status = campaigns.status(session, campaign_id)
    assert status["queued"] == 10  # back in the queue, sent when a person fixes the account and resumes


def test_given_a_lost_answer_when_sending_then_the_chunk_is_unknown_and_never_resent(make_stack) -> None:
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=1.0, fault_rate=1.0))
    run_campaign(stack, "webservice", contacts(stack.tmp, 30))

    # Every request meets a fault: a 500, a reset or a lost answer after the request was sent: unknown.
    def settled() -> tuple[Counter[str], dict[str, str]]:
        ledger = Counter(e["mobile"] for e in accepted_in_ledger(stack, "webservice"))
        with stack.sessions() as session:
            states = dict(session.execute(select(Recipient.mobile, Recipient.state)).all())
        return ledger, states

    def accepted_numbers_settled() -> bool:
        ledger, states = settled()
        # A number the vendor accepted is never "failed" or back in the queue: at worst it is unknown
        # (a reset after sending looks the same to the client as a lost answer), awaiting reconciliation.
        return len(ledger) >= 5 and all(states[m] in ("unknown", "accepted") for m in ledger)

    stack.wait_for(accepted_numbers_settled, timeout=60)
    ledger, states = settled()
    assert all(n == 1 for n in ledger.values())  # never twice
    assert any(s == "unknown" for s in states.values())


def _count(stack: Stack, campaign_id: int, state: str) -> int:
    with stack.sessions() as session:
        return int(campaigns.status(session, campaign_id)[state])


def test_given_failed_chunks_when_retried_then_only_retryable_failures_are_sent_again(make_stack) -> None:
    stack = make_stack()
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        contacts(stack.tmp, 10),
        TEMPLATE,
        stack.accounts["webservice"],
        actor="t",
    )
    campaign_id = created.campaign_id
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    # Given three chunks that failed transiently and one whose content was refused
    transient, refused, rest = ids[:3], ids[3], ids[4:]
    with stack.sessions() as session:
        for chunk_id, cls in [*((c, "retry_later") for c in transient), (refused, "bad_content")]:
            session.execute(
                Chunk.__table__.update().where(Chunk.id == chunk_id).values(state="failed", error_class=cls)
            )
            session.execute(
                Recipient.__table__.update()
                .where(Recipient.chunk_id == chunk_id)
                .values(state="failed", error_class=cls)
            )
        session.commit()
    enqueue(rest, app=stack.app)
    stack.wait_for(lambda: finished(stack, campaign_id))
    first = Counter(e["mobile"] for e in accepted_in_ledger(stack, "webservice"))
    assert sum(first.values()) == 6

    # When a person retries the failed ones
    again = campaigns.retry(stack.sessions, campaign_id, "t")
    enqueue(again, app=stack.app)
    stack.wait_for(lambda: finished(stack, campaign_id))

    # Then only the transient failures went out again, once each; accepted ones were not re-sent
    assert sorted(again) == sorted(transient)
    second = Counter(e["mobile"] for e in accepted_in_ledger(stack, "webservice"))
    assert sum(second.values()) == 9 and all(n == 1 for n in second.values())
    assert _count(stack, campaign_id, "failed") == 1
