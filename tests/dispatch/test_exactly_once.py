"""Eight ways to send a number twice or lose one, each closed in the one dispatch pipeline or the store.

Against the simulator (or a loopback gateway that answers what a test needs) over real HTTP, and the
real store; the pipeline is driven the way a worker drives it (``load_group`` + ``send_group``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update

from dispatcher import campaigns, scheduler
from dispatcher.decisions import SendAttempt, interpret
from dispatcher.dispatch import (
    AccountRuntime,
    Next,
    Result,
    build_request,
    load_group,
    record_attempts,
    send_group,
)
from dispatcher.errors import StateError
from dispatcher.results import optout_store, reconcile
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import (
    Attempt,
    Chunk,
    Recipient,
    ReportRow,
    make_engine,
    session_factory,
    sweep_expired_leases,
    utcnow,
)
from dispatcher.store.chunks import claim_chunks
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from tests.dispatch.conftest import Stack, write_contacts
from tests.vendors_tg_en.loopback import closed_port, gateway

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
SAME = "会员日全场8折，回T退订【测试】"  # one text for every number: one same-text request
FIRST = 13900000000


def numbers(count: int, first: int = FIRST) -> list[str]:
    return [str(first + i) for i in range(count)]


def create(stack: Stack, vendor: str, mobiles: list[str], template: str = TEMPLATE) -> int:
    path = write_contacts(stack.tmp / f"c{time.monotonic_ns()}.xlsx", [(m, "张三") for m in mobiles])
    created = campaigns.create(
        stack.sessions, stack.settings, path, template, stack.accounts[vendor], actor="t"
    )
    return created.campaign_id


def runtime_for(
    stack: Stack, vendor: str, base_url: str | None = None, clock: Callable[[], datetime] = utcnow
) -> AccountRuntime:
    account = stack.settings.account(stack.accounts[vendor])
    transport = Transport([base_url or account.base_url], timeout=10)
    return AccountRuntime(account, vendor_module(vendor), transport, None, clock=clock)


def send(stack: Stack, runtime: AccountRuntime, ids: list[int], worker: str = "w1") -> list[Result]:
    return send_group(stack.sessions, runtime, load_group(stack.sessions, ids), worker)


def queued(stack: Stack, campaign_id: int) -> list[int]:
    with stack.sessions() as session:
        query = select(Chunk.id).where(Chunk.campaign_id == campaign_id, Chunk.state == "queued")
        return list(session.execute(query).scalars())


def drive(stack: Stack, runtime: AccountRuntime, campaign_id: int, timeout: float = 60.0) -> None:
    """Send the campaign's queued chunks (splits included) until none is left, as workers would."""
    deadline = time.monotonic() + timeout
    while ids := queued(stack, campaign_id):
        assert time.monotonic() < deadline, "chunks still queued"
        results = send(stack, runtime, ids)
        if all(r.next is Next.LATER for r in results):
            time.sleep(min(r.delay for r in results) + 0.05)


def ledger(stack: Stack) -> Counter[str]:
    return Counter(e["mobile"] for e in stack.sim.ledger()["accepted"])


def recipients(stack: Stack, campaign_id: int) -> dict[str, tuple[str, str | None, str | None]]:
    with stack.sessions() as session:
        rows = session.execute(
            select(Recipient.mobile, Recipient.state, Recipient.error_class, Recipient.vendor_code).where(
                Recipient.campaign_id == campaign_id
            )
        ).all()
    return {m: (s, c, v) for m, s, c, v in rows}


def chunks(stack: Stack, campaign_id: int) -> list[Chunk]:
    with stack.sessions() as session:
        return list(session.scalars(select(Chunk).where(Chunk.campaign_id == campaign_id)))


def sent_then_worker_died(stack: Stack, runtime: AccountRuntime, ids: list[int]) -> list[str]:
    """Claim ``ids``, send their requests to the vendor, and record nothing (the worker died); the
    sweep then makes them ``unknown``. Returns the vendor's answers."""
    with stack.sessions() as session:
        claimed = claim_chunks(session, ids, "dead-worker", -1)  # a lease already over
    answers = [
        runtime.transport.send(build_request(runtime, row, claimed[row.id].pairs)).text
        for row in load_group(stack.sessions, ids)
    ]
    with stack.sessions() as session:
        assert sweep_expired_leases(session) == sorted(ids)
    return answers


@pytest.fixture
def engine_of(database_url: str) -> Iterator[Callable[[], Engine]]:
    engines: list[Engine] = []

    def make() -> Engine:
        engines.append(make_engine(database_url))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


# ---- 1. entinfo -20 -------------------------------------------------------------------------------


def test_given_one_number_already_sent_this_text_when_an_entinfo_batch_is_answered_minus_20_then_only_it_fails(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "entinfo")
    repeated = str(FIRST + 3)
    first = create(stack, "entinfo", [repeated], SAME)
    campaigns.start(stack.sessions, first, "t")
    drive(stack, runtime, first)
    # Given a campaign of six numbers with the same text, one of which already got it
    mobiles = numbers(6)
    campaign_id = create(stack, "entinfo", mobiles, SAME)
    campaigns.start(stack.sessions, campaign_id, "t")

    # When it is sent: the gateway refuses the whole request "-20" for that one number
    drive(stack, runtime, campaign_id)

    # Then the chunk was split like a bad number: only the repeated number failed, as a duplicate
    assert ledger(stack) == Counter(mobiles)
    states = recipients(stack, campaign_id)
    assert states[repeated] == ("failed", "duplicate", "-20")
    assert all(states[m][0] == "accepted" for m in mobiles if m != repeated)
    (last,) = [c for c in chunks(stack, campaign_id) if c.code == "-20" and c.recipient_count == 1]
    assert last.detail is not None and "already has this text for this number" in last.detail


def test_given_an_operator_resending_an_unknown_entinfo_chunk_when_answered_minus_20_then_it_was_accepted(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "entinfo")
    mobiles = numbers(3)
    campaign_id = create(stack, "entinfo", mobiles, SAME)
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    # Given the first attempt reached the vendor and its worker died: unknown
    sent_then_worker_died(stack, runtime, ids)

    # When an operator re-sends unknown chunks
    assert campaigns.retry(stack.sessions, campaign_id, "t", include_unknown=True) == ids
    drive(stack, runtime, campaign_id)

    # Then "-20" proves the first attempt was accepted: nothing went twice, nothing is failed
    assert ledger(stack) == Counter(mobiles)
    assert {s for s, _, _ in recipients(stack, campaign_id).values()} == {"accepted"}


# ---- 3. retry races the results task; a claimed chunk sends only recipients still waiting -------


def test_given_an_unknown_chunk_settled_by_a_report_during_a_retry_then_it_is_not_requeued(
    make_stack: Any, engine_of: Callable[[], Engine]
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    campaign_id = create(stack, "webservice", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    (answer,) = sent_then_worker_died(stack, runtime, ids)
    batch_id = answer.split(">")[1].split("<")[0] if ">" in answer else answer
    engine = engine_of()
    fired: list[bool] = []

    def results_task_settles_it(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Between the retry's look at the chunk and its UPDATE, the vendor's report is reconciled
        if fired or not statement.lstrip().upper().startswith("UPDATE CHUNKS"):
            return
        fired.append(True)
        with stack.sessions() as other:
            report = ReportRow(
                account=stack.accounts["webservice"], batch_id=batch_id, mobile=str(FIRST), status="DELIVRD"
            )
            other.add(report)
            other.flush()
            assert reconcile.reconcile(other, ReportRow.id == report.id).settled_chunks == 1
            other.commit()

    event.listen(engine, "before_cursor_execute", results_task_settles_it)
    # When an operator retries unknown chunks at that moment
    again = campaigns.retry(session_factory(engine), campaign_id, "t", include_unknown=True)

    # Then the settled chunk is not re-queued, and its delivered number gets no second message
    assert fired and again == []
    assert recipients(stack, campaign_id) == {str(FIRST): ("delivered", None, None)}
    send(stack, runtime, ids)
    assert ledger(stack) == Counter([str(FIRST)])


def test_given_a_requeued_chunk_with_a_delivered_number_when_sent_then_only_the_waiting_ones_go(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "trigger")
    mobiles = numbers(3)
    campaign_id = create(stack, "trigger", mobiles, SAME)
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    # Given one number of the (one) batch chunk was already delivered
    with stack.sessions() as session:
        session.execute(update(Recipient).where(Recipient.mobile == mobiles[1]).values(state="delivered"))
        session.commit()

    send(stack, runtime, ids)

    assert ledger(stack) == Counter([mobiles[0], mobiles[2]])
    assert recipients(stack, campaign_id)[mobiles[1]][0] == "delivered"


# ---- 4. two splits in one campaign at once --------------------------------------------------------


def test_given_two_chunks_of_one_campaign_split_at_the_same_moment_then_their_children_do_not_collide(
    make_stack: Any,
) -> None:
    bad = (str(FIRST + 7), str(FIRST + 77))
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0, blacklist=bad), worker=False
    )
    mobiles = numbers(100)
    campaign_id = create(stack, "trigger", mobiles, SAME)  # two batch chunks of 50, one bad number each
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    assert len(ids) == 2
    runtimes = [runtime_for(stack, "trigger"), runtime_for(stack, "trigger")]
    engine = stack.sessions.kw["bind"]
    children = threading.Barrier(2, timeout=2)

    def both_at_the_insert(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Each split waits for the other at its first child's INSERT (or gives up after 2 s if the
        # other cannot get there: then the store serialised them)
        if statement.lstrip().upper().startswith("INSERT INTO CHUNKS"):
            with contextlib.suppress(threading.BrokenBarrierError):
                children.wait()

    start = threading.Barrier(2)

    def worker(n: int) -> list[Result]:
        start.wait(timeout=10)
        return send(stack, runtimes[n], [ids[n]], worker=f"w{n}")

    event.listen(engine, "before_cursor_execute", both_at_the_insert)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(worker, [0, 1])
    finally:
        event.remove(engine, "before_cursor_execute", both_at_the_insert)
    assert [r.next for r in first + second] == [Next.SPLIT, Next.SPLIT]

    drive(stack, runtimes[0], campaign_id)

    assert ledger(stack) == Counter(m for m in mobiles if m not in bad)
    states = recipients(stack, campaign_id)
    assert {m for m, (s, _, _) in states.items() if s == "failed"} == set(bad)
    seqs = [c.seq for c in chunks(stack, campaign_id)]
    assert len(seqs) == len(set(seqs))
    assert {c.state for c in chunks(stack, campaign_id)} <= {"accepted", "failed"}


# ---- 5. cancel while a chunk is in flight ---------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "status", "answer", "headers", "ends"),
    [
        ("webservice", 200, b"-16", {}, "failed"),  # too frequent: would be queued again
        ("webservice", 200, b"-1", {}, "failed"),  # retry later
        ("webservice", 200, b"-3", {}, "failed"),  # account: would pause and re-queue
        ("webservice", 503, b"busy", {"Retry-After": "1"}, "failed"),
        ("trigger", 200, b"-9", {}, "failed"),  # a bad number: would split
        ("webservice", 200, b"2314357620085030623", {}, "accepted"),  # it was sent: recorded so
    ],
    ids=["rate-limited", "retry-later", "account", "503-retry-after", "split", "accepted"],
)
def test_given_a_cancel_while_a_chunk_is_in_flight_when_the_answer_comes_then_the_chunk_ends(
    make_stack: Any, vendor: str, status: int, answer: bytes, headers: dict[str, str], ends: str
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, vendor, numbers(3), SAME)
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("stall", delay=1.5, status=status, answer=answer, headers=headers) as gw:
        runtime = runtime_for(stack, vendor, gw.url)
        sender = threading.Thread(target=send, args=(stack, runtime, ids))
        sender.start()
        stack.wait_for(lambda: {c.state for c in chunks(stack, campaign_id)} == {"sending"})
        # When a person cancels while the request is on the wire
        campaigns.cancel(stack.sessions, campaign_id, "t")
        sender.join(timeout=60)

    # Then the answer ends the chunk: nothing is left queued (or split) in a cancelled campaign
    assert {c.state for c in chunks(stack, campaign_id)} == {ends}
    expected = ("accepted", None) if ends == "accepted" else ("cancelled", "cancelled")  # never sent
    assert {(s, c) for s, c, _ in recipients(stack, campaign_id).values()} == {expected}
    with pytest.raises(StateError, match="cancelled campaigns are final"):
        campaigns.retry(stack.sessions, campaign_id, "t")


# ---- 6. a late answer, a report, then retry --include-unknown ----------------------------------------


def test_given_a_chunk_swept_long_after_its_campaign_was_planned_when_its_report_comes_then_it_settles(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    campaign_id = create(stack, "webservice", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:  # planned four days before it was sent
        session.execute(update(Chunk).values(created_at=utcnow() - timedelta(days=4)))
        session.commit()
    # Given it reached the vendor, its worker died before recording anything, and it was swept
    sent_then_worker_died(stack, runtime, ids)

    # When the vendor's report for the number arrives
    from dispatcher.results.inbox import process_pending
    from dispatcher.results.pull import drain

    drain(stack.sessions, runtime.transport, runtime.account, "reports")
    stats = process_pending(stack.sessions, stack.settings)

    # Then it settles the unknown chunk, and a retry of unknown chunks sends nothing
    assert stats.settled_chunks == 1
    assert recipients(stack, campaign_id)[str(FIRST)][0] in ("delivered", "undelivered")
    assert campaigns.retry(stack.sessions, campaign_id, "t", include_unknown=True) == []


# ---- 7. HTTP 5xx after the body was sent ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "ends"),
    [
        (500, {}, "unknown"),
        (502, {}, "unknown"),
        (504, {}, "unknown"),
        (503, {}, "unknown"),
        (503, {"Retry-After": "2"}, "queued"),
        (429, {}, "queued"),
    ],
)
def test_given_an_http_error_status_when_sent_then_only_a_refusal_is_retried(
    make_stack: Any, status: int, headers: dict[str, str], ends: str
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("status", status=status, answer=b"gateway trouble", headers=headers) as gw:
        before = utcnow()
        (result,) = send(stack, runtime_for(stack, "webservice", gw.url), ids)
        assert len(gw.seen) == 1

    (chunk,) = chunks(stack, campaign_id)
    assert (chunk.state, chunk.code) == (ends, f"HTTP {status}")
    assert {s for s, _, _ in recipients(stack, campaign_id).values()} == {ends}
    if ends == "unknown":  # it may have been accepted: never sent again by itself
        assert result.next is Next.DONE
    else:
        assert result.next is Next.LATER and chunk.not_before is not None
    if headers:
        assert chunk.not_before is not None and chunk.not_before >= before + timedelta(seconds=1.9)


def test_given_a_refused_connection_when_sent_then_it_is_retried_later(make_stack: Any) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    (result,) = send(stack, runtime_for(stack, "webservice", f"http://127.0.0.1:{closed_port()}"), ids)
    (chunk,) = chunks(stack, campaign_id)
    assert (chunk.state, chunk.error_class, result.next) == ("queued", "retry_later", Next.LATER)


# ---- 8. retry failed on a paused campaign -----------------------------------------------------------


def test_given_a_paused_campaign_when_failed_chunks_are_retried_then_it_stays_paused(make_stack: Any) -> None:
    stack = make_stack(worker=False)
    runtime = runtime_for(stack, "webservice")
    mobiles = numbers(4)
    campaign_id = create(stack, "webservice", mobiles)
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    send(stack, runtime, ids[:1])
    with stack.sessions() as session:  # a transient failure
        session.execute(
            update(Chunk).where(Chunk.id == ids[1]).values(state="failed", error_class="retry_later")
        )
        session.execute(update(Recipient).where(Recipient.chunk_id == ids[1]).values(state="failed"))
        session.commit()
    campaigns.pause(stack.sessions, campaign_id, "t")

    # When a person retries the failed chunks
    assert campaigns.retry(stack.sessions, campaign_id, "t") == [ids[1]]

    # Then only it is re-queued and the campaign stays paused: nothing goes until someone resumes
    with stack.sessions() as session:
        assert campaigns.status(session, campaign_id)["state"] == "paused"
    send(stack, runtime, ids)
    assert ledger(stack) == Counter(mobiles[:1])
    send(stack, runtime, campaigns.resume(stack.sessions, campaign_id, "t"))
    assert ledger(stack) == Counter(mobiles)


# ---- the vendor's sending hours, and the database's clock -------------------------------------------


def test_given_outside_the_vendors_hours_when_answered_minus_8_then_it_waits_without_using_up_retries(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "trigger", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("status", status=200, answer=b"-8") as gw:
        runtime = runtime_for(stack, "trigger", gw.url)
        for _ in range(8):  # more than the five retries "retry later" allows
            before = utcnow()
            (result,) = send(stack, runtime, ids)
            (chunk,) = chunks(stack, campaign_id)
            assert (chunk.state, chunk.attempts, result.next) == ("queued", 0, Next.LATER)
            assert chunk.not_before is not None and chunk.not_before >= before + timedelta(minutes=14)
            assert chunk.detail is not None and "waiting until" in chunk.detail
            with stack.sessions() as session:  # time passes
                session.execute(update(Chunk).values(not_before=None))
                session.commit()
        assert len(gw.seen) == 8


def test_given_a_worker_whose_clock_is_an_hour_behind_when_it_sends_then_the_sweep_leaves_its_lease(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", [str(FIRST)])
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("stall", delay=1.0) as gw:
        runtime = runtime_for(stack, "webservice", gw.url, clock=lambda: utcnow() - timedelta(hours=1))
        sender = threading.Thread(target=send, args=(stack, runtime, ids))
        sender.start()
        stack.wait_for(lambda: chunks(stack, campaign_id)[0].state == "sending")
        # When the beat sweeps while the request is on the wire
        with stack.sessions() as session:
            swept = sweep_expired_leases(session)
        sender.join(timeout=30)

    # Then the lease, set by the database's clock, is not over: the answer is recorded on time
    assert swept == []
    assert chunks(stack, campaign_id)[0].state == "accepted"
    with stack.sessions() as session:
        assert session.execute(select(Attempt.outcome)).scalars().all() == ["accepted"]


# ---- an opt-out while the number is in flight, or failed -------------------------------------------


def test_given_a_number_opted_out_while_in_flight_when_its_chunk_is_sent_again_then_it_is_not(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    mobiles = numbers(3)
    campaign_id = create(stack, "trigger", mobiles, SAME)
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("stall", delay=1.0, answer=b"-1") as gw:  # "try again later"
        sender = threading.Thread(target=send, args=(stack, runtime_for(stack, "trigger", gw.url), ids))
        sender.start()
        stack.wait_for(lambda: {c.state for c in chunks(stack, campaign_id)} == {"sending"})
        # When a number opts out while the request is on the wire (too late to withdraw it there)
        with stack.sessions() as session:
            optout_store.add(session, [mobiles[1]], source="reply")
            session.commit()
        sender.join(timeout=30)
    # Then, when the chunk goes again, that number is not in it
    with stack.sessions() as session:
        session.execute(update(Chunk).values(not_before=None))
        session.commit()
    send(stack, runtime_for(stack, "trigger"), ids)
    assert ledger(stack) == Counter([mobiles[0], mobiles[2]])
    assert recipients(stack, campaign_id)[mobiles[1]][0] == "rejected"


def test_given_a_failed_number_that_opted_out_when_failed_chunks_are_retried_then_it_is_not_sent(
    make_stack: Any,
) -> None:
    stack = make_stack(worker=False)
    mobiles = numbers(2)
    campaign_id = create(stack, "webservice", mobiles)
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with gateway("status", status=200, answer=b"-1") as gw:
        runtime = runtime_for(stack, "webservice", gw.url)
        for _ in range(6):  # until "retry later" gives up
            send(stack, runtime, ids)
            with stack.sessions() as session:
                session.execute(update(Chunk).where(Chunk.state == "queued").values(not_before=None))
                session.commit()
    assert {s for s, _, _ in recipients(stack, campaign_id).values()} == {"failed"}
    with stack.sessions() as session:
        optout_store.add(session, [mobiles[0]], source="manual")
        session.commit()

    send(stack, runtime_for(stack, "webservice"), campaigns.retry(stack.sessions, campaign_id, "t"))

    assert ledger(stack) == Counter([mobiles[1]])
    assert recipients(stack, campaign_id)[mobiles[0]][0] == "rejected"


def test_given_a_retry_while_the_beat_completes_the_campaign_then_no_chunk_is_left_queued_in_it(
    make_stack: Any, engine_of: Callable[[], Engine]
) -> None:
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", numbers(1))
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:  # its only chunk failed "try again later"
        session.execute(update(Chunk).values(state="failed", error_class="retry_later"))
        session.execute(update(Recipient).values(state="failed"))
        session.commit()
    engine = engine_of()
    retry: list[threading.Thread] = []

    def operator_retries(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Between the beat's look for finished campaigns and its UPDATE, a person retries
        if retry or not statement.lstrip().upper().startswith("UPDATE CAMPAIGNS"):
            return
        retry.append(threading.Thread(target=campaigns.retry, args=(stack.sessions, campaign_id, "t")))
        retry[0].start()
        retry[0].join(timeout=1)  # PostgreSQL: the retry waits for the beat's lock, and goes after it

    event.listen(engine, "before_cursor_execute", operator_retries)
    scheduler.complete_finished(session_factory(engine))
    retry[0].join(timeout=30)

    # Then either the beat completed it first and the retry runs it again, or the beat saw the
    # re-queued chunk: never a completed campaign with a chunk waiting
    with stack.sessions() as session:
        assert campaigns.status(session, campaign_id)["state"] == "running"
    assert queued(stack, campaign_id) == ids


def test_given_a_late_answer_while_an_operator_retries_the_unknown_chunk_then_both_go_through(
    make_stack: Any, engine_of: Callable[[], Engine]
) -> None:
    # Given a chunk whose worker's lease was swept mid-send (unknown), its answer not recorded yet
    stack = make_stack(worker=False)
    campaign_id = create(stack, "webservice", numbers(1))
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    with stack.sessions() as session:
        claimed = claim_chunks(session, ids, "w1", -1)
        assert sweep_expired_leases(session) == ids
    (row,) = load_group(stack.sessions, ids)
    now, runtime = utcnow(), runtime_for(stack, "webservice")
    request = build_request(runtime, row, claimed[ids[0]].pairs)
    verdict = interpret(runtime.vendor, body="-1")  # "try again later"
    late = SendAttempt(row, claimed[ids[0]], verdict, now, now, request)
    engine = engine_of()
    answer = threading.Thread(target=record_attempts, args=(stack.sessions, "w1", [late]))

    def answer_arrives(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # The retry has read (PostgreSQL: locked) the campaign when the late answer is recorded
        if not answer.is_alive() and statement.lstrip().upper().startswith("SELECT CAMPAIGNS.STATE"):
            answer.start()
            answer.join(timeout=1)

    event.listen(engine, "after_cursor_execute", answer_arrives)
    # When an operator retries unknown chunks at that moment
    campaigns.retry(session_factory(engine), campaign_id, "t", include_unknown=True)
    answer.join(timeout=30)

    # Then neither waits for the other for ever (one order of locks for both): the answer ("try again
    # later") is recorded, and the chunk is queued to go again, once
    (chunk,) = chunks(stack, campaign_id)
    assert chunk.state == "queued"
    with stack.sessions() as session:
        assert session.execute(select(Attempt.outcome)).scalars().all() == ["late_queued"]
