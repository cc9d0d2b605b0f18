"""Sending a task's chunks exactly once: load, pace, claim, send, decide, record.

The worker's library side (docs/state-machine.md); the Celery task around it only loads the runtime
and schedules what the returned :class:`Result` values say comes next. One pipeline for every chunk:

1. :func:`load_group`: ONE SELECT of the chunks with their campaigns (state, window, due);
2. the account's limiter reserves a slot per request (one Redis call for the round);
3. :func:`claim_chunks`: ONE conditional UPDATE ... RETURNING claims them (a duplicate wins nothing),
   one more moves their still-waiting recipients to ``sending``;
4. the won chunks are sent concurrently on the process's event loop (:mod:`dispatcher.sendloop`),
   each at its slot, each answer interpreted;
5. :func:`record_attempts`: ONE transaction records every outcome that :func:`decide` gives, splits
   and pauses included, then the limiter adapts.

What answers mean is decided apart from the I/O, in :mod:`dispatcher.decisions`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from types import FrameType
from typing import Any, Literal, Protocol

from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import chunker, sendloop
from dispatcher.config import AccountConfig
from dispatcher.decisions import (
    ChunkRow,
    Decision,
    Next,
    Result,
    SendAttempt,
    Verdict,
    decide,
    in_window,
    interpret,
    next_window_open,
)
from dispatcher.errors import (
    HTTPStatusError,
    InputError,
    NotSentError,
    OutcomeUnknownError,
    UnsupportedMethodError,
)
from dispatcher.ratelimit import AccountLimiter, InFlight, LocalLimiter
from dispatcher.sendloop import SendLoop
from dispatcher.store import Campaign, CampaignState, Chunk, ChunkState, utcnow
from dispatcher.store.campaigns import move
from dispatcher.store.caps import CapCheck
from dispatcher.store.chunks import (
    Claimed,
    accept_request,
    answered_since,
    campaign_states,
    claim_chunks,
    own_chunks,
    record_outcomes,
    sent_elsewhere,
    split_chunk,
)
from dispatcher.store.types import db_now
from dispatcher.vendors.registry import VendorModule
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import ErrorClass, Request

__all__ = [
    "AccountRuntime",
    "ChunkRow",
    "Next",
    "Result",
    "build_request",
    "in_window",
    "interpret",
    "load_group",
    "next_window_open",
    "record_attempts",
    "send_group",
]

logger = logging.getLogger(__name__)

SYSTEM = "system"
LEASE_SECONDS = 120.0  # longer than the transport's timeout: a live sender never loses its lease
# Seconds a worker keeps trying to record answers in a busy store before it gives up (the chunks are
# then swept ``unknown``): longer than any lock a sane writer holds.
RECORD_PATIENCE = 300.0
LIMITER_WAIT = 30.0  # seconds a task waits for a token before handing the chunk back to the queue
# Seconds a claimed request whose slot passed waits for a new one (a penalty's pause and a slot's
# spacing at 1 request/s fit). Longer, its chunk would sit ``sending`` but unsent, which a worker
# killed meanwhile leaves for the sweep to call unknown; it goes back to the queue instead.
LATE_SLOT_WAIT = 2.0
AWAITS_REPLAN = "awaits re-planning"  # a chunk packed for another account: the beat re-plans it
LATE_SETTLED = "unknown outcome settled by a late answer"


@dataclass
class AccountRuntime:
    """What a worker process keeps per vendor account: its vendor module, transport and limiter."""

    account: AccountConfig
    vendor: VendorModule
    transport: Transport
    limiter: AccountLimiter | LocalLimiter | None
    clock: Callable[[], datetime] = field(default=utcnow)
    lease_seconds: float = LEASE_SECONDS
    # The account's requests unanswered at once (``max_in_flight``), across every worker; None: no limit.
    in_flight: InFlight | None = None
    # The frequency caps its campaigns keep, when any cap is configured (sends are then counted).
    caps: CapCheck | None = None
    observer: Observer | None = None  # counts requests and limiter waits for the metrics


class Observer(Protocol):
    """What the metrics are told: each round's attempts, and the limiter's waits."""

    def attempts(self, account: AccountConfig, attempts: Sequence[SendAttempt]) -> None: ...

    def waited(self, account: AccountConfig, waits: Sequence[float]) -> None: ...


def _observe(runtime: AccountRuntime, what: str, value: Any) -> None:
    """Tell the observer; a failure of the metrics (Redis restarting) never stops a send."""
    if runtime.observer is None:
        return
    try:
        getattr(runtime.observer, what)(runtime.account, value)
    except Exception as exc:
        logger.warning("metrics of account %s not counted: %s", runtime.account.name, type(exc).__name__)


_GROUP_SELECT = select(
    Chunk.id,
    Chunk.state,
    Chunk.not_before,
    Chunk.ref,
    Chunk.text,
    Chunk.campaign_id,
    Campaign.account,
    Campaign.state,
    Campaign.window_start,
    Campaign.window_end,
    Campaign.timezone,
    Chunk.requeued_from_unknown,
    db_now(),
    Chunk.recipient_count,
    Chunk.account,
).join(Campaign, Campaign.id == Chunk.campaign_id)


def load_group(sessions: sessionmaker[Session], chunk_ids: Sequence[int]) -> list[ChunkRow]:
    """The chunks of ``chunk_ids`` that exist, with their campaigns, in one SELECT."""
    with sessions() as session:
        rows = session.execute(_GROUP_SELECT.where(Chunk.id.in_(list(chunk_ids)))).tuples()
        return [
            ChunkRow(i, state, nb, ref, text, cid, acct, cstate, (ws, we), tz, bool(rq), seen, count, packed)
            for i, state, nb, ref, text, cid, acct, cstate, ws, we, tz, rq, seen, count, packed in rows
        ]


def fits_account(capacity: tuple[int, int], row: ChunkRow, account: str | None = None) -> bool:
    """Whether ``row``'s packing can be sent on an account of ``capacity`` (``chunker.capacity``) named
    ``account``: a personalised request packed for another account is not (its texts were checked
    against that account's separators, not this one's)."""
    if row.text is None and None not in (row.packed_for, account) and row.packed_for != account:
        return False
    if row.recipient_count is None:
        return True
    return chunker.fits(capacity, personalised=row.text is None, count=row.recipient_count)


def build_request(runtime: AccountRuntime, chunk: ChunkRow, recipients: list[tuple[str, str]]) -> Request:
    account, vendor = runtime.account, runtime.vendor
    mobiles = [mobile for mobile, _ in recipients]
    if chunk.text is not None:
        return vendor.build_send(
            account.credentials(), mobiles, chunk.text, ref=chunk.ref, encrypted=account.encrypted
        )
    return vendor.build_personalised(
        account.credentials(), recipients, separators=account.separators(), ref=chunk.ref
    )


def send_group(
    sessions: sessionmaker[Session],
    runtime: AccountRuntime,
    rows: Sequence[ChunkRow],
    worker_id: str,
    loop: SendLoop | None = None,
) -> list[Result]:
    """Send a task's chunks of one account if they are still queued, their campaign running and
    inside its window; returns what comes next for each. The requests go out on ``loop`` (default:
    the process's).

    Window and due checks use the database's clock read with the rows. Tokens come first, then the
    claim: a chunk is ``sending`` only once its slot is near, so a worker killed while waiting for the
    account's turn strands nothing in ``sending``.
    """
    now = max((r.seen_at for r in rows if r.seen_at is not None), default=None) or runtime.clock()
    results: list[Result] = []
    due: list[ChunkRow] = []
    closed: dict[datetime, list[int]] = {}
    capacity = chunker.capacity(runtime.account.vendor, encrypted=runtime.account.encrypted)
    for row in rows:
        if row.state != ChunkState.QUEUED or row.campaign_state != CampaignState.RUNNING:
            results.append(Result(row.id, Next.DONE, state=row.state))
            continue
        if not fits_account(capacity, row, runtime.account.name):
            # Packed for the account the campaign failed over from (re-queued since by a late "try
            # later" or an operator's retry), or for this one as configured before (made encrypted):
            # sent here it would fail unsent, again and again, or a text holding this vendor's
            # separator would break the request. It stays queued; the beat re-plans it onto this
            # account (``failover.replan_misfits``).
            results.append(Result(row.id, Next.DONE, state=AWAITS_REPLAN))
            continue
        opening = next_window_open(now, row.window, row.timezone)
        if opening > now:
            closed.setdefault(opening, []).append(row.id)
            results.append(Result(row.id, Next.LATER, delay=(opening - now).total_seconds(), state="window"))
        elif row.not_before is not None and row.not_before > now:
            results.append(Result(row.id, Next.LATER, delay=(row.not_before - now).total_seconds()))
        else:
            due.append(row)
    if closed:
        with sessions() as session:
            for opening, ids in closed.items():
                session.execute(
                    update(Chunk)
                    .where(Chunk.id.in_(ids), Chunk.state == ChunkState.QUEUED.value)
                    .values(not_before=opening, updated_at=db_now()),
                    execution_options={"synchronize_session": False},
                )
            session.commit()

    # Before any slot is reserved: a process's first round starts its loop (a thread, an event loop).
    loop = loop or sendloop.default()
    limiter, in_flight = runtime.limiter, runtime.in_flight
    deadline = time.monotonic() + LIMITER_WAIT
    pending = list(due)
    while pending:
        # An account that takes N requests at a time: a lease per request first, before any rate slot
        # or claim, so that a chunk waiting for the account's turn is never ``sending`` meanwhile.
        leases = _leases(in_flight, len(pending), deadline) if in_flight is not None else None
        if leases == []:
            results += [Result(r.id, Next.LATER, delay=1.0, state="in flight") for r in pending]
            break
        wanted = len(pending) if leases is None else len(leases)
        if limiter is None:
            waits = [0.0] * wanted
        else:
            try:
                waits = limiter.acquire_many(wanted, timeout=max(0.0, deadline - time.monotonic()))
            except RedisError as exc:  # Redis restarting: nothing claimed, the rest waits in the queue
                logger.warning("rate limiter of account %s unavailable: %s", limiter.account, exc)
                waits = []
        if not waits:
            _release(in_flight, leases or [])
            results += [Result(r.id, Next.LATER, delay=1.0, state="limiter") for r in pending]
            break
        reserved_at = time.monotonic()
        _observe(runtime, "waited", waits)
        batch, pending = pending[: len(waits)], pending[len(waits) :]
        slots = {row.id: reserved_at + wait for row, wait in zip(batch, waits, strict=True)}
        held = dict(zip((row.id for row in batch), leases or [], strict=False))
        _release(in_flight, (leases or [])[len(waits) :])
        try:
            results += _send_round(sessions, runtime, batch, slots, worker_id, loop, held)
        finally:  # each request gave its lease back with its answer; this is for every other way out
            _release(in_flight, list(held.values()))
    return results


def _leases(in_flight: InFlight, n: int, deadline: float) -> list[str]:
    """Up to ``n`` of the account's in-flight leases, waiting until ``deadline`` for the first."""
    try:
        return in_flight.acquire(n, timeout=max(0.0, deadline - time.monotonic()))
    except RedisError as exc:  # Redis restarting: nothing claimed, the rest waits in the queue
        logger.warning("in-flight leases of account %s unavailable: %s", in_flight.account, exc)
        return []


def _release(in_flight: InFlight | None, leases: Sequence[str]) -> None:
    """Give ``leases`` back. Best effort: a lease Redis did not take back expires by itself."""
    if in_flight is None or not leases:
        return
    try:
        in_flight.release(leases)
    except RedisError as exc:
        logger.warning("could not give back in-flight leases of account %s: %s", in_flight.account, exc)


async def _answered_then_released(
    runtime: AccountRuntime, send: Coroutine[Any, Any, SendAttempt], lease: str | None
) -> SendAttempt:
    """``send``, then its in-flight lease given back at once: the account's next request may leave as
    soon as this one's answer is in, not once the whole round is recorded."""
    try:
        return await send
    finally:
        if lease is not None:
            await asyncio.get_running_loop().run_in_executor(None, _release, runtime.in_flight, [lease])


def _send_round(
    sessions: sessionmaker[Session],
    runtime: AccountRuntime,
    batch: Sequence[ChunkRow],
    slots: dict[int, float],
    worker_id: str,
    loop: SendLoop,
    leases: dict[int, str],
) -> list[Result]:
    """Claim ``batch``, send the won chunks at their slots (each giving back its in-flight lease in
    ``leases`` once answered), record them all, then adapt the account's rate (after the record, so a
    Redis outage cannot undo it).

    A SIGTERM (Celery cancels a task so, ``docker stop`` and systemd stop a worker so) from just before
    the claim until the round is recorded is held, and goes on after the record: as the claim commits,
    the chunks would be left ``sending`` unsent, and once the round is handed to the loop, its requests
    would go out unrecorded (either way swept ``unknown``). Meanwhile it stops the round's requests
    still waiting for their slot (not sent: back to the queue); those on the wire are answered and
    recorded first."""
    if not loop.alive:  # nothing claimed: the chunks wait in the queue for a live process
        raise RuntimeError("the sending loop is not running")
    with _terminations_held() as hold:
        # The claim's send deadline: its lease ends (by the database's clock) no earlier than this, as
        # it is read before the claim. A request not on its way by then stays unsent (a stalled
        # worker): the sweep may call its chunk unknown, and the beat send it again.
        send_by = time.monotonic() + runtime.lease_seconds
        with sessions() as session:
            claimed = claim_chunks(
                session,
                [row.id for row in batch],
                worker_id,
                runtime.lease_seconds,
                account=runtime.account.name,
                caps=runtime.caps,
            )
        results = [Result(r.id, Next.DONE, state="claimed elsewhere") for r in batch if r.id not in claimed]
        won = [(row, claimed[row.id]) for row in batch if row.id in claimed]
        if not won:
            return results
        waiting = _Waiting()
        # Before the round is handed over: a termination already held stops it before anything waits.
        hold.when_signalled(partial(loop.call, waiting.stop))
        future = loop.submit(
            [
                _answered_then_released(
                    runtime,
                    _send_claimed(runtime, row, claim, slots[row.id], waiting, send_by),
                    leases.get(row.id),
                )
                for row, claim in won
            ]
        )
        interrupted: BaseException | None = None
        try:
            attempts = loop.wait(future)
        except BaseException as exc:
            # Interrupted otherwise (a SIGINT; a signal handled by raising, as a Celery pool child does
            # with SIGTERM when nothing holds it): the same, then the interruption goes on.
            interrupted = exc
            loop.call(waiting.stop)
            attempts = loop.wait(future)
        results += record_attempts(sessions, worker_id, attempts)
        _observe(runtime, "attempts", attempts)
        verdicts = [a.verdict for a in attempts]
        accepted = sum(1 for v in verdicts if v.state is ChunkState.ACCEPTED)
        if any(v.error_class is ErrorClass.RATE_LIMITED for v in verdicts):
            _adapt(runtime.limiter, "penalise")
        elif accepted:
            _adapt(runtime.limiter, "reward", accepted)
    if interrupted is not None:
        raise interrupted
    return results


class _Hold:
    """The SIGTERMs :func:`_terminations_held` holds, and what to do at once when one comes."""

    def __init__(self) -> None:
        self.signals: list[tuple[int, FrameType | None]] = []
        self._react: Callable[[], object] | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append((signum, frame))
        if self._react is not None:
            self._react()

    def when_signalled(self, react: Callable[[], object]) -> None:
        """Call ``react`` when a SIGTERM comes, and now if one came already."""
        self._react = react
        if self.signals:
            react()


@contextmanager
def _terminations_held() -> Iterator[_Hold]:
    """A SIGTERM meanwhile waits until the block is done; then it goes on as it would have (the handler
    it came for runs). A second SIGTERM (systemd signals every process of a service, and Celery's main
    process signals its children too) is held the same. A Celery pool child's handler (billiard's) puts
    the default action back when it first runs, so the second SIGTERM would kill the process outright:
    the default is held too, and then taken. Signal handlers are the main thread's: in another thread
    nothing is held (nor needed: the signal interrupts only the main thread)."""
    hold = _Hold()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield hold
        return
    signal.signal(signal.SIGTERM, hold.handle)
    try:
        yield hold
    finally:
        signal.signal(signal.SIGTERM, previous)
        if hold.signals:
            if callable(previous):
                previous(*hold.signals[0])
            else:  # the default action: the process ends now, as it would have
                signal.raise_signal(signal.SIGTERM)


class _Waiting:
    """A round's requests still waiting for their slot, to be given up when the task is terminated.
    Used on the sending loop only."""

    def __init__(self) -> None:
        self.stopped = False
        self._tasks: set[asyncio.Task[float | None]] = set()

    async def until(self, limiter: AccountLimiter | LocalLimiter | None, slot: float) -> float | None:
        """:func:`_on_time`, or None at once if the round is stopped meanwhile."""
        if self.stopped:
            return None
        task = asyncio.ensure_future(_on_time(limiter, slot))
        self._tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if self.stopped and task.cancelled():
                return None
            raise
        finally:
            self._tasks.discard(task)

    def stop(self) -> None:
        self.stopped = True
        for task in self._tasks:
            task.cancel()


async def _send_claimed(
    runtime: AccountRuntime,
    row: ChunkRow,
    claimed: Claimed,
    slot: float,
    waiting: _Waiting,
    send_by: float = float("inf"),
) -> SendAttempt:
    """Build, wait for the request's limiter slot (``time.monotonic()`` value), send, interpret; runs
    on the sending loop. Never raises: what cannot be explained becomes ``unknown`` at once. A
    request still waiting when ``waiting`` is stopped, or whose claim's deadline ``send_by``
    (``time.monotonic()``) passed, is not sent (its chunk goes back to the queue)."""
    started = runtime.clock()
    if not claimed.recipients:  # withdrawn or settled since it was queued: nothing to send
        return SendAttempt(row, claimed, Verdict(ChunkState.FAILED, sent=False), started, started)
    try:
        request = build_request(runtime, row, claimed.pairs)
    except Exception as exc:
        # A packing or content problem found before sending: nothing left the machine. Anything
        # unforeseen too: raised, it would lose the whole round's answers (gather gives up on them).
        if not isinstance(exc, ValueError | InputError | UnsupportedMethodError):
            logger.exception("could not build the request of chunk %s", row.id)
        cls = ErrorClass.BAD_CONTENT if isinstance(exc, InputError) else ErrorClass.BAD_REQUEST
        verdict = Verdict(ChunkState.FAILED, cls, detail=str(exc), sent=False)
        return SendAttempt(row, claimed, verdict, started, runtime.clock())
    try:
        on_time = await waiting.until(runtime.limiter, slot)
    except RedisError as exc:  # no new slot to be had: nothing left, the chunk waits in the queue
        on_time = None
        logger.warning("rate limiter of account %s unavailable: %s", runtime.account.name, exc)
    if on_time is not None and time.monotonic() >= send_by:
        # Its lease is over: the chunk may be unknown, and sent again by the beat meanwhile.
        error = NotSentError("its claim's lease ran out before it could leave")
        verdict = replace(interpret(runtime.vendor, error=error), counted=False)
        return SendAttempt(row, claimed, verdict, started, runtime.clock(), request)
    if on_time is None:  # nothing left: the chunk goes back to the queue, its retry budget unspent
        why = "the task was stopped" if waiting.stopped else "no new one came soon"
        error = NotSentError(f"its rate limiter slot passed; {why}")
        verdict = replace(interpret(runtime.vendor, error=error), counted=False)
        return SendAttempt(row, claimed, verdict, started, runtime.clock(), request)
    started = runtime.clock()
    t0 = time.monotonic()
    body: str | None = None
    url: str | None = None
    try:
        try:
            response = await runtime.transport.asend(request)
            body, url = response.text, response.url_used
            verdict = interpret(runtime.vendor, body=body)
        except (NotSentError, OutcomeUnknownError, HTTPStatusError) as exc:
            verdict = interpret(runtime.vendor, error=exc)
    except Exception as exc:  # it may have left: as a swept lease would, call it unknown now
        logger.exception("unexpected failure sending chunk %s", row.id)
        verdict = Verdict(ChunkState.UNKNOWN, detail=f"unexpected error: {exc!r}")
    finished = started + timedelta(seconds=time.monotonic() - t0)
    if verdict.state is ChunkState.UNKNOWN and body is not None:
        _log_unclassified(runtime, row, request, body)
    return SendAttempt(row, claimed, verdict, started, finished, request, body, url)


UNCLASSIFIED_LOG_CHARS = 2000  # of an answer body nobody could classify


def _log_unclassified(runtime: AccountRuntime, row: ChunkRow, request: Request, body: str) -> None:
    """An answer the client cannot classify (a code missing from the vendor's table, a page that is
    neither a batch id nor a code) leaves its chunk unknown: logged with its body, secrets masked, so
    that a person can settle the chunk and the vendor's table can be extended."""
    shown = request.redact(body, runtime.account.credentials().password)[:UNCLASSIFIED_LOG_CHARS]
    logger.warning(
        "account %s (%s), chunk %s: an answer the client cannot classify, left unknown: %r",
        runtime.account.name, request.path, row.id, shown,
    )  # fmt: skip


async def _on_time(limiter: AccountLimiter | LocalLimiter | None, slot: float) -> float | None:
    """Sleep until ``slot`` (a ``time.monotonic()`` value) and return when the request may go: at its
    slot, or at a new one when this process woke more than the policy's ``max_late_s`` after it (the
    claim waited on a busy store, the CPU was shared). Sent late, the request would land among the
    next ones, sent on time, and fill the vendor's one-second window past its limit; the missed slot
    is left unused instead. None when no new slot comes within :data:`LATE_SLOT_WAIT`."""
    deadline = time.monotonic() + LATE_SLOT_WAIT
    while True:
        if (wait := slot - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        if limiter is None or time.monotonic() - slot <= limiter.policy.max_late_s:
            return slot
        if deadline - time.monotonic() <= 0:
            return None
        new = await _next_slot(limiter, deadline)
        if new is None:
            return None
        slot = new


async def _next_slot(limiter: AccountLimiter | LocalLimiter, deadline: float) -> float | None:
    """One new slot, as a ``time.monotonic()`` value, or None if none comes before ``deadline``.

    Like ``acquire_many(1)``, but the waiting for a far slot is done on the loop: a thread of the
    loop's default executor is held only for one limiter call (a Redis round trip). Blocked there
    until their slots, many late requests would take every thread, and aiohttp resolves host names
    on them: requests due now would leave late. Cancellable while it waits (a stopped round)."""
    loop = asyncio.get_running_loop()
    lookahead = limiter.policy.lookahead_s
    while (remaining := deadline - time.monotonic()) >= 0:
        call = loop.run_in_executor(None, partial(_reserve_one, limiter, min(remaining, lookahead)))
        try:
            # A Redis that stops answering (no socket timeout) would hold the claimed chunk
            # ``sending`` unsent for as long; the thread is left to finish, its slot unused.
            given_at, waits, wait = await asyncio.wait_for(call, max(remaining, lookahead))
        except TimeoutError:
            logger.warning("rate limiter of account %s did not answer in time", limiter.account)
            return None
        if waits:
            return given_at + waits[0]
        if wait > remaining:
            return None
        await asyncio.sleep(max(wait - lookahead, 0.0))
    return None


def _reserve_one(limiter: AccountLimiter | LocalLimiter, max_wait: float) -> tuple[float, list[float], float]:
    """``limiter.reserve_many(1, max_wait)`` and when it answered, read at once (the caller's loop
    may resume later)."""
    waits, wait = limiter.reserve_many(1, max_wait)
    return time.monotonic(), waits, wait


def record_attempts(
    sessions: sessionmaker[Session], worker_id: str, attempts: Sequence[SendAttempt]
) -> list[Result]:
    """Record what ``attempts`` came to, in ONE transaction, and say what comes next for each.

    The attempts' chunks still theirs (``sending`` by this worker; or, after a sweep, ``unknown``
    or re-queued by a retry and not sent again: the late answer settles it) are locked; an outcome
    that leaves the chunk to be sent again depends on its campaign, whose row is locked too (a cancel
    waits, and then closes what was re-queued; an answer after the cancel ends the chunk). Splits
    create their children and account problems pause the campaign in the same transaction. A chunk
    no longer the attempt's (sent again, or settled by a report) keeps the answer as evidence only.
    A busy store is waited for (up to :data:`RECORD_PATIENCE`), never a reason to drop the answers.
    """
    if not attempts:
        return []
    by_id = {a.chunk.id: a for a in attempts}
    proofs = {
        i: a.claimed
        for i, a in by_id.items()
        if a.chunk.requeued_from_unknown and a.verdict.error_class is ErrorClass.DUPLICATE
    }
    if proofs:
        with sessions() as session:
            for i in sent_elsewhere(session, proofs):
                by_id[i] = replace(by_id[i], sent_elsewhere=True)
    hours = {i: a for i, a in by_id.items() if a.verdict.outside_hours and a.verdict.code}
    if hours:
        with sessions() as session:
            for code in {a.verdict.code for a in hours.values()}:
                ids = [i for i, a in hours.items() if a.verdict.code == code]
                for i, since in answered_since(session, ids, code or "").items():
                    by_id[i] = replace(by_id[i], outside_hours_since=since)
    decisions = {i: decide(a) for i, a in by_id.items()}
    waited, tries = 0.0, 0
    while True:
        try:
            return _record(sessions, worker_id, by_id, dict(decisions))
        except OperationalError as exc:
            # A busy store (SQLite's "database is locked" past its busy timeout, a PostgreSQL lock
            # timeout, deadlock or restart): the transaction was rolled back whole, so it is tried
            # again. Giving up would lose the vendor's answer: the chunk would be swept ``unknown``.
            if waited >= RECORD_PATIENCE:
                raise
            pause, tries = min(2.0, 0.05 * 2**tries), tries + 1
            logger.warning("store busy recording %d attempts (%s); again in %.2f s", len(by_id), exc, pause)
            time.sleep(pause)
            waited += pause


def _record(
    sessions: sessionmaker[Session],
    worker_id: str,
    by_id: dict[int, SendAttempt],
    decisions: dict[int, Decision],
) -> list[Result]:
    """:func:`record_attempts`' one transaction."""
    results: list[Result] = []
    campaign_ids = {a.chunk.campaign_id for i, a in by_id.items() if decisions[i].waits}
    with sessions() as session:
        # Campaign rows before chunk rows, the order a cancel or a retry takes them in (PostgreSQL
        # would otherwise deadlock); read again once the chunks are locked (SQLite's write lock is
        # taken only then).
        campaign_states(session, campaign_ids)
        ours = own_chunks(session, worker_id, {i: a.claimed.attempts for i, a in by_id.items()})
        states = campaign_states(session, campaign_ids)
        for i in ours:
            if decisions[i].waits:
                decisions[i] = decide(by_id[i].in_campaign(states[by_id[i].chunk.campaign_id]))
        outcomes = {}
        for i, decision in decisions.items():
            if i not in ours:
                outcomes[i] = decision.outcome
                results.append(Result(i, Next.DONE, state=f"late {decision.outcome.state.value}"))
                if decision.outcome.state is ChunkState.ACCEPTED:
                    # Its recipients re-planned since (an operator's re-send, moved by a failover) and
                    # not sent again yet: this acceptance spares them the second send.
                    a = by_id[i]
                    accept_request(session, i, a.verdict.batch_id, a.chunk.account, a.started, LATE_SETTLED)
                continue
            decision = _act(session, by_id[i], decision, states)
            if ours[i] != ChunkState.SENDING:  # swept: unknown, or re-queued by a retry since
                decision = _noted(decision, LATE_SETTLED)
            outcomes[i] = decision.outcome
            results.append(decision.result)
        record_outcomes(session, worker_id, outcomes, ours)
        session.commit()
    return results


def _act(session: Session, attempt: SendAttempt, decision: Decision, states: dict[int, str]) -> Decision:
    """Carry out what ``decision`` asks beyond recording the outcome: create a split's children, pause
    the campaign, re-open a campaign sent or completed meanwhile (a late answer re-queued a chunk of it).
    Returns the decision with what was created. Caller's transaction."""
    campaign_id = attempt.chunk.campaign_id
    finished = states.get(campaign_id)
    if decision.waits and finished in (CampaignState.SENT, CampaignState.COMPLETED):
        move(
            session, campaign_id, CampaignState(finished), CampaignState.RUNNING, SYSTEM, reason="late answer"
        )
        states[campaign_id] = CampaignState.RUNNING
    if decision.pause is not None:
        # An account problem pauses the campaign only if it is still on that account: a late answer
        # from one it failed over from (its request swept unknown there) must not stop the new one.
        now_on = session.execute(select(Campaign.account).where(Campaign.id == campaign_id)).scalar_one()
        if now_on == attempt.chunk.account:
            move(
                session,
                campaign_id,
                CampaignState.RUNNING,
                CampaignState.PAUSED,
                SYSTEM,
                reason=decision.pause,
            )
        else:
            logger.warning(
                "campaign %s: account %s answered %r for chunk %s, but the campaign is on %s now: not paused",
                campaign_id, attempt.chunk.account, decision.pause, attempt.chunk.id, now_on,
            )  # fmt: skip
            # Queued, not held for a resume: the task hands it back, to go out on the new account.
            decision = replace(
                decision, pause=None, result=Result(attempt.chunk.id, Next.LATER, delay=1.0, state="queued")
            )
    if not decision.split:
        return decision
    children = split_chunk(session, attempt.chunk.id, decision.split, SYSTEM)
    decision = _noted(decision, f"split into chunks {list(children)}")
    return replace(decision, result=replace(decision.result, children=children))


def _noted(decision: Decision, note: str) -> Decision:
    detail = "; ".join(part for part in (decision.outcome.detail, note) if part)
    return replace(decision, outcome=replace(decision.outcome, detail=detail))


def _adapt(
    limiter: AccountLimiter | LocalLimiter | None, change: Literal["reward", "penalise"], count: int = 1
) -> None:
    """Adapt the account's rate after answers that are already recorded. Best effort: a Redis that
    is down (restarting) must not undo the record, and the next ``acquire`` fails on it anyway."""
    if limiter is None:
        return
    try:
        if change == "penalise":
            limiter.penalise()
        else:
            limiter.reward(count) if count != 1 else limiter.reward()
    except RedisError as exc:
        logger.warning("could not %s the rate of account %s: %s", change, limiter.account, exc)
