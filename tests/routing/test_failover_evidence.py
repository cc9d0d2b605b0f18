"""Evidence after a failover is weighed per account that sent the request, never the campaign's
current account: a report of a number, or entinfo's "already sent", may be about a request the
campaign sent before it moved. And an operator's re-send of an unknown request keeps what it is when a
failover re-plans it: the first request's report, or its late acceptance, still spares the second
send; a cancel still calls it unknown. Real simulator, real store, driven as a worker drives it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select, update

from dispatcher import campaigns, failover
from dispatcher.decisions import SendAttempt, interpret
from dispatcher.dispatch import AccountRuntime, build_request, load_group, record_attempts, send_group
from dispatcher.results import cycle
from dispatcher.runtime import Runtime
from dispatcher.store import Chunk, Recipient, sweep_expired_leases, utcnow
from dispatcher.store.chunks import claim_chunks
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import ENTINFO_SN, write_contacts

TEXT = "会员日全场8折，回T退订【测试】"  # one text: a same-text request
N = "13900000007"
YX_TG = [Acct("yx", "yunxin", "yx"), Acct("tg", "trigger", "tg")]


def _runtime(stack: RoutingStack, name: str) -> AccountRuntime:
    account = stack.settings.account(stack.names[name])
    return AccountRuntime(account, vendor_module(account.vendor), Transport([account.base_url]), None)


def _campaign(stack: RoutingStack, name: str, mobiles: list[str], fallbacks: tuple[str, ...] = ()) -> int:
    path = write_contacts(stack.tmp / f"c{utcnow().timestamp()}.xlsx", [(m, "张三") for m in mobiles])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEXT, stack.names[name], actor="t",
        fallbacks=[stack.names[f] for f in fallbacks],
    )  # fmt: skip
    return created.campaign_id


def _claimed_then_died(stack: RoutingStack, campaign_id: int, name: str | None) -> tuple[int, Any, Any, str]:
    """Start the campaign and claim its one chunk; send it on account ``name`` (None: never sent); the
    worker dies, the sweep makes it unknown. Returns (chunk, its row, its claim, the vendor's answer)."""
    (chunk_id,) = campaigns.start(stack.sessions, campaign_id, "t")
    (row,) = load_group(stack.sessions, [chunk_id])
    with stack.sessions() as session:
        claimed = claim_chunks(session, [chunk_id], "dead-worker", -1)[chunk_id]
    body = ""
    if name is not None:
        runtime = _runtime(stack, name)
        body = runtime.transport.send(build_request(runtime, row, claimed.pairs)).text
    with stack.sessions() as session:
        assert chunk_id in sweep_expired_leases(session)
    return chunk_id, row, claimed, body


def _failed_over(stack: RoutingStack, campaign_id: int) -> None:
    campaigns.pause(stack.sessions, campaign_id, "system")
    failover.switch(stack.sessions, stack.settings, campaign_id, "account")


def _reports_arrive(stack: RoutingStack) -> None:
    runtime = Runtime.from_settings(stack.settings)
    try:
        cycle.run(runtime)
    finally:
        runtime.close()


def _state_of(stack: RoutingStack, campaign_id: int) -> str:
    with stack.sessions() as session:
        return str(
            session.execute(
                select(Recipient.state).where(Recipient.campaign_id == campaign_id, Recipient.mobile == N)
            ).scalar_one()
        )


def _queued(stack: RoutingStack, campaign_id: int) -> list[int]:
    with stack.sessions() as session:
        query = select(Chunk.id).where(Chunk.campaign_id == campaign_id, Chunk.state == "queued")
        return list(session.execute(query).scalars())


def _ledger(stack: RoutingStack) -> Counter[str]:
    return Counter(f"{e['account']}:{e['mobile']}" for e in stack.ledger())


def test_given_a_campaign_that_moved_after_an_operator_re_sent_its_unknown_request_when_the_old_accounts_report_comes_then_another_campaigns_unsent_chunk_stays_unknown(
    routing_stack: Any,
) -> None:
    stack = routing_stack(YX_TG, worker=False)
    # Given campaign X, whose yunxin request for N went out (its worker died: unknown), moved to
    # trigger, where an operator re-sent N (trigger took it)
    x = _campaign(stack, "yx", [N], fallbacks=("tg",))
    _claimed_then_died(stack, x, "yx")
    _failed_over(stack, x)
    assert campaigns.retry(stack.sessions, x, "alice", include_unknown=True)
    send_group(stack.sessions, _runtime(stack, "tg"), load_group(stack.sessions, _queued(stack, x)), "w1")
    assert _ledger(stack) == Counter({"yx:" + N: 1, "tg:" + N: 1})
    # ... and campaign Y on yunxin, whose request for N never left (claimed, its worker died)
    y = _campaign(stack, "yx", [N])
    _claimed_then_died(stack, y, None)

    # When yunxin's report of X's first request arrives
    _reports_arrive(stack)

    # Then it settles nothing of Y's: Y's number was never sent, it stays unknown for a person
    assert _state_of(stack, y) == "unknown"


def test_given_a_campaign_that_sent_n_and_moved_away_when_an_entinfo_re_send_of_another_campaigns_unknown_request_answers_minus_20_then_it_stays_unknown(
    routing_stack: Any,
) -> None:
    stack = routing_stack([Acct("en", "entinfo", ENTINFO_SN), Acct("yx", "yunxin", "yx")], worker=False)
    # Given campaign Y, which sent N this text on entinfo, then moved to yunxin
    y = _campaign(stack, "en", [N], fallbacks=("yx",))
    runtime = _runtime(stack, "en")
    results = send_group(
        stack.sessions, runtime, load_group(stack.sessions, campaigns.start(stack.sessions, y, "t")), "w1"
    )
    assert [r.state for r in results] == ["accepted"]
    _failed_over(stack, y)
    # ... and campaign X on entinfo, whose request for N never left (unknown), re-sent by an operator
    x = _campaign(stack, "en", [N])
    _claimed_then_died(stack, x, None)
    assert campaigns.retry(stack.sessions, x, "alice", include_unknown=True)

    # When entinfo answers the re-send -20 ("already sent this text to this number": Y's)
    (result,) = send_group(stack.sessions, runtime, load_group(stack.sessions, _queued(stack, x)), "w1")

    # Then it proves nothing of X's own request: unknown, not accepted
    assert _ledger(stack) == Counter({f"{ENTINFO_SN}:{N}": 1})
    assert (result.state, _state_of(stack, x)) == ("unknown", "unknown")


def _resent_then_moved(stack: RoutingStack) -> tuple[int, int, Any, Any, str]:
    """Campaign X on yunxin: its request for N went out (taken; its worker died: unknown), an operator
    re-queued it, and the campaign then failed over to trigger, which re-planned it."""
    x = _campaign(stack, "yx", [N], fallbacks=("tg",))
    chunk_id, row, claimed, body = _claimed_then_died(stack, x, "yx")
    assert campaigns.retry(stack.sessions, x, "alice", include_unknown=True) == [chunk_id]
    _failed_over(stack, x)
    with stack.sessions() as session:
        assert session.get_one(Chunk, chunk_id).error_class == "moved"
    return x, chunk_id, row, claimed, body


def test_given_an_operators_re_send_moved_by_a_failover_when_the_first_requests_report_comes_then_it_is_not_sent_again(
    routing_stack: Any,
) -> None:
    stack = routing_stack(YX_TG, worker=False)
    x, *_ = _resent_then_moved(stack)
    new = _queued(stack, x)

    # When yunxin's report of the first request arrives before trigger sends the re-planned request
    _reports_arrive(stack)
    send_group(stack.sessions, _runtime(stack, "tg"), load_group(stack.sessions, new), "w1")

    # Then N was sent once, on yunxin, and is delivered
    assert _ledger(stack) == Counter({"yx:" + N: 1})
    assert _state_of(stack, x) == "delivered"


def test_given_an_operators_re_send_moved_by_a_failover_when_the_first_request_is_answered_accepted_late_then_it_is_not_sent_again(
    routing_stack: Any,
) -> None:
    stack = routing_stack(YX_TG, worker=False)
    x, _, row, claimed, body = _resent_then_moved(stack)
    new = _queued(stack, x)

    # When yunxin's answer to the first request (accepted) is recorded late
    verdict = interpret(vendor_module("yunxin"), body=body)
    started = utcnow()
    record_attempts(
        stack.sessions, "dead-worker", [SendAttempt(row, claimed, verdict, started, started, None)]
    )
    send_group(stack.sessions, _runtime(stack, "tg"), load_group(stack.sessions, new), "w1")

    # Then N was sent once, on yunxin
    assert _ledger(stack) == Counter({"yx:" + N: 1})
    assert _state_of(stack, x) == "accepted"


def test_given_an_operators_re_send_moved_by_a_failover_when_the_campaign_is_cancelled_then_it_is_unknown_not_cancelled(
    routing_stack: Any,
) -> None:
    stack = routing_stack(YX_TG, worker=False)
    x, *_ = _resent_then_moved(stack)

    # When the campaign is cancelled before trigger sends the re-planned request
    campaigns.cancel(stack.sessions, x, "alice")

    # Then N is unknown (yunxin took it), never "cancelled"
    assert _state_of(stack, x) == "unknown"
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.campaign_id == x).values(not_before=None))
        session.commit()
    assert _ledger(stack) == Counter({"yx:" + N: 1})
