"""What an outside party writes (a reply's text, a pushed field, a report's status) cannot corrupt another
record nor stop the inbox: a text holding the vendor's separators stays one reply of its sender, and a
body the store cannot hold is set aside with its error while the rest goes on."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dispatcher import campaigns
from dispatcher.cli import app
from dispatcher.results import parsing
from dispatcher.results.inbox import process_pending, record_raw
from dispatcher.store import Chunk, OptOut, RawPull, ReplyRow
from dispatcher.vendors.wire import CHINA_TZ
from tests.helpers import sent_before
from tests.results.scenario import accepted_campaign, drain_account, states
from tests.stack import PG_URL

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


def _inbox(stack, *bodies: tuple[str, str, str, str]) -> None:
    with stack.sessions() as session:
        for vendor, kind, source, body in bodies:
            record_raw(session, stack.accounts[vendor], kind, source, body)


LONG_NUMBER = "1" * 30
LONG_STATUS = "UNDELIVRD:" + "X" * 40


def test_given_bodies_the_store_cannot_hold_when_processed_then_they_are_set_aside_and_the_rest_goes_on(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = accepted_campaign(stack, 1)  # webservice, 13900000000, batch 77700030
    # (a reply opts out only a number its account sent to)
    sent_before(stack.sessions, stack.accounts["trigger"], "trigger", ["13900000007"])
    sent_before(stack.sessions, stack.accounts["webservice"], "webservice", ["13900000005"])
    pushed_reply = {"type": 3, "list": [
        {"dest_phone": LONG_NUMBER, "resp_content": "TD", "resp_time": 1},
        {"dest_phone": "13900000007", "resp_content": "TD", "resp_time": 1},
    ]}  # fmt: skip
    # Given, oldest first: a reply "mobile" of 30 characters, a trigger report status longer than its
    # column, a webservice reply list with a 30-digit number, a push that is no JSON; then the bodies
    # that must still be applied: a "TD" and a report of the campaign's number
    _inbox(
        stack,
        ("trigger", "replies", "push", json.dumps(pushed_reply)),
        (
            "trigger",
            "reports",
            "pull",
            f"2314357620085030624,13900000000,2014/06/10 15:34:11,{LONG_STATUS},c1|",
        ),
        (
            "webservice",
            "replies",
            "push",
            urlencode({"account": "demo", "GetMo": f"{LONG_NUMBER}|,|TD|,|2026-01-02 10:00:00|;|"}),
        ),
        ("trigger", "replies", "push", '{"type": 3, "list": ['),
        ("webservice", "replies", "pull", "13900000005|,|TD|,|2026-01-02 10:00:00|;|"),
        ("webservice", "reports", "pull", "77700030,13900000000,2026/01/02 10:00:00,DELIVRD|"),
    )

    # When the inbox is processed (on PostgreSQL this raised a data error, run after run)
    stats = process_pending(stack.sessions, stack.settings)

    # Then every body was taken; the good records of every body are applied ...
    assert stats.bodies == 6 and stats.errors == 4
    with stack.sessions() as session:
        assert session.execute(select(RawPull.id).where(RawPull.parsed_at.is_(None))).all() == []
        optouts = set(session.execute(select(OptOut.mobile)).scalars())
        stored = session.execute(select(ReplyRow.mobile)).scalars().all()
    assert optouts == {"13900000005", "13900000007"} and LONG_NUMBER not in stored
    assert states(stack, campaign_id) == {"13900000000": ("delivered", "DELIVRD")}
    # ... and what could not be held is listed with its error, and counted in the campaign's status
    result = CliRunner().invoke(app, ["reports", "set-aside", "--json"])
    assert result.exit_code == 0, result.output
    listed = {row["id"]: row["error"] for row in json.loads(result.stdout)}
    assert len(listed) == 4
    assert all(error for error in listed.values())
    assert any(LONG_STATUS in error and "status" in error for error in listed.values())
    assert sum(LONG_NUMBER in error and "mobile" in error for error in listed.values()) == 1
    with stack.sessions() as session:
        assert campaigns.status(session, campaign_id)["set_aside"] == 1  # its account's one


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL refuses what SQLite stores")
def test_given_a_value_the_checks_miss_when_the_store_refuses_it_then_only_its_body_is_set_aside(
    make_stack, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL refuses what SQLite stores")
    stack = make_stack(worker=False)
    # Given the parse-time checks let an over-long number through (as a new field might one day)
    monkeypatch.setattr(parsing, "_reply_problem", lambda record: None)
    sent_before(stack.sessions, stack.accounts["webservice"], "webservice", ["13900000004", "13900000005"])
    _inbox(
        stack,
        ("webservice", "replies", "pull", "13900000004|,|TD|,|2026-01-02 10:00:00|;|"),
        (
            "trigger",
            "replies",
            "push",
            json.dumps({"type": 3, "list": [{"dest_phone": LONG_NUMBER, "resp_content": "x"}]}),
        ),
        ("webservice", "replies", "pull", "13900000005|,|TD|,|2026-01-02 10:00:00|;|"),
    )
    # When the batch holding it fails in the store
    stats = process_pending(stack.sessions, stack.settings, connections=2)
    # Then the batch is taken again a body at a time: only that body is set aside, with the store's error
    assert stats.bodies == 3 and stats.errors == 1
    with stack.sessions() as session:
        assert set(session.execute(select(OptOut.mobile)).scalars()) == {"13900000004", "13900000005"}
        [(body, error)] = session.execute(
            select(RawPull.body, RawPull.error).where(RawPull.error.is_not(None))
        )
        assert LONG_NUMBER in body and "DataError" in error
        assert session.execute(select(RawPull.id).where(RawPull.parsed_at.is_(None))).all() == []


def test_given_a_reply_naming_another_campaigns_chunk_then_it_is_tied_only_to_a_campaign_that_sent_to_it(
    make_stack,
) -> None:
    stack = make_stack(worker=False)
    # Given: campaign X sent to 13900000000, campaign Y to 13800000000, both on trigger
    x = accepted_campaign(stack, 1, "7770001", vendor="trigger", first=13900000000)
    y = accepted_campaign(stack, 1, "7770002", vendor="trigger", first=13800000000)
    with stack.sessions() as session:
        y_ref = session.execute(select(Chunk.ref).where(Chunk.campaign_id == y)).scalar_one()
    # When X's recipient, and a number neither campaign sent to, push replies naming Y's chunk
    items = [
        {"dest_phone": "13900000000", "resp_content": "好", "customer_uuid": y_ref},
        {"dest_phone": "13700000000", "resp_content": "好", "customer_uuid": y_ref},
        {"dest_phone": "13800000000", "resp_content": "好", "customer_uuid": y_ref},
    ]
    _inbox(stack, ("trigger", "replies", "push", json.dumps({"type": 3, "list": items})))
    process_pending(stack.sessions, stack.settings)
    # Then each reply is tied to the campaign that sent to its number, or to none
    with stack.sessions() as session:
        tied = {m: c for m, c in session.execute(select(ReplyRow.mobile, ReplyRow.campaign_id))}
    assert tied == {"13900000000": x, "13700000000": None, "13800000000": y}


def test_given_an_opt_out_reply_of_a_number_the_account_never_sent_to_then_it_is_kept_but_opts_nothing_out(
    make_stack,
) -> None:
    # A text spelling out a whole record of the list (a number, a time) cannot always be told from a
    # record: such a "reply" of a stranger must not opt the stranger out of every campaign
    stack = make_stack(worker=False)
    sent_before(stack.sessions, stack.accounts["webservice"], "webservice", ["13900000001"])
    at = _china(timedelta(minutes=-5))  # a time the list may hold: the shape and time let it through
    forged = f"13900000001|,|x|,|{at}|;|13900000002|,|TD|,|{at}|;|"
    _inbox(stack, ("webservice", "replies", "pull", forged))
    process_pending(stack.sessions, stack.settings)
    with stack.sessions() as session:
        assert set(session.execute(select(OptOut.mobile)).scalars()) == set()
        assert "13900000002" in set(session.execute(select(ReplyRow.mobile)).scalars())  # kept, shown
    # And the number the account sent to still opts out by replying
    _inbox(stack, ("webservice", "replies", "pull", "13900000001|,|TD|,|2026-01-02 11:00:00|;|"))
    process_pending(stack.sessions, stack.settings)
    with stack.sessions() as session:
        assert set(session.execute(select(OptOut.mobile)).scalars()) == {"13900000001"}


def _china(offset: timedelta, layout: str = "%Y/%m/%d %H:%M:%S") -> str:
    return (datetime.now(CHINA_TZ) + offset).strftime(layout)


@pytest.mark.parametrize("vendor", ["webservice", "yunxin", "trigger"])
def test_given_a_reply_forging_another_recipients_td_in_another_shape_then_nobody_is_opted_out(
    make_stack, vendor: str
) -> None:
    stack = make_stack(worker=False)
    # Given: one campaign of the account sent to 13900000001 and 13900000002
    sent_before(stack.sessions, stack.accounts[vendor], vendor, ["13900000001", "13900000002"])
    # When 13900000001 replies texts spelling out a record "TD" of 13900000002, each with a time the
    # list cannot hold (days old, or another layout than the gateway's), for any number of trailing
    # fields, with each of the vendors' separators before it
    bad_times = [_china(timedelta(days=-5)), _china(timedelta(), "%Y-%m-%d %H:%M:%S")]
    forged = [
        f"好的{sep}|,|" + "|,|".join([at, *tail]) + "|;|13900000002|,|TD"
        for at in bad_times
        for tail in ([], ["106900000001"], ["106900000001", "c1"], ["c1"])
        for sep in ("", "|;|", "|,|", ";", ",")
    ]
    for text in forged:
        stack.sim.add_reply(vendor, "demo", "13900000001", text)
    # (pulled from the simulator over HTTP)
    drained = drain_account(stack, vendor, "replies")
    assert drained >= 1
    process_pending(stack.sessions, stack.settings)
    # Then each is one reply of its sender with its whole text, and 13900000002 is not opted out
    with stack.sessions() as session:
        replies = session.execute(select(ReplyRow.mobile, ReplyRow.text).order_by(ReplyRow.id)).all()
        optouts = session.execute(select(OptOut.mobile)).scalars().all()
    assert [tuple(r) for r in replies] == [("13900000001", t) for t in forged]
    assert optouts == []
