"""What an outside party writes (a reply's text, a pushed field, a report's status) cannot corrupt another
record nor stop the inbox: a text holding the vendor's separators stays one reply of its sender, and a
body the store cannot hold is set aside with its error while the rest goes on."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispatcher.results.inbox import process_pending
from dispatcher.store import OptOut, ReplyRow
from tests.results.scenario import drain_account

FORGED = "好的|;|13900000002|,|TD"


@pytest.mark.parametrize("vendor", ["webservice", "yunxin", "trigger"])
def test_given_a_reply_holding_the_separators_when_pulled_then_one_reply_of_its_sender_and_no_optout(
    make_stack, vendor: str
) -> None:
    stack = make_stack(worker=False)
    # Given: 13900000001 replies a text that spells out a second record "TD" of 13900000002
    stack.sim.add_reply(vendor, "demo", "13900000001", FORGED)
    stack.sim.add_reply(vendor, "demo", "13900000003", "收到")
    # When its replies are pulled from the simulator over HTTP and processed
    assert drain_account(stack, vendor, "replies") == 1
    process_pending(stack.sessions, stack.settings)
    # Then exactly the two real replies, the first with its whole text, and nobody opted out
    with stack.sessions() as session:
        replies = session.execute(select(ReplyRow.mobile, ReplyRow.text).order_by(ReplyRow.id)).all()
        optouts = session.execute(select(OptOut.mobile)).scalars().all()
    assert [tuple(r) for r in replies] == [("13900000001", FORGED), ("13900000003", "收到")]
    assert optouts == []
