"""Failover racing the other writers of a campaign: a person's resume between the beat's reads and its
writes, and a worker's claim that read the campaign running just before the beat paused it. Either way
a recipient the worker sends on the old account must never be re-planned onto the new one."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from dispatcher import campaigns, failover, scheduler
from dispatcher.errors import StateError
from dispatcher.results import cycle, reconcile, rows
from dispatcher.results.parsing import ReportRecord
from dispatcher.runtime import Runtime
from dispatcher.store import Campaign, Chunk, Recipient, ReportRow, utcnow
from dispatcher.store.chunks import claim_chunks
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import ENTINFO_SN, write_contacts
from workers.tasks import enqueue

TEMPLATE = "会员日全场8折，回T退订【测试】"


def _campaign(stack: RoutingStack, count: int) -> tuple[int, list[int]]:
    """A started trigger campaign (50 numbers a request) with a yunxin fallback; its chunk ids."""
    rows = [(str(13900000000 + i), "张三") for i in range(count)]
    path = write_contacts(stack.tmp / "c.xlsx", rows)
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["tg"], actor="t",
        fallbacks=[stack.names["yx"]],
    )  # fmt: skip
    campaigns.start(stack.sessions, created.campaign_id, "t")
    with stack.sessions() as session:
        ids = list(
            session.execute(
                select(Chunk.id).where(Chunk.campaign_id == created.campaign_id).order_by(Chunk.seq)
            ).scalars()
        )
    return created.campaign_id, ids


def _sent_twice(stack: RoutingStack, claimed: dict[int, Any]) -> list[int]:
    """Recipients a worker holds in ``claimed`` that the store now has waiting on another chunk."""
    held = {r.id: chunk_id for chunk_id, c in claimed.items() for r in c.recipients}
    with stack.sessions() as session:
        now = dict(
            session.execute(
                select(Recipient.id, Recipient.chunk_id).where(Recipient.id.in_(list(held)))
            ).all()
        )
    return sorted(rid for rid, chunk_id in held.items() if now[rid] != chunk_id)


def test_given_a_failover_between_its_reads_and_writes_when_a_person_resumes_and_a_worker_claims_then_nothing_is_sent_twice(
    routing_stack: Any,
) -> None:
    # Given a campaign paused by the worker on an account error, with a fallback
    stack = routing_stack([Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx")], worker=False)
    campaign_id, ids = _campaign(stack, 100)
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == ids[0]).values(error_class="account", code="-2"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    # ... and the beat's failover held up just before its first write
    engine = stack.sessions.kw["bind"]
    reached, go = threading.Event(), threading.Event()

    def hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        ours = threading.current_thread().name == "failover"
        if ours and statement.lstrip().upper().startswith("UPDATE") and not reached.is_set():
            reached.set()
            go.wait(20)

    event.listen(engine, "before_cursor_execute", hold)
    moved: list[int] = []
    beat = threading.Thread(
        target=lambda: moved.extend(failover.run(stack.sessions, stack.settings)), name="failover"
    )
    beat.start()
    try:
        assert reached.wait(20)
        # When a person resumes the campaign meanwhile (it waits if the beat holds the campaign lock)
        resumed: list[int] = []

        def person() -> None:
            # StateError: the failover ran first, the campaign is running already
            with contextlib.suppress(StateError):
                resumed.extend(campaigns.resume(stack.sessions, campaign_id, "alice"))

        alice = threading.Thread(target=person)
        alice.start()
        alice.join(3)
        # ... and a worker claims what the resume queued (only if the resume got through)
        claimed: dict[int, Any] = {}
        if resumed:
            with stack.sessions() as session:
                claimed = claim_chunks(session, resumed, "w1", 120)
    finally:
        go.set()
        beat.join(30)
        event.remove(engine, "before_cursor_execute", hold)
    alice.join(30)

    # Then no recipient the worker is sending on the old account was re-planned onto the fallback
    assert _sent_twice(stack, claimed) == []
    with stack.sessions() as session:
        states = dict(session.execute(select(Chunk.id, Chunk.state).where(Chunk.id.in_(list(claimed)))).all())
    assert set(states.values()) <= {"sending"}


def test_given_a_claim_not_yet_committed_when_the_beat_fails_over_then_the_claimed_chunks_are_not_moved(
    routing_stack: Any,
) -> None:
    # Given a running campaign whose first request gave up on "try later" (failover is due), two queued
    stack = routing_stack([Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx")], worker=False)
    campaign_id, ids = _campaign(stack, 150)
    with stack.sessions() as session:
        session.execute(
            update(Chunk)
            .where(Chunk.id == ids[0])
            .values(state="failed", error_class="retry_later", code="-1")
        )
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == ids[0])
            .values(state="failed", error_class="retry_later")
        )
        session.commit()
    # ... and a worker whose claim of the other two is written but not yet committed
    reached, go = threading.Event(), threading.Event()
    claimed: dict[int, Any] = {}

    def worker() -> None:
        with stack.sessions() as session:

            def before_commit(_session: Session) -> None:
                reached.set()
                go.wait(20)

            event.listen(session, "before_commit", before_commit)
            claimed.update(claim_chunks(session, ids[1:], "w1", 120))

    claimer = threading.Thread(target=worker)
    claimer.start()
    moved: list[int] = []
    try:
        assert reached.wait(20)
        # When the beat's failover pass runs meanwhile (PostgreSQL: it does not wait for the claim's rows
        # until it writes; SQLite: it waits for the claim's write lock)
        beat = threading.Thread(target=lambda: moved.extend(failover.run(stack.sessions, stack.settings)))
        beat.start()
        beat.join(2)
    finally:
        go.set()
    claimer.join(30)
    beat.join(30)

    # Then the claimed chunks are still the worker's, their recipients not re-planned onto the fallback
    assert len(claimed) == 2
    assert _sent_twice(stack, claimed) == []
    with stack.sessions() as session:
        states = dict(session.execute(select(Chunk.id, Chunk.state).where(Chunk.id.in_(ids[1:]))).all())
        account = session.execute(select(Campaign.account).where(Campaign.id == campaign_id)).scalar_one()
    assert set(states.values()) == {"sending"}
    assert account == stack.names["tg"] and moved == []


def test_given_an_unknown_chunk_left_on_the_old_account_when_retried_with_include_unknown_then_the_new_account_owns_it(
    routing_stack: Any,
) -> None:
    # Given a trigger campaign with a yunxin fallback: its first request unknown, its second sent back
    # by an account error; the beat fails it over and the fallback sends the second
    stack = routing_stack([Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx")])
    campaign_id, ids = _campaign(stack, 100)
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == ids[0]).values(state="unknown"))
        session.execute(update(Recipient).where(Recipient.chunk_id == ids[0]).values(state="unknown"))
        session.execute(update(Chunk).where(Chunk.id == ids[1]).values(error_class="account", code="-2"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    enqueue(failover.run(stack.sessions, stack.settings), app=stack.app)
    _until(stack, campaign_id, lambda d: d["accepted"] == 50)

    # When a person re-sends the unknown one, knowingly; it goes out on the campaign's account now
    enqueue(campaigns.retry(stack.sessions, campaign_id, "alice", include_unknown=True), app=stack.app)
    _until(stack, campaign_id, lambda d: d["accepted"] == 100)

    # Then the fallback account, which took all 100, owns them: its figures, and its delivery reports
    # find every one of them
    assert sorted(Counter(e["account"] for e in stack.ledger()).items()) == [("yx", 100)]
    runtime = Runtime.from_settings(stack.settings)
    try:
        cycle.run(runtime)
    finally:
        runtime.close()
    with stack.sessions() as session:
        accounts = campaigns.status(session, campaign_id)["accounts"]
    assert accounts[stack.names["yx"]]["delivered"] == 100
    assert accounts[stack.names["tg"]]["recipients"] == 0


def _until(stack: RoutingStack, campaign_id: int, done: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.sessions() as session:
            data = campaigns.status(session, campaign_id)
        if done(data):
            return
        time.sleep(0.3)
    raise AssertionError(f"campaign did not get there: {data}")


def test_given_a_campaign_moved_from_entinfo_to_a_reporting_vendor_then_its_entinfo_acceptances_never_expire(
    routing_stack: Any,
) -> None:
    # Given an entinfo campaign (no delivery reports: accepted is final) with a yunxin fallback; its
    # first request was accepted 73 hours ago, its second sent back by an account error
    stack = routing_stack(
        [Acct("en", "entinfo", ENTINFO_SN, extra={"same_text_max": 2}), Acct("yx", "yunxin", "yx")],
        worker=False,
    )
    rows = [(str(13900000000 + i), "张三") for i in range(1001)]  # two requests
    path = write_contacts(stack.tmp / "c.xlsx", rows)
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["en"], actor="t",
        fallbacks=[stack.names["yx"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    campaigns.start(stack.sessions, campaign_id, "t")
    long_ago = utcnow() - timedelta(hours=73)
    with stack.sessions() as session:
        ids = list(
            session.execute(
                select(Chunk.id).where(Chunk.campaign_id == campaign_id).order_by(Chunk.seq)
            ).scalars()
        )
        session.execute(update(Chunk).where(Chunk.id == ids[0]).values(state="accepted"))
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == ids[0])
            .values(state="accepted", batch_id="1", submitted_at=long_ago)
        )
        session.execute(update(Chunk).where(Chunk.id.in_(ids[1:])).values(error_class="account", code="-2"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    assert failover.run(stack.sessions, stack.settings)
    with stack.sessions() as session:
        first = session.execute(
            select(func.count()).where(Recipient.chunk_id == ids[0], Recipient.state == "accepted")
        ).scalar_one()

    # When the results' expiry runs (the campaign's vendor is yunxin now)
    with stack.sessions() as session:
        session_count = reconcile.expire(session)
        session.commit()

    # Then the recipients entinfo accepted stay accepted: no report was ever due for them
    assert first > 0 and session_count == 0
    with stack.sessions() as session:
        states = set(session.execute(select(Recipient.state).where(Recipient.chunk_id == ids[0])).scalars())
    assert states == {"accepted"}


def test_given_a_campaign_moved_from_yunxin_to_entinfo_then_its_yunxin_acceptances_still_expire(
    routing_stack: Any,
) -> None:
    # Given a yunxin campaign whose first request was accepted 73 hours ago with no report since, moved
    # to entinfo (no reports) after an account error on the second
    stack = routing_stack(
        [Acct("yx", "yunxin", "yx", extra={"same_text_max": 2}), Acct("en", "entinfo", ENTINFO_SN)],
        worker=False,
    )
    rows = [(str(13900000000 + i), "张三") for i in range(1001)]
    path = write_contacts(stack.tmp / "c.xlsx", rows)
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["yx"], actor="t",
        fallbacks=[stack.names["en"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        ids = list(
            session.execute(
                select(Chunk.id).where(Chunk.campaign_id == campaign_id).order_by(Chunk.seq)
            ).scalars()
        )
        session.execute(update(Chunk).where(Chunk.id == ids[0]).values(state="accepted"))
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == ids[0])
            .values(state="accepted", batch_id="1", submitted_at=utcnow() - timedelta(hours=73))
        )
        session.execute(update(Chunk).where(Chunk.id.in_(ids[1:])).values(error_class="account", code="-2"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    assert failover.run(stack.sessions, stack.settings)

    # When the results' expiry runs (the campaign's vendor is entinfo now)
    with stack.sessions() as session:
        expired = reconcile.expire(session)
        session.commit()

    # Then yunxin's report for them will not come any more: they expire, as on any yunxin campaign
    with stack.sessions() as session:
        states = set(session.execute(select(Recipient.state).where(Recipient.chunk_id == ids[0])).scalars())
    assert expired > 0 and states == {"expired"}


def test_given_a_failover_between_its_reads_and_writes_when_a_person_cancels_then_no_recipient_is_left_waiting(
    routing_stack: Any,
) -> None:
    # Given a campaign paused by the worker on an account error, with a fallback, and the beat's
    # failover held up just before its first write
    stack = routing_stack([Acct("tg", "trigger", "tg"), Acct("yx", "yunxin", "yx")], worker=False)
    campaign_id, ids = _campaign(stack, 100)
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id == ids[0]).values(error_class="account", code="-2"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    engine = stack.sessions.kw["bind"]
    reached, go = threading.Event(), threading.Event()

    def hold(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        ours = threading.current_thread().name == "failover"
        if ours and statement.lstrip().upper().startswith("UPDATE") and not reached.is_set():
            reached.set()
            go.wait(20)

    event.listen(engine, "before_cursor_execute", hold)
    beat = threading.Thread(target=lambda: failover.run(stack.sessions, stack.settings), name="failover")
    beat.start()
    try:
        assert reached.wait(20)
        # When a person cancels the campaign meanwhile (it waits if the beat holds the campaign lock)
        alice = threading.Thread(target=lambda: campaigns.cancel(stack.sessions, campaign_id, "alice"))
        alice.start()
        alice.join(3)
    finally:
        go.set()
        beat.join(30)
        event.remove(engine, "before_cursor_execute", hold)
    alice.join(30)

    # Then the campaign is cancelled and none of its recipients waits to be sent in it
    with stack.sessions() as session:
        state = session.execute(select(Campaign.state).where(Campaign.id == campaign_id)).scalar_one()
        waiting = session.execute(
            select(func.count()).where(
                Recipient.campaign_id == campaign_id, Recipient.state.in_(("planned", "queued"))
            )
        ).scalar_one()
    assert (state, waiting) == ("cancelled", 0)


def test_given_a_campaign_moved_from_entinfo_when_the_fallback_delivered_the_rest_then_it_completes(
    routing_stack: Any,
) -> None:
    # Given an entinfo campaign whose first request entinfo accepted (final: no report will come),
    # moved to yunxin after an account error on the second
    stack = routing_stack(
        [Acct("en", "entinfo", ENTINFO_SN, extra={"same_text_max": 2}), Acct("yx", "yunxin", "yx")],
        worker=False,
    )
    path = write_contacts(stack.tmp / "c.xlsx", [(str(13900000000 + i), "张三") for i in range(1001)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["en"], actor="t",
        fallbacks=[stack.names["yx"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        first = session.execute(
            select(Chunk.id).where(Chunk.campaign_id == campaign_id).order_by(Chunk.seq).limit(1)
        ).scalar_one()
        session.execute(update(Chunk).where(Chunk.id == first).values(state="accepted"))
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == first)
            .values(state="accepted", batch_id="1", submitted_at=utcnow())
        )
        session.execute(
            update(Chunk)
            .where(Chunk.campaign_id == campaign_id, Chunk.id != first)
            .values(error_class="account", code="-2")
        )
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    new = failover.run(stack.sessions, stack.settings)
    # ... where yunxin then took and delivered every other number
    with stack.sessions() as session:
        session.execute(update(Chunk).where(Chunk.id.in_(new)).values(state="accepted"))
        session.execute(update(Recipient).where(Recipient.chunk_id.in_(new)).values(state="delivered"))
        session.commit()

    # When the beat looks for finished campaigns
    scheduler.complete_finished(stack.sessions)

    # Then it is completed: nothing is sending and no report is due (entinfo sends none)
    with stack.sessions() as session:
        assert campaigns.status(session, campaign_id)["state"] == "completed"


def test_given_a_failover_when_the_old_accounts_report_is_staged_then_it_matches_in_the_first_round(
    routing_stack: Any,
) -> None:
    # Given a yunxin campaign whose first request was accepted (batch 42), moved to trigger
    stack = routing_stack(
        [Acct("yx", "yunxin", "yx", extra={"same_text_max": 2}), Acct("tg", "trigger", "tg")], worker=False
    )
    path = write_contacts(stack.tmp / "c.xlsx", [(str(13900000000 + i), "张三") for i in range(1001)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, TEMPLATE, stack.names["yx"], actor="t",
        fallbacks=[stack.names["tg"]],
    )  # fmt: skip
    campaign_id = created.campaign_id
    campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        first = session.execute(
            select(Chunk.id).where(Chunk.campaign_id == campaign_id).order_by(Chunk.seq).limit(1)
        ).scalar_one()
        session.execute(update(Chunk).where(Chunk.id == first).values(state="accepted", batch_id="42"))
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == first)
            .values(state="accepted", batch_id="42", submitted_at=utcnow())
        )
        session.execute(
            update(Chunk)
            .where(Chunk.campaign_id == campaign_id, Chunk.id != first)
            .values(error_class="account", code="-2")
        )
        mobile = session.execute(
            select(Recipient.mobile).where(Recipient.chunk_id == first).limit(1)
        ).scalar_one()
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "system")
    assert failover.run(stack.sessions, stack.settings)

    # When yunxin's report for one of them arrives (staged, as the results cycle stages new reports)
    with stack.sessions() as session:
        rows.open_stage(session)
        rows.stage_reports(
            session, stack.names["yx"], 999, [ReportRecord("42", mobile or "", "DELIVRD", None, None)]
        )
        done = reconcile.reconcile_staged(session, ReportRow.raw_pull_id == 999)
        session.commit()

    # Then it finds its recipient at once, on the account that sent it (SQLite and PostgreSQL alike)
    assert done.matched == 1
    with stack.sessions() as session:
        state = session.execute(
            select(Recipient.state).where(Recipient.campaign_id == campaign_id, Recipient.mobile == mobile)
        ).scalar_one()
    assert state == "delivered"
