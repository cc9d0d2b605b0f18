"""The group fast path (``dispatch.send_group``): a task's chunks claimed with one UPDATE, sent
concurrently, recorded in one transaction. Against the simulator over HTTP and the real Redis limiter,
without Celery: two workers racing the same group, a lease swept mid-send, mixed outcomes in one group."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select, update

from dispatcher import campaigns, dispatch, sendloop
from dispatcher.dispatch import AccountRuntime, Next, Result, load_group, send_group
from dispatcher.keys import rate_key
from dispatcher.ratelimit import AccountLimiter
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import Attempt, Chunk, Recipient, sweep_expired_leases
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from tests.stack import REDIS_URL, Stack, write_contacts
from workers import tasks
from workers.tasks import load_sending_library


def started_campaign(stack: Stack, count: int, *, first: int = 13900000000) -> list[int]:
    path = write_contacts(stack.tmp / "c.xlsx", [(str(first + i), "张三") for i in range(count)])
    created = campaigns.create(
        stack.sessions, stack.settings, path, "{姓名}您好【测试】", stack.accounts["webservice"], actor="t"
    )
    return campaigns.start(stack.sessions, created.campaign_id, "t")


def campaign_of(stack: Stack, chunk_id: int) -> int:
    with stack.sessions() as session:
        return session.get_one(Chunk, chunk_id).campaign_id


def account_runtime(stack: Stack, redis: Redis[Any], rate: float = 1000.0) -> AccountRuntime:
    account = stack.settings.account(stack.accounts["webservice"])
    limiter = AccountLimiter(redis, account.name, rate)
    return AccountRuntime(account, vendor_module("webservice"), Transport([account.base_url]), limiter)


def accepted_by_vendor(stack: Stack) -> Counter[str]:
    return Counter(e["mobile"] for e in stack.sim.ledger()["accepted"])


def accepted_ids(stack: Stack) -> set[int]:
    with stack.sessions() as session:
        return set(session.execute(select(Chunk.id).where(Chunk.state == "accepted")).scalars())


def test_given_two_workers_racing_the_same_group_then_each_chunk_is_sent_once(make_stack: Any) -> None:
    # Given a group of 16 one-number chunks delivered twice (a duplicated Celery message)
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 16)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    barrier = threading.Barrier(2)

    def worker(name: str) -> list[Any]:
        rows = load_group(stack.sessions, ids)
        barrier.wait()
        return send_group(stack.sessions, runtime, rows, name)

    try:
        # When two workers send it at the same moment
        with ThreadPoolExecutor(2) as both:
            first, second = both.map(worker, ["w1", "w2"])
    finally:
        runtime.transport.close()
        redis.close()

    # Then every chunk was won by exactly one of them, and each number reached the vendor once
    won = [r.chunk_id for r in first + second if r.state == "accepted"]
    assert sorted(won) == sorted(ids)
    lost = [r for r in first + second if r.state != "accepted"]
    assert len(lost) == 16 and all(r.next is Next.DONE for r in lost)
    assert accepted_by_vendor(stack) == Counter(str(13900000000 + i) for i in range(16))
    with stack.sessions() as session:
        assert set(session.execute(select(Chunk.state)).scalars()) == {"accepted"}
        assert session.query(Attempt).count() == 16


def test_given_a_lease_swept_mid_send_then_the_late_answers_settle_the_unknown_chunks(
    make_stack: Any,
) -> None:
    # Given a group of four chunks, one number blacklisted, and a vendor slow to answer (600 ms),
    # with a lease of 0.1 s
    bad = "13900000002"
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0, latency_ms=600, blacklist=(bad,)),
        worker=False,
    )
    ids = started_campaign(stack, 4)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    runtime.lease_seconds = 0.1
    swept: list[int] = []

    def sweep_soon() -> None:  # the beat's sweep, while the requests are on the wire
        def all_sending() -> bool:
            with stack.sessions() as session:
                return set(session.execute(select(Chunk.state)).scalars()) == {"sending"}

        stack.wait_for(all_sending, timeout=30)
        threading.Event().wait(0.2)  # the leases (0.1 s) are over by the database's clock
        swept.extend(sweep_expired_leases(stack.sessions()))

    sweeper = threading.Thread(target=sweep_soon)
    try:
        sweeper.start()
        send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
        sweeper.join()
    finally:
        runtime.transport.close()
        redis.close()

    # Then the sweep made them unknown, and each answer, arriving late, settled its chunk: accepted
    # with its batch id, or failed with the vendor's code (the answer proves it was not accepted)
    assert sorted(swept) == sorted(ids)
    with stack.sessions() as session:
        recipients = session.execute(select(Recipient.mobile, Recipient.state, Recipient.batch_id)).all()
        attempts = session.execute(select(Attempt.outcome)).scalars().all()
        codes = session.execute(select(Chunk.code).where(Chunk.state == "failed")).scalars().all()
        details = set(session.execute(select(Chunk.detail).where(Chunk.state == "accepted")).scalars())
    assert {m: s for m, s, _ in recipients} == {
        str(13900000000 + i): ("failed" if str(13900000000 + i) == bad else "accepted") for i in range(4)
    }
    assert all(b and b.isdigit() for _, s, b in recipients if s == "accepted")
    assert codes == ["-12"]  # webservice: number on the blacklist
    assert details == {"unknown outcome settled by a late answer"}
    assert sorted(attempts) == ["late_accepted"] * 3 + ["late_failed"]
    # And retrying unknown chunks finds nothing to send again
    assert campaigns.retry(stack.sessions, campaign_of(stack, ids[0]), "t", include_unknown=True) == []
    assert sum(accepted_by_vendor(stack).values()) == 3


def test_given_mixed_answers_in_one_group_then_each_chunk_gets_its_own_outcome(make_stack: Any) -> None:
    # Given a group of six chunks: two numbers blacklisted, and a vendor admitting 3 requests/s
    bad = ("13900000001", "13900000004")
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0, blacklist=bad, rate_limit=3),
        worker=False,
    )
    ids = started_campaign(stack, 6)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    try:
        # When the group is sent at once
        results = send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
    finally:
        runtime.transport.close()
        redis.close()

    # Then each chunk has its own outcome and attempt: a refused number failed (unless it was told
    # "too frequent" first), "too frequent" ones wait for a retry, the rest were accepted
    states = Counter(r.state for r in results)
    with stack.sessions() as session:
        chunks = Counter(session.execute(select(Chunk.state)).scalars())
        recipients = dict(session.execute(select(Recipient.mobile, Recipient.state)).tuples().all())
        attempts = Counter(session.execute(select(Attempt.outcome)).scalars())
    assert chunks == attempts == Counter({k: v for k, v in states.items()})
    assert set(chunks) <= {"accepted", "failed", "queued"} and chunks["queued"] >= 3
    assert {m for m, s in recipients.items() if s == "failed"} <= set(bad)
    assert all(r.next is Next.LATER for r in results if r.state == "queued")
    accepted = [m for m, s in recipients.items() if s == "accepted"]
    assert accepted and accepted_by_vendor(stack) == Counter(accepted)


def _terminate(_signum: int, _frame: Any) -> None:
    raise SystemExit(143)  # what Celery's pool child does on a SIGTERM


@contextmanager
def _sigterm_as_pool_child() -> Iterator[None]:
    """This process's SIGTERM handled meanwhile as a Celery pool child handles a cancel's."""
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def assert_all_accepted_once(stack: Stack, count: int) -> None:
    """Every chunk (``count`` of one number each) recorded accepted, and the vendor took each once:
    nothing left ``sending`` for the sweep to call unknown."""
    with stack.sessions() as session:
        chunks = Counter(session.execute(select(Chunk.state)).scalars())
    assert chunks == Counter({"accepted": count})
    assert sum(accepted_by_vendor(stack).values()) == count


def test_given_a_termination_while_the_round_is_on_the_wire_then_its_answers_are_recorded_first(
    make_stack: Any,
) -> None:
    # Given a group of four chunks and a vendor taking 0.5 s to answer
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=1.0, latency_ms=500), worker=False
    )
    ids = started_campaign(stack, 4)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)

    def terminate(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)  # what Celery's pool child does on the SIGTERM of a cancel

    send = runtime.transport.asend
    armed: list[bool] = []

    async def send_then_terminate(request: Any) -> Any:
        if not armed:  # one termination, 0.1 s after the first request went out
            armed.append(True)
            signal.setitimer(signal.ITIMER_REAL, 0.1)
        return await send(request)

    runtime.transport.asend = send_then_terminate  # type: ignore[method-assign]
    previous = signal.signal(signal.SIGALRM, terminate)
    try:
        # When the task's thread is terminated while it waits for the round
        with pytest.raises(SystemExit):
            send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        runtime.transport.close()
        redis.close()

    # Then the termination went on only once every answer on the wire was recorded: nothing is left
    # ``sending`` for the sweep to call unknown
    assert_all_accepted_once(stack, 4)


def test_given_a_second_sigterm_while_a_terminated_round_awaits_its_answers_then_they_are_recorded_first(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a group of four chunks, a vendor taking 0.5 s to answer, and this process's SIGTERM
    # handled as a Celery pool child handles it
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=1.0, latency_ms=500), worker=False
    )
    ids = started_campaign(stack, 4)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    send = runtime.transport.asend
    timers: list[threading.Timer] = []

    async def send_then_terminate_twice(request: Any) -> Any:
        if not timers:  # SIGTERM 0.1 s after the first request went out, and again 0.15 s later
            for delay in (0.1, 0.25):
                timers.append(threading.Timer(delay, os.kill, (os.getpid(), signal.SIGTERM)))
                timers[-1].start()
        return await send(request)

    monkeypatch.setattr(runtime.transport, "asend", send_then_terminate_twice)
    try:
        # When the task is terminated, and terminated again while the answers are awaited
        with _sigterm_as_pool_child():
            with pytest.raises(SystemExit):
                send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
            for timer in timers:  # both delivered before the handler goes back
                timer.join()
    finally:
        runtime.transport.close()
        redis.close()

    # Then every answer was recorded before the termination went on: nothing left ``sending``
    assert_all_accepted_once(stack, 4)


def test_given_a_sigterm_while_a_round_is_recorded_then_the_record_is_finished_and_the_termination_follows(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 4)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    record = dispatch.record_attempts

    def signalled_record(*args: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)  # Given: a SIGTERM just as the round's record begins
        return record(*args)

    monkeypatch.setattr(dispatch, "record_attempts", signalled_record)
    try:
        # When the group is sent, the task is terminated
        with _sigterm_as_pool_child(), pytest.raises(SystemExit):
            send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
    finally:
        runtime.transport.close()
        redis.close()

    # Then only after the round's answers were recorded
    assert_all_accepted_once(stack, 4)


def assert_nothing_lost(stack: Stack, count: int) -> None:
    """Nothing left ``sending`` (the sweep would call it unknown): every chunk is accepted, recorded as
    the vendor took it, once, or queued and never sent."""
    with stack.sessions() as session:
        states = dict(session.execute(select(Recipient.mobile, Recipient.state)).tuples().all())
    assert len(states) == count and set(states.values()) <= {"accepted", "queued"}
    assert accepted_by_vendor(stack) == Counter(m for m, s in states.items() if s == "accepted")


def test_given_a_sigterm_as_the_claim_commits_then_the_claimed_chunks_go_back_to_the_queue_unsent(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 4)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    claim = dispatch.claim_chunks

    def signalled_claim(*args: Any, **kwargs: Any) -> Any:
        won = claim(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # Given: a SIGTERM just as the claim has committed
        return won

    monkeypatch.setattr(dispatch, "claim_chunks", signalled_claim)
    try:
        # When the group is sent, the task is terminated
        with _sigterm_as_pool_child(), pytest.raises(SystemExit):
            send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
    finally:
        runtime.transport.close()
        redis.close()

    # Then the termination went on once the claimed chunks were handed back, none sent after it
    assert_nothing_lost(stack, 4)
    with stack.sessions() as session:
        assert set(session.execute(select(Chunk.state)).scalars()) == {"queued"}


class _SignalledLoop(sendloop.SendLoop):
    """A sending loop that gets this process a SIGTERM just after a round is handed to it."""

    def submit(self, coroutines: Any) -> Any:
        future = super().submit(coroutines)
        os.kill(os.getpid(), signal.SIGTERM)
        return future


@pytest.mark.parametrize("latency_ms", [0, 300])
def test_given_a_sigterm_just_after_the_round_is_handed_to_the_loop_then_what_went_out_is_recorded(
    make_stack: Any, latency_ms: int
) -> None:
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=1.0, latency_ms=latency_ms), worker=False
    )
    ids = started_campaign(stack, 4)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    loop = _SignalledLoop()
    try:
        # When the group is sent, the task is terminated as its round goes to the loop
        with _sigterm_as_pool_child(), pytest.raises(SystemExit):
            send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1", loop=loop)
    finally:
        loop.close()
        runtime.transport.close()
        redis.close()

    # Then every request that went out was recorded before the termination went on, the rest queued
    assert_nothing_lost(stack, 4)


def test_given_a_sigterm_while_requests_wait_for_their_slots_then_those_on_the_wire_are_recorded_the_rest_queued(
    make_stack: Any,
) -> None:
    # Given an account limited to 4 requests/s (the group's slots a quarter of a second apart), a
    # vendor taking 0.3 s to answer, and a SIGTERM 0.1 s after the first request went out
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=5, deliver_ratio=1.0, latency_ms=300), worker=False
    )
    ids = started_campaign(stack, 6)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis, rate=4.0)
    send = runtime.transport.asend
    timers: list[threading.Timer] = []

    async def send_then_terminate(request: Any) -> Any:
        if not timers:
            timers.append(threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)))
            timers[-1].start()
        return await send(request)

    runtime.transport.asend = send_then_terminate  # type: ignore[method-assign]
    started = time.monotonic()
    try:
        # When the task is terminated while most requests wait for their slots
        with _sigterm_as_pool_child(), pytest.raises(SystemExit):
            send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
        elapsed = time.monotonic() - started
        timers[0].join()
    finally:
        runtime.transport.close()
        redis.close()

    # Then the first request's answer was recorded, the waiting ones were not sent, and the termination
    # went on without waiting for their slots
    time.sleep(1.0)  # past their slots: a request still waiting would have gone by now
    assert_nothing_lost(stack, 6)
    assert 1 <= sum(accepted_by_vendor(stack).values()) < 6 and elapsed < 1.0


class _FailingBuild:
    """A vendor module whose request for one number cannot be built (an unforeseen bug)."""

    def __init__(self, module: Any, mobile: str) -> None:
        self._module, self._mobile = module, mobile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def build_send(self, credentials: Any, mobiles: list[str], *args: Any, **kwargs: Any) -> Any:
        if self._mobile in mobiles:
            raise TypeError("cannot build")
        return self._module.build_send(credentials, mobiles, *args, **kwargs)

    def build_personalised(self, credentials: Any, recipients: list[tuple[str, str]], **kwargs: Any) -> Any:
        if any(mobile == self._mobile for mobile, _ in recipients):
            raise TypeError("cannot build")
        return self._module.build_personalised(credentials, recipients, **kwargs)


def test_given_one_request_that_cannot_be_built_then_the_rest_of_the_round_is_still_recorded(
    make_stack: Any,
) -> None:
    # Given a group of four chunks, one of which fails to build with an unforeseen error
    stack = make_stack(SimulatorConfig(report_delay=0.0, seed=7, deliver_ratio=1.0), worker=False)
    ids = started_campaign(stack, 4)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = account_runtime(stack, redis)
    runtime.vendor = _FailingBuild(runtime.vendor, "13900000002")  # type: ignore[assignment]
    try:
        # When the group is sent
        send_group(stack.sessions, runtime, load_group(stack.sessions, ids), "w1")
    finally:
        runtime.transport.close()
        redis.close()

    # Then the three answers are recorded (not left ``sending`` for the sweep to call unknown) and the
    # one that never left is failed, not sent
    with stack.sessions() as session:
        recipients = dict(session.execute(select(Recipient.mobile, Recipient.state)).tuples().all())
    assert sum(accepted_by_vendor(stack).values()) == 3
    assert recipients == {
        "13900000000": "accepted",
        "13900000001": "accepted",
        "13900000002": "failed",
        "13900000003": "accepted",
    }


def send_with_claim_held_up(
    stack: Stack,
    ids: list[int],
    redis: Redis[Any],
    meanwhile: Callable[[], object] = lambda: None,
    rate: float = 20.0,
) -> list[Result]:
    """Send the group at ``rate`` requests/s while another writer holds its chunks for 0.4 s, so that
    the claim waits after the first slots were given; ``meanwhile`` runs while they are held."""
    load_sending_library()  # this process prepared as a worker's is at its start
    runtime = account_runtime(stack, redis, rate=rate)
    rows = load_group(stack.sessions, ids)
    holding = threading.Event()

    def hold() -> None:
        with stack.sessions() as session:
            session.execute(
                update(Chunk).where(Chunk.id.in_(ids)).values(state=Chunk.state),
                execution_options={"synchronize_session": False},
            )
            holding.set()
            time.sleep(0.2)
            meanwhile()
            time.sleep(0.2)
            session.commit()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    try:
        return send_group(stack.sessions, runtime, rows, "w1")
    finally:
        holder.join()
        runtime.transport.close()
        redis.delete(rate_key(runtime.account.name))


def test_given_a_claim_held_up_past_its_slots_then_its_requests_take_new_slots_rather_than_go_bunched(
    make_stack: Any,
) -> None:
    # Given an account limited to 20 requests/s and a group of 6 one-number chunks
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 6)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    try:
        # When the group is sent while another writer holds its chunks past the first slots
        results = send_with_claim_held_up(stack, ids, redis)
    finally:
        redis.close()

    # Then every chunk is accepted once, and the requests whose slots passed while the claim waited
    # reached the vendor spaced as the limit says (each on a new slot), not back to back
    assert sorted(r.chunk_id for r in results if r.state == "accepted") == sorted(ids)
    arrivals = sorted(e["at"] for e in stack.sim.ledger()["accepted"])
    assert len(arrivals) == 6
    spacing = 1 / 20.0
    assert min(b - a for a, b in pairwise(arrivals)) >= 0.6 * spacing


def test_given_no_new_slot_for_a_late_request_then_it_is_not_sent_and_its_chunk_waits_in_the_queue(
    make_stack: Any,
) -> None:
    # Given a group whose claim is held up past its slots, and the limiter's state broken meanwhile
    # (a Redis error for whoever asks it for a new slot)
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 6)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    key = rate_key(stack.accounts["webservice"])
    try:
        # When the group is sent
        results = send_with_claim_held_up(stack, ids, redis, meanwhile=lambda: redis.set(key, "not a hash"))
    finally:
        redis.close()

    # Then the requests whose slots passed were not sent: their chunks are queued again, for later
    late = [r for r in results if r.state != "accepted"]
    assert late and all(r.next is Next.LATER for r in late)
    late_ids = [r.chunk_id for r in late]
    with stack.sessions() as session:
        states = set(session.execute(select(Chunk.state).where(Chunk.id.in_(late_ids))).scalars())
        numbers = set(
            session.execute(select(Recipient.mobile).where(Recipient.chunk_id.in_(late_ids))).scalars()
        )
    assert states == {"queued"}
    assert len(accepted_by_vendor(stack)) == 6 - len(late)
    assert not numbers & set(accepted_by_vendor(stack))


def test_given_a_termination_while_a_late_request_waits_for_a_new_slot_then_it_is_not_sent_and_waits_queued(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an account limited to 1 request/s (a new slot is ~0.6 s away) and a group whose claim is
    # held up past its first slot
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 6)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)

    def terminate(_signum: int, _frame: Any) -> None:
        raise SystemExit(143)  # what Celery's pool child does on the SIGTERM of a cancel

    next_slot = dispatch._next_slot

    async def terminated_while_waiting(*args: Any) -> float | None:
        # The termination comes once the request waits for its new slot (a timer set at a fixed time
        # missed that moment on a loaded machine, where the claim itself can take that long)
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        return await next_slot(*args)

    monkeypatch.setattr(dispatch, "_next_slot", terminated_while_waiting)
    previous = signal.signal(signal.SIGALRM, terminate)
    started = time.monotonic()
    try:
        # When the task is terminated while that request waits for its new slot
        with pytest.raises(SystemExit):
            send_with_claim_held_up(stack, ids, redis, rate=1.0)
        elapsed = time.monotonic() - started
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        redis.close()

    # Then the termination goes on at once, and the request that had not left is not sent after it:
    # its chunk waits in the queue (not ``sending``, which the sweep would call unknown)
    assert elapsed < 1.5
    time.sleep(2.0)  # past the new slot: a request still waiting for it would have gone by now
    with stack.sessions() as session:
        chunks = Counter(session.execute(select(Chunk.state)).scalars())
    assert chunks == Counter({"queued": 6})
    assert accepted_by_vendor(stack) == Counter()


def test_given_many_late_requests_waiting_for_new_slots_then_the_loop_s_executor_stays_free(
    make_stack: Any,
) -> None:
    # Given a group of more late requests than the sending loop's default executor has threads
    # (aiohttp resolves host names on it), whose new slots are a second away (a penalty meanwhile)
    threads = min(32, (os.cpu_count() or 1) + 4)
    count = threads + 2
    rate = count * 12.0  # every request of the group in one round (the limiter's 0.1 s lookahead)
    stack = make_stack(worker=False)
    ids = started_campaign(stack, count)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    limiter = AccountLimiter(redis, stack.accounts["webservice"], rate)
    delays: list[float] = []

    def probe() -> None:
        loop = sendloop.default()

        async def executor_job() -> float:
            asked = time.monotonic()
            return await asyncio.get_running_loop().run_in_executor(None, lambda: time.monotonic() - asked)

        delays.extend(loop.wait(loop.submit([executor_job()])))

    timer = threading.Timer(0.7, probe)  # while the late requests wait for their new slots
    timer.start()
    try:
        # When the group is sent
        results = send_with_claim_held_up(stack, ids, redis, meanwhile=limiter.penalise, rate=rate)
    finally:
        timer.join()
        redis.close()

    # Then a job handed to the executor meanwhile (a host name to resolve) ran at once, and every
    # chunk was still sent once
    assert delays and delays[0] < 0.2
    assert Counter(r.state for r in results) == Counter({"accepted": count})
    assert sum(accepted_by_vendor(stack).values()) == count


def test_given_a_late_request_whose_new_slot_is_far_then_its_chunk_goes_back_to_the_queue_unspent(
    make_stack: Any,
) -> None:
    # Given an account limited to 0.2 requests/s (a new slot is 5 s away) and a chunk whose claim is
    # held up past its slot
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 1)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    started = time.monotonic()
    try:
        # When it is sent
        results = send_with_claim_held_up(stack, ids, redis, rate=0.2)
    finally:
        redis.close()

    # Then it is not held ``sending`` (unsent) for 5 s, which a worker killed meanwhile would leave
    # for the sweep to call unknown: it goes back to the queue at once, its retry budget unspent
    assert time.monotonic() - started < 2.0
    assert [(r.next, r.state) for r in results] == [(Next.LATER, "queued")]
    with stack.sessions() as session:
        state, attempts = session.execute(select(Chunk.state, Chunk.attempts).where(Chunk.id == ids[0])).one()
    assert (state, attempts) == ("queued", 0)
    assert accepted_by_vendor(stack) == Counter()


class SilentRedis:
    """A TCP relay to the test Redis that, once silenced, holds every byte: a Redis that stops
    answering (a network partition, a stalled server) without closing the connection."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._server.getsockname()[1]}/0"
        self._silent = threading.Event()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", 6379))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(src, dst), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while self._silent.is_set() and not self._closed.is_set():
                    time.sleep(0.02)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            src.close()
            dst.close()

    def silence(self) -> None:
        self._silent.set()

    def speak(self) -> None:
        self._silent.clear()

    def close(self) -> None:
        self._closed.set()
        self._server.close()


def test_given_redis_silent_while_late_requests_ask_for_new_slots_then_their_chunks_go_back_to_the_queue(
    make_stack: Any,
) -> None:
    # Given a group whose claim is held up past its slots, and the limiter's Redis gone silent
    # meanwhile (it holds the connection open and answers nothing)
    stack = make_stack(worker=False)
    ids = started_campaign(stack, 2)
    relay = SilentRedis()
    redis: Redis[Any] = Redis.from_url(relay.url)
    sender = threading.Thread(target=send_with_claim_held_up, args=(stack, ids, redis, relay.silence))
    started = time.monotonic()
    try:
        # When the group is sent
        sender.start()
        claimed, states = False, Counter[str]()
        while time.monotonic() - started < 4.0:  # the claim (0.4 s), the wait for a new slot (2 s)
            time.sleep(0.1)
            with stack.sessions() as session:
                states = Counter(session.execute(select(Chunk.state).where(Chunk.id.in_(ids))).scalars())
            claimed = claimed or "sending" in states
            if claimed and states == Counter({"queued": 2}):
                break
    finally:
        relay.speak()
        sender.join(timeout=30)
        redis.close()
        relay.close()

    # Then the requests whose slots passed are not sent and their chunks do not stay ``sending``
    # (the sweep would call them unknown): they wait in the queue, within the wait for a new slot
    assert claimed and states == Counter({"queued": 2})
    assert accepted_by_vendor(stack) == Counter()


def test_given_a_group_the_limiter_cannot_serve_in_time_then_the_rest_goes_back_as_one_task_not_one_each(
    make_stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an account at 5 requests/s, a task's wait for slots cut to 1 s, and a group of 20 chunks
    # (more than one worker's share of the account sends within the wait)
    monkeypatch.setattr(dispatch, "LIMITER_WAIT", 1.0)
    stack = make_stack(worker=False, rate_limit=5.0)
    ids = started_campaign(stack, 20)
    queue = stack.app.conf.task_default_queue
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    try:
        redis.delete(queue)
        # When the task runs
        tasks.submit_chunks(stack.app, ids)
        bodies = [json.loads(raw)["body"] for raw in redis.lrange(queue, 0, -1)]
    finally:
        redis.close()

    # Then the chunks the limiter had no slot for are handed back together, in one task (a task
    # each would cost each chunk a round of store work of its own)
    handed_back = [json.loads(base64.b64decode(body))[0][0] for body in bodies]
    sent = sum(accepted_by_vendor(stack).values())
    assert 0 < sent < 20
    assert len(handed_back) == 1 and sorted(handed_back[0]) == sorted(set(ids) - accepted_ids(stack))
