"""A chunk packed for the account a campaign failed over from, queued again afterwards (a late "try
later" from the old account for a chunk swept ``unknown``, or an operator's ``retry --include-unknown``):
the workers never send it with the old packing on the new account (a 500-number yunxin request on a
trigger account, 50 a request, fails unsent, again and again); the beat re-plans it onto the new
account. A chunk left ``unknown`` is never re-planned: nothing is sent twice."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import select, update

from dispatcher import campaigns, failover
from dispatcher.decisions import Result, SendAttempt, Verdict, interpret
from dispatcher.dispatch import (
    AWAITS_REPLAN,
    AccountRuntime,
    Next,
    build_request,
    load_group,
    record_attempts,
    send_group,
)
from dispatcher.errors import HTTPStatusError
from dispatcher.store import Chunk, Recipient, sweep_expired_leases, utcnow
from dispatcher.store.chunks import claim_chunks
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import write_contacts
from workers import tasks
from workers.tasks import enqueue

TEMPLATE = "会员日全场8折，回T退订【测试】"  # one text: same-text requests
NUMBERS = [str(13900000000 + i) for i in range(1001)]  # yunxin: 500 same-text + 501 personalised


def _runtime(stack: RoutingStack, name: str) -> AccountRuntime:
    account = stack.settings.account(stack.names[name])
    return AccountRuntime(account, vendor_module(account.vendor), Transport([account.base_url]), None)


def _status(stack: RoutingStack, campaign_id: int) -> dict[str, Any]:
    with stack.sessions() as session:
        return campaigns.status(session, campaign_id)


def _tick_until(stack: RoutingStack, campaign_id: int, accepted: int, timeout: float = 30.0) -> None:
    """Tick like the beat until ``accepted`` recipients were taken (or the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks.run_tick(stack.app)
        if _status(stack, campaign_id)["accepted"] >= accepted:
            return
        time.sleep(0.3)
    with stack.sessions() as session:
        chunks = session.execute(
            select(Chunk.id, Chunk.state, Chunk.error_class, Chunk.recipient_count, Chunk.detail).where(
                Chunk.campaign_id == campaign_id
            )
        ).all()
    raise AssertionError(f"not all taken: {_status(stack, campaign_id)['accepted']}; chunks {chunks}")


@pytest.mark.parametrize("requeued_by", ["late try later", "retry --include-unknown"])
def test_given_an_unknown_yunxin_chunk_queued_again_after_failing_over_to_trigger_then_it_is_re_planned_and_sent_once(
    routing_stack: Any, requeued_by: str
) -> None:
    # Given a yunxin campaign (two requests: 500 numbers one text, 501 personalised) with a trigger
    # fallback (50 a request): its 500-number request went out and its worker vanished (swept
    # unknown), the other was sent back by an account error; the beat fails it over and trigger
    # takes the other's 501 numbers
    stack = routing_stack([Acct("yx", "yunxin", "yx"), Acct("tg", "trigger", "tg")])
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in NUMBERS])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["yx"], actor="t",
        fallbacks=[stack.names["tg"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        (first, count), (second, _) = session.execute(
            select(Chunk.id, Chunk.recipient_count)
            .where(Chunk.campaign_id == campaign_id)
            .order_by(Chunk.text.is_(None))  # the same-text one first
        ).tuples()
    assert count == 500
    (row,) = load_group(stack.sessions, [first])
    with stack.sessions() as session:
        claimed = claim_chunks(session, [first], "old-worker", -1)[first]  # its lease over at once
    with stack.sessions() as session:
        assert sweep_expired_leases(session) == [first]
        session.execute(update(Chunk).where(Chunk.id == second).values(error_class="account", code="-2"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    enqueue(failover.run(stack.sessions, stack.settings), app=stack.app)
    _tick_until(stack, campaign_id, 501)
    # ... the unknown chunk, never queued again, is left alone: it may have been taken
    for _ in range(3):
        tasks.run_tick(stack.app)
    with stack.sessions() as session:
        assert session.get_one(Chunk, first).state == "unknown"
        assert set(session.execute(select(Recipient.state).where(Recipient.chunk_id == first)).scalars()) == {
            "unknown"
        }

    # When it is queued again with its yunxin packing: by yunxin's late "try later" (HTTP 503 with
    # Retry-After: it did not take it), or by an operator's knowing re-send
    if requeued_by == "late try later":
        now = utcnow()
        request = build_request(_runtime(stack, "yx"), row, claimed.pairs)
        verdict = interpret(vendor_module("yunxin"), error=HTTPStatusError(503, headers={"Retry-After": "1"}))
        attempt = SendAttempt(row, claimed, verdict, now - timedelta(seconds=130), now, request)
        record_attempts(stack.sessions, "old-worker", [attempt])
        with stack.sessions() as session:  # its backoff over
            session.execute(update(Chunk).where(Chunk.id == first).values(not_before=None))
            session.commit()
    else:
        assert campaigns.retry(stack.sessions, campaign_id, "alice", include_unknown=True) == [first]
    assert _status(stack, campaign_id)["state"] == "running"

    # Then a worker of the trigger account does not send it as it is: it stays queued for the beat
    (result,) = send_group(stack.sessions, _runtime(stack, "tg"), load_group(stack.sessions, [first]), "w1")
    assert result.state == AWAITS_REPLAN
    with stack.sessions() as session:
        assert session.get_one(Chunk, first).state == "queued"
        # ... nor does a worker that checked it against the old account (it fits there) win it
        assert claim_chunks(session, [first], "w2", 120, account=stack.names["yx"]) == {}
        assert session.get_one(Chunk, first).state == "queued"
    # ... and the beat re-plans it into trigger's requests (50 numbers), which trigger takes
    _tick_until(stack, campaign_id, 1001)
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter(NUMBERS)
    assert {e["account"] for e in stack.ledger()} == {"tg"}
    with stack.sessions() as session:
        closed = session.get_one(Chunk, first)
        assert (closed.state, closed.error_class) == ("failed", "moved")
        sizes = Counter(
            session.execute(
                select(Chunk.recipient_count).where(
                    Chunk.campaign_id == campaign_id, Chunk.state == "accepted"
                )
            ).scalars()
        )
    assert sizes == Counter({50: 20, 1: 1})  # the 501 moved at the failover, then the 500


def test_given_an_accounts_same_text_max_lowered_after_planning_then_its_queued_chunks_are_still_sent(
    routing_stack: Any,
) -> None:
    # Given a yunxin campaign planned as one 500-number request, never failed over
    stack = routing_stack([Acct("yx", "yunxin", "yx")], worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in NUMBERS[:500]])
    created = campaigns.create(stack.sessions, stack.settings, path, TEMPLATE, stack.names["yx"], actor="t")
    (chunk_id,) = campaigns.start(stack.sessions, created.campaign_id, "t")

    # When a worker whose configuration now advises 100 numbers a request sends it
    runtime = _runtime(stack, "yx")
    runtime = replace(runtime, account=replace(runtime.account, same_text_max=100))
    (result,) = send_group(stack.sessions, runtime, load_group(stack.sessions, [chunk_id]), "w1")

    # Then it goes out as planned: the advice is not the vendor's limit, nothing waits for a re-plan
    assert result.state == "accepted"
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter(NUMBERS[:500])


def test_given_an_account_made_encrypted_while_its_campaign_runs_then_its_queued_chunks_are_re_planned_and_sent_once(
    routing_stack: Any,
) -> None:
    # Given a trigger campaign planned as two 50-number requests, never failed over (no fallback)
    stack = routing_stack([Acct("tg", "trigger", "tg")], worker=False)
    numbers = NUMBERS[:100]
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in numbers])
    created = campaigns.create(stack.sessions, stack.settings, path, TEMPLATE, stack.names["tg"], actor="t")
    campaign_id = created.campaign_id
    queued = campaigns.start(stack.sessions, campaign_id, "t")
    assert len(queued) == 2

    # When its account is made encrypted (one number a request) before they are sent
    name = stack.names["tg"]
    encrypted = replace(stack.settings.account(name), encrypted=True)
    settings = replace(stack.settings, accounts=MappingProxyType({name: encrypted}))
    runtime = replace(_runtime(stack, "tg"), account=encrypted)
    results = send_group(stack.sessions, runtime, load_group(stack.sessions, queued), "w1")
    assert {r.state for r in results} == {AWAITS_REPLAN}

    # Then the beat re-plans them onto the account as it is now (it never failed over: nothing else
    # would; they would wait forever, re-queued every 30 s, the campaign never done) ...
    new = failover.run(stack.sessions, settings)
    assert len(new) == 100
    # ... and each number is sent once, one request each
    for start in range(0, len(new), 50):
        results = send_group(
            stack.sessions, runtime, load_group(stack.sessions, new[start : start + 50]), "w1"
        )
        assert {r.state for r in results} == {"accepted"}
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter(numbers)
    with stack.sessions() as session:
        assert {session.get_one(Chunk, i).error_class for i in queued} == {"moved"}
    assert _status(stack, campaign_id)["accepted"] == 100


# yunxin with two trigger fallbacks: the route of :func:`_swept_then_failed_over`.
FAILED_OVER = [Acct("yx", "yunxin", "yx"), Acct("tg", "trigger", "tg"), Acct("tg2", "trigger", "tg2")]


def _swept_then_failed_over(
    stack: RoutingStack, names: list[str] | None = None, template: str = TEMPLATE
) -> tuple[int, int, Any, Any]:
    """A yunxin campaign of one 30-number request (it fits trigger's 50) with two trigger fallbacks:
    its request went out and its worker vanished (swept unknown); the campaign then failed over to the
    first trigger account. Returns (campaign, chunk, its row, its claim)."""
    numbers = NUMBERS[:30]
    path = write_contacts(stack.tmp / "c.xlsx", list(zip(numbers, names or ["张三"] * 30, strict=True)))
    created = campaigns.create(
        stack.sessions, stack.settings, path, template, stack.names["yx"], actor="t",
        fallbacks=[stack.names["tg"], stack.names["tg2"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    (chunk_id,) = campaigns.start(stack.sessions, campaign_id, "t")
    (row,) = load_group(stack.sessions, [chunk_id])
    with stack.sessions() as session:
        claimed = claim_chunks(session, [chunk_id], "old-worker", -1)[chunk_id]
    with stack.sessions() as session:
        assert sweep_expired_leases(session) == [chunk_id]
    campaigns.pause(stack.sessions, campaign_id, "system")
    failover.switch(stack.sessions, stack.settings, campaign_id, "account")
    assert _status(stack, campaign_id)["account"] == stack.names["tg"]
    return campaign_id, chunk_id, row, claimed


def _answer(
    stack: RoutingStack, name: str, row: Any, claimed: Any, worker: str, started: Any, verdict: Verdict
) -> Result:
    """Record account ``name``'s answer ``verdict`` to ``claimed``'s request, sent at ``started``."""
    request = build_request(_runtime(stack, name), row, claimed.pairs)
    (result,) = record_attempts(
        stack.sessions, worker, [SendAttempt(row, claimed, verdict, started, utcnow(), request)]
    )
    return result


def _try_later(stack: RoutingStack, name: str, row: Any, claimed: Any, worker: str, started: Any) -> None:
    """Record account ``name``'s "try later" (HTTP 503 with Retry-After) for ``claimed``."""
    vendor = stack.settings.account(stack.names[name]).vendor
    verdict = interpret(vendor_module(vendor), error=HTTPStatusError(503, headers={"Retry-After": "1"}))
    _answer(stack, name, row, claimed, worker, started, verdict)


def _sent_once_on(stack: RoutingStack, name: str, chunk_id: int) -> None:
    """Send the queued chunk now, on account ``name``: accepted, each of its 30 numbers once."""
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == chunk_id).values(not_before=None))
        session.commit()
    (result,) = send_group(
        stack.sessions, _runtime(stack, name), load_group(stack.sessions, [chunk_id]), "w1"
    )
    assert result.state == "accepted"
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter(NUMBERS[:30])


NO_BALANCE = "-7"  # yunxin: insufficient balance, an account problem


def test_given_a_late_try_later_from_the_old_account_for_a_chunk_that_fits_the_new_one_then_the_new_account_is_kept(
    routing_stack: Any,
) -> None:
    # Given a campaign failed over from yunxin to trigger, its one chunk swept unknown on yunxin
    stack = routing_stack(FAILED_OVER, worker=False)
    campaign_id, chunk_id, row, claimed = _swept_then_failed_over(stack)

    # When yunxin's "try later" for that request comes, long after it went out (past failover_after)
    started = utcnow() - timedelta(seconds=stack.settings.failover_after + 60)
    _try_later(stack, "yx", row, claimed, "old-worker", started)
    failover.run(stack.sessions, stack.settings)

    # Then the campaign stays on the trigger account, which never said "try later" ...
    status = _status(stack, campaign_id)
    assert (status["state"], status["account"]) == ("running", stack.names["tg"])
    # ... which sends the chunk once
    _sent_once_on(stack, "tg", chunk_id)


def test_given_a_late_no_balance_from_the_old_account_then_the_campaign_is_not_paused_on_the_new_one(
    routing_stack: Any,
) -> None:
    # Given a campaign failed over from yunxin to trigger, its one chunk swept unknown on yunxin
    stack = routing_stack(FAILED_OVER, worker=False)
    campaign_id, chunk_id, row, claimed = _swept_then_failed_over(stack)

    # When yunxin's late answer to that request is "insufficient balance" (an account problem)
    verdict = interpret(vendor_module("yunxin"), body=NO_BALANCE)
    late = _answer(stack, "yx", row, claimed, "old-worker", utcnow(), verdict)
    failover.run(stack.sessions, stack.settings)

    # Then the campaign runs on, on trigger (not paused, not moved on to the next fallback), the chunk
    # handed back to be sent, not held for a resume ...
    status = _status(stack, campaign_id)
    assert (status["state"], status["account"]) == ("running", stack.names["tg"])
    assert (late.next, late.state) == (Next.LATER, "queued")
    # ... which sends the chunk yunxin did not take, once
    _sent_once_on(stack, "tg", chunk_id)


def test_given_no_balance_from_the_account_a_campaign_is_on_then_it_is_still_paused(
    routing_stack: Any,
) -> None:
    # Given a campaign on yunxin without fallbacks, its one chunk sent
    stack = routing_stack([Acct("yx", "yunxin", "yx")], worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [(m, "张三") for m in NUMBERS[:30]])
    created = campaigns.create(stack.sessions, stack.settings, path, TEMPLATE, stack.names["yx"], actor="t")
    (chunk_id,) = campaigns.start(stack.sessions, created.campaign_id, "t")
    (row,) = load_group(stack.sessions, [chunk_id])
    with stack.sessions() as session:
        claimed = claim_chunks(session, [chunk_id], "w1", 120)[chunk_id]

    # When yunxin answers "insufficient balance"
    result = _answer(
        stack, "yx", row, claimed, "w1", utcnow(), interpret(vendor_module("yunxin"), body=NO_BALANCE)
    )

    # Then the campaign is paused for a person, its chunk queued for the resume
    assert (result.next, _status(stack, created.campaign_id)["state"]) == (Next.PAUSED, "paused")


def test_given_the_new_account_says_try_later_past_failover_after_then_the_campaign_moves_on_again(
    routing_stack: Any,
) -> None:
    # Given a campaign failed over from yunxin to trigger, its one chunk swept unknown on yunxin and
    # queued again by yunxin's late "try later"
    stack = routing_stack(FAILED_OVER, worker=False)
    campaign_id, chunk_id, row, claimed = _swept_then_failed_over(stack)
    _try_later(stack, "yx", row, claimed, "old-worker", utcnow() - timedelta(seconds=130))

    # When trigger answers "try later" too, and keeps doing so past failover_after
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == chunk_id).values(not_before=None))
        session.commit()
    (row,) = load_group(stack.sessions, [chunk_id])
    with stack.sessions() as session:
        claimed = claim_chunks(session, [chunk_id], "w1", 120, account=stack.names["tg"])[chunk_id]
    _try_later(stack, "tg", row, claimed, "w1", utcnow())
    later = utcnow() + timedelta(seconds=stack.settings.failover_after + 60)
    failover.run(stack.sessions, stack.settings, now=later)
    failover.run(stack.sessions, stack.settings, now=later)

    # Then the campaign leaves trigger for its next fallback
    assert _status(stack, campaign_id)["account"] == stack.names["tg2"]


def test_given_a_late_try_later_for_a_personalised_chunk_packed_for_the_old_vendor_then_it_is_re_planned_for_the_new_ones_separators(
    routing_stack: Any,
) -> None:
    # Given a yunxin campaign of one personalised 30-number request (it fits trigger's 50) whose one
    # name holds trigger's message separator (nothing to yunxin), swept unknown, failed over to trigger
    stack = routing_stack(FAILED_OVER, worker=False)
    names = [f"客户{i}" for i in range(29)] + ["王|-|五"]
    campaign_id, chunk_id, row, claimed = _swept_then_failed_over(
        stack, names, "{姓名}您好，会员日8折【测试】"
    )
    assert row.text is None  # personalised

    # When yunxin's late "try later" for it queues it again
    _try_later(stack, "yx", row, claimed, "old-worker", utcnow())
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == chunk_id).values(not_before=None))
        session.commit()

    # Then a trigger worker does not send it as packed for yunxin ...
    runtime = _runtime(stack, "tg")
    (result,) = send_group(stack.sessions, runtime, load_group(stack.sessions, [chunk_id]), "w1")
    assert result.state == AWAITS_REPLAN
    # ... the beat re-plans it for trigger (the text holding the separator alone), and every number
    # is taken once
    new = failover.run(stack.sessions, stack.settings)
    assert new
    results = send_group(stack.sessions, runtime, load_group(stack.sessions, new), "w1")
    assert {r.state for r in results} == {"accepted"}
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter(NUMBERS[:30])
    assert _status(stack, campaign_id)["accepted"] == 30
