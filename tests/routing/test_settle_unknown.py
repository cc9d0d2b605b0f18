"""Unknowns that settle themselves (``settle_unknown_after``, opt-in per account): an unknown request
nothing proves taken is sent again once by the beat, when the account's reports would have proven it
(reports came since for its later requests, none for its numbers); entinfo's "already sent" makes the
re-send safe by itself. Never when a report of one of its numbers came, nor while the report path is
silent, nor when the setting is off. Real simulator, real store."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from dispatcher import campaigns, i18n, unknowns
from dispatcher.dispatch import AccountRuntime, build_request, load_group, send_group
from dispatcher.results import campaign_export, cycle
from dispatcher.runtime import Runtime
from dispatcher.store import (
    AuditEntry,
    Chunk,
    RawPull,
    Recipient,
    ReportRow,
    account_errors,
    sweep_expired_leases,
    utcnow,
)
from dispatcher.store.chunks import claim_chunks
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import ENTINFO_SN, write_contacts

TEXT = "会员日全场8折，回T退订【测试】"
N, M = "13900000007", "13900000008"
AFTER = {"settle_unknown_after": '"30m"'}
AFTER_EN = {"settle_unknown_after": '"30m"', "duplicate_window": '"24h"'}


def _runtime(stack: RoutingStack, name: str) -> AccountRuntime:
    account = stack.settings.account(stack.names[name])
    return AccountRuntime(account, vendor_module(account.vendor), Transport([account.base_url]), None)


def _started(stack: RoutingStack, name: str, mobiles: list[str]) -> tuple[int, int]:
    path = write_contacts(stack.tmp / f"c{utcnow().timestamp()}.xlsx", [(m, "张三") for m in mobiles])
    created = campaigns.create(stack.sessions, stack.settings, path, TEXT, stack.names[name], actor="t")
    (chunk_id,) = campaigns.start(stack.sessions, created.campaign_id, "t")
    return created.campaign_id, chunk_id


def _unknown(stack: RoutingStack, name: str, mobiles: list[str], *, sent: bool) -> tuple[int, int]:
    """A campaign whose one request was claimed, sent to the vendor (``sent``) or not, and whose
    worker died: unknown, two hours ago."""
    campaign_id, chunk_id = _started(stack, name, mobiles)
    with stack.sessions() as session:
        claimed = claim_chunks(session, [chunk_id], "dead-worker", -1)[chunk_id]
    if sent:
        runtime = _runtime(stack, name)
        (row,) = load_group(stack.sessions, [chunk_id])
        runtime.transport.send(build_request(runtime, row, claimed.pairs))
    with stack.sessions() as session:
        assert sweep_expired_leases(session) == [chunk_id]
    return campaign_id, chunk_id


def _two_hours_ago(stack: RoutingStack, *chunk_ids: int) -> None:
    _minutes_ago(stack, 120, *chunk_ids)


def _minutes_ago(stack: RoutingStack, minutes: float, *chunk_ids: int) -> None:
    with stack.sessions() as session:
        long_ago = utcnow() - timedelta(minutes=minutes)
        session.execute(update(Chunk).where(Chunk.id.in_(chunk_ids)).values(lease_until=long_ago))
        session.commit()


def _marked_then_pulled(stack: RoutingStack) -> list[int]:
    """The beat's two phases: it marks what settled itself, a complete report pull begins later,
    then it sends the marked again; returns what the second phase queued."""
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    _reports_arrive(stack)
    return unknowns.resend_settled(stack.sessions, stack.settings)


def _reports_arrive(stack: RoutingStack) -> None:
    runtime = Runtime.from_settings(stack.settings)
    try:
        cycle.run(runtime)
    finally:
        runtime.close()


def _report_path_works(stack: RoutingStack, name: str) -> None:
    """Another campaign of the account sent M since, and its report came."""
    campaign_id, chunk_id = _started(stack, name, [M])
    send_group(stack.sessions, _runtime(stack, name), load_group(stack.sessions, [chunk_id]), "w1")
    _reports_arrive(stack)
    with stack.sessions() as session:
        states = session.execute(
            select(Recipient.state).where(Recipient.campaign_id == campaign_id)
        ).scalars()
        assert list(states) == ["delivered"]


def _state(stack: RoutingStack, campaign_id: int) -> str:
    with stack.sessions() as session:
        query = select(Recipient.state).where(Recipient.campaign_id == campaign_id, Recipient.mobile == N)
        return str(session.execute(query).scalar_one())


def test_given_an_old_unknown_request_with_no_report_while_later_ones_were_reported_then_it_is_sent_again_once(
    routing_stack: Any,
) -> None:
    # Given a yunxin account that settles unknowns after 30 minutes, and a request for N that never
    # reached it (its worker died after the claim): unknown
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    campaign_id, chunk_id = _unknown(stack, "yx", [N], sent=False)
    _report_path_works(stack, "yx")
    # ... not yet 30 minutes old: it waits
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []

    # When it is two hours old, and the account's reports came for what it sent since: marked first,
    # sent again only once a report pull that began after the mark went through
    _two_hours_ago(stack, chunk_id)
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    _reports_arrive(stack)
    queued = unknowns.resend_settled(stack.sessions, stack.settings)

    # Then it is sent again, once, audited, and the export says so
    assert queued == [chunk_id]
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    send_group(stack.sessions, _runtime(stack, "yx"), load_group(stack.sessions, queued), "w1")
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter([M, N])
    assert _state(stack, campaign_id) == "accepted"
    with stack.sessions() as session:
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.campaign_id == campaign_id)
        ).scalars()
        assert "chunk.unknown_resent" in list(actions)
        with i18n.use("en"):
            (row,) = list(campaign_export.rows(session, campaign_id))
    assert "sent again by itself" in str(row[10])


def test_given_a_report_of_its_number_that_settles_nothing_then_neither_unknown_request_is_sent_again(
    routing_stack: Any,
) -> None:
    # Given two campaigns' unknown requests for N on one account, the first taken by the vendor, the
    # second never sent: the vendor's one report for N cannot say whose it is
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    first, first_chunk = _unknown(stack, "yx", [N], sent=True)
    second, second_chunk = _unknown(stack, "yx", [N], sent=False)
    _report_path_works(stack, "yx")
    _two_hours_ago(stack, first_chunk, second_chunk)
    assert (_state(stack, first), _state(stack, second)) == ("unknown", "unknown")

    # When the beat looks for unknowns that settled themselves
    # Then neither is sent again: a report of N came since they went out
    assert _marked_then_pulled(stack) == []
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter([M, N])


def test_given_no_report_since_then_an_old_unknown_request_waits_for_a_person(routing_stack: Any) -> None:
    # Given an old unknown request, and an account from which no report came since (its report path
    # may be down: a report of it may be on the way)
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    _, chunk_id = _unknown(stack, "yx", [N], sent=False)
    _two_hours_ago(stack, chunk_id)

    # Then it is not sent again by itself
    assert _marked_then_pulled(stack) == []


def test_given_the_setting_off_then_an_old_unknown_request_waits_for_a_person(routing_stack: Any) -> None:
    stack = routing_stack([Acct("yx", "yunxin", "yx")], worker=False)
    _, chunk_id = _unknown(stack, "yx", [N], sent=False)
    _report_path_works(stack, "yx")
    _two_hours_ago(stack, chunk_id)

    assert _marked_then_pulled(stack) == []


def test_given_an_entinfo_request_it_took_then_the_re_send_is_refused_as_already_sent_and_settles_it(
    routing_stack: Any,
) -> None:
    # Given an entinfo account (no reports) that settles unknowns after 30 minutes, and a request for
    # N that it took, its answer lost (the worker died): unknown, two hours ago
    stack = routing_stack([Acct("en", "entinfo", ENTINFO_SN, extra=AFTER_EN)], worker=False)
    campaign_id, chunk_id = _unknown(stack, "en", [N], sent=True)
    _two_hours_ago(stack, chunk_id)

    # When the beat sends it again by itself
    queued = unknowns.resend_settled(stack.sessions, stack.settings)
    assert queued == [chunk_id]
    (result,) = send_group(stack.sessions, _runtime(stack, "en"), load_group(stack.sessions, queued), "w1")

    # Then entinfo refuses it ("already sent"), which proves the first was taken: accepted, sent once
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter([N])
    assert (result.state, _state(stack, campaign_id)) == ("accepted", "accepted")


def test_given_a_body_of_the_accounts_reports_not_parsed_yet_then_an_old_unknown_request_waits(
    routing_stack: Any,
) -> None:
    # Given an old unknown request of an account whose report path works, and a body of its reports
    # in the inbox not parsed yet (it may hold the request's report)
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    _, chunk_id = _unknown(stack, "yx", [N], sent=False)
    _report_path_works(stack, "yx")
    _two_hours_ago(stack, chunk_id)
    with stack.sessions() as session:
        session.add(RawPull(account=stack.names["yx"], kind="reports", source="pull", body="0"))
        session.commit()

    # Then it is not even marked, until the body is parsed
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    with stack.sessions() as session:
        session.execute(update(RawPull).values(parsed_at=utcnow()))
        session.commit()
    assert _marked_then_pulled(stack) == [chunk_id]


def test_given_a_claim_whose_send_deadline_passed_before_its_request_left_then_it_is_not_sent(
    routing_stack: Any,
) -> None:
    # Given a worker whose claim's lease is over before its request leaves (a stalled worker: the
    # sweep may call it unknown and the beat send it again meanwhile)
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    campaign_id, chunk_id = _started(stack, "yx", [N])
    runtime = _runtime(stack, "yx")
    runtime.lease_seconds = 0.0

    # When it comes to send
    (result,) = send_group(stack.sessions, runtime, load_group(stack.sessions, [chunk_id]), "w1")

    # Then its copy is not sent: the chunk waits in the queue, nothing at the vendor
    assert stack.ledger() == []
    assert result.state == "queued"
    assert _state(stack, campaign_id) == "queued"


def test_given_a_report_of_its_number_stored_after_the_decision_then_the_re_send_does_not_happen(
    routing_stack: Any,
) -> None:
    # Given an old unknown request that settled itself (marked, a report pull since)
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    campaign_id, chunk_id = _unknown(stack, "yx", [N], sent=False)
    _report_path_works(stack, "yx")
    _two_hours_ago(stack, chunk_id)
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    _reports_arrive(stack)
    # ... and a report of N stored between the beat's decision and its re-send
    with stack.sessions() as session:
        session.add(ReportRow(account=stack.names["yx"], mobile=N, status="DELIVRD", reported_at=utcnow()))
        session.commit()

    # When the re-send runs: it reads the evidence again under the campaign lock, and does nothing
    assert not unknowns._resend(
        stack.sessions, stack.settings, chunk_id, campaign_id, stack.names["yx"], 1800
    )
    assert _state(stack, campaign_id) == "unknown"


def test_given_an_account_error_since_the_mark_then_the_unknown_request_is_not_sent_again(
    routing_stack: Any,
) -> None:
    # Given an old unknown request marked, a complete report pull since, and then a refused pull
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    _, chunk_id = _unknown(stack, "yx", [N], sent=False)
    _report_path_works(stack, "yx")
    _two_hours_ago(stack, chunk_id)
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    _reports_arrive(stack)
    with stack.sessions() as session:
        account_errors.record(
            session, stack.settings.account(stack.names["yx"]), "reports", -1, "帐号错误", "bad"
        )
        session.commit()

    # Then it waits: the account's report path is not known to work now
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []


def test_given_a_bigger_request_then_it_waits_longer_before_it_settles_itself(routing_stack: Any) -> None:
    # Given two unknown requests 40 minutes old (the account settles after 30): one of 1 number, one of 50
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    _, small = _unknown(stack, "yx", [N], sent=False)
    _, big = _unknown(stack, "yx", [f"1380000{i:04d}" for i in range(50)], sent=False)
    _report_path_works(stack, "yx")
    _minutes_ago(stack, 40, small, big)

    # Then only the small one settles itself; the big one waits longer (twice as long: an hour)
    assert _marked_then_pulled(stack) == [small]
    _minutes_ago(stack, 70, big)
    assert _marked_then_pulled(stack) == [big]


def test_given_an_entinfo_request_older_than_its_duplicate_window_then_it_is_not_sent_again(
    routing_stack: Any,
) -> None:
    # Given an entinfo account whose duplicate window (1 hour) no longer holds a request of two hours ago
    extra = {"settle_unknown_after": '"30m"', "duplicate_window": '"1h"'}
    stack = routing_stack([Acct("en", "entinfo", ENTINFO_SN, extra=extra)], worker=False)
    _, chunk_id = _unknown(stack, "en", [N], sent=True)
    _two_hours_ago(stack, chunk_id)

    # Then it is not sent again: a "-20" could no longer prove anything
    assert unknowns.resend_settled(stack.sessions, stack.settings) == []
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter([N])


def test_given_a_re_sent_unknown_request_that_both_requests_reached_then_the_recipient_is_flagged_sent_twice(
    routing_stack: Any,
) -> None:
    # Given an unknown request the vendor did take (its answer lost), sent again from unknown before
    # its report came, and taken again
    stack = routing_stack([Acct("yx", "yunxin", "yx", extra=AFTER)], worker=False)
    campaign_id, chunk_id = _unknown(stack, "yx", [N], sent=True)
    assert campaigns.retry(stack.sessions, campaign_id, "t", include_unknown=True) == [chunk_id]
    send_group(stack.sessions, _runtime(stack, "yx"), load_group(stack.sessions, [chunk_id]), "w1")
    assert Counter(e["mobile"] for e in stack.ledger()) == Counter([N, N])

    # When the reports of both requests arrive
    _reports_arrive(stack)

    # Then the recipient says it got the message twice (status and export), and no report is an orphan
    with stack.sessions() as session:
        twice = session.execute(select(Recipient.sent_twice).where(Recipient.campaign_id == campaign_id))
        assert list(twice.scalars()) == [True]
        orphans = session.execute(select(ReportRow.id).where(ReportRow.recipient_id.is_(None)))
        assert list(orphans.scalars()) == []
        assert campaigns.status(session, campaign_id)["sent_twice"] == 1
        with i18n.use("en"):
            (row,) = list(campaign_export.rows(session, campaign_id))
    assert "sent twice" in str(row[10])
