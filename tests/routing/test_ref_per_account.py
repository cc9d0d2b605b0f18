"""A report or reply is matched only with what was sent on the account it came through (issue 22): a
trigger ``customerUuid`` (a chunk's ref) names a request, but another account's report or push may name
any ref it likes. A reply without a usable ref goes to the campaign whose send to its number on its
account is the most recent, whichever account that campaign is on now. Real store, both stores."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import select, update

from dispatcher.results.inbox import process_pending, record_raw
from dispatcher.store import Campaign, Chunk, Recipient, ReplyRow, utcnow
from tests.results.scenario import accepted_campaign, states
from tests.routing.conftest import Acct, RoutingStack

N = "13900000000"
TWO = [Acct("a", "trigger", "ua"), Acct("b", "trigger", "ub")]


def _as_stack(stack: RoutingStack) -> SimpleNamespace:
    accounts = {short: name for short, name in stack.names.items()}
    return SimpleNamespace(tmp=stack.tmp, sessions=stack.sessions, settings=stack.settings, accounts=accounts)


def _ref(stack: RoutingStack, campaign_id: int) -> str:
    with stack.sessions() as session:
        return str(session.execute(select(Chunk.ref).where(Chunk.campaign_id == campaign_id)).scalar_one())


def _inbox(stack: RoutingStack, account: str, kind: str, source: str, body: str) -> None:
    with stack.sessions() as session:
        record_raw(session, stack.names[account], kind, source, body)  # type: ignore[arg-type]
    process_pending(stack.sessions, stack.settings)


def _tied(stack: RoutingStack) -> dict[str, int | None]:
    with stack.sessions() as session:
        return {m: c for m, c in session.execute(select(ReplyRow.mobile, ReplyRow.campaign_id))}


def test_given_a_report_naming_another_accounts_ref_then_it_matches_nothing(routing_stack) -> None:
    stack = routing_stack(TWO, worker=False)
    # Given: campaign X sent N on account a (accepted, batch 7770001 0)
    x = accepted_campaign(_as_stack(stack), 1, "7770001", vendor="a")  # type: ignore[arg-type]
    ref = _ref(stack, x)
    # When account b's pulled reports name X's ref for N (another batch id)
    _inbox(stack, "b", "reports", "pull", f"55501,{N},2026/12/08 09:00:00,UNDELIVRD,{ref}|")
    # Then X's recipient is not touched
    assert states(_as_stack(stack), x) == {N: ("accepted", None)}  # type: ignore[arg-type]
    # And the same report through account a matches it by the ref
    _inbox(stack, "a", "reports", "pull", f"55501,{N},2026/12/08 09:00:00,UNDELIVRD,{ref}|")
    assert states(_as_stack(stack), x) == {N: ("undelivered", "UNDELIVRD")}  # type: ignore[arg-type]


def test_given_a_reply_naming_another_accounts_ref_then_it_is_not_tied_to_that_campaign(
    routing_stack,
) -> None:
    stack = routing_stack(TWO, worker=False)
    x = accepted_campaign(_as_stack(stack), 1, "7770001", vendor="a")  # type: ignore[arg-type]
    reply = {"type": 3, "list": [{"dest_phone": N, "resp_content": "好", "customer_uuid": _ref(stack, x)}]}
    # When a reply pushed for account b (which never sent to N) names X's chunk
    _inbox(stack, "b", "replies", "push", json.dumps(reply))
    # Then it is tied to no campaign; through account a, to X
    assert _tied(stack) == {N: None}
    with stack.sessions() as session:
        session.execute(update(ReplyRow).values(mobile="13700000000"))
        session.commit()
    _inbox(stack, "a", "replies", "push", json.dumps(reply))
    assert _tied(stack) == {"13700000000": None, N: x}


def test_given_a_reply_without_ref_then_the_most_recent_send_on_its_account_wins(routing_stack) -> None:
    stack = routing_stack(TWO, worker=False)
    view = _as_stack(stack)
    # Given: on account a, campaign X sent N an hour ago, campaign Y (created later) a day ago; and
    # campaign Z sent N on account b a minute ago, then failed over to account a
    x = accepted_campaign(view, 1, "7770001", vendor="a")  # type: ignore[arg-type]
    y = accepted_campaign(view, 1, "7770002", vendor="a")  # type: ignore[arg-type]
    z = accepted_campaign(view, 1, "7770003", vendor="b")  # type: ignore[arg-type]
    now = utcnow()
    with stack.sessions() as session:
        for campaign_id, ago in ((x, timedelta(hours=1)), (y, timedelta(days=1)), (z, timedelta(minutes=1))):
            session.execute(
                update(Recipient).where(Recipient.campaign_id == campaign_id).values(submitted_at=now - ago)
            )
        session.execute(update(Recipient).where(Recipient.campaign_id == z).values(account=stack.names["b"]))
        session.execute(update(Campaign).where(Campaign.id == z).values(account=stack.names["a"]))
        session.commit()
    reply = {"type": 3, "list": [{"dest_phone": N, "resp_content": "好"}]}
    # When N replies through account a: X (its most recent send on a; Z sent on b)
    _inbox(stack, "a", "replies", "push", json.dumps(reply))
    assert _tied(stack) == {N: x}
    # And through account b: Z, though Z is on account a now
    with stack.sessions() as session:
        session.execute(update(ReplyRow).values(mobile="13700000000"))
        session.commit()
    _inbox(stack, "b", "replies", "push", json.dumps(reply))
    assert _tied(stack) == {"13700000000": x, N: z}
