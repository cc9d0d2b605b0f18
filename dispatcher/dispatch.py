"""Sending one chunk exactly once: pace, claim, build, send, record, decide.

This is the worker's library side (DESIGN.md, "Exactly once"); the Celery task around it only
loads the runtime and schedules what :func:`send_chunk` says comes next. Pure decisions
(:func:`interpret`, :func:`next_window_open`) are apart from the I/O.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.backoff import Action, retry_policy
from dispatcher.chunker import chunk_ref
from dispatcher.config import AccountConfig
from dispatcher.errors import (
    HTTPStatusError,
    InputError,
    NotSentError,
    OutcomeUnknownError,
    StateError,
    UnsupportedMethodError,
)
from dispatcher.ratelimit import AccountLimiter, LocalLimiter
from dispatcher.store import (
    Campaign,
    CampaignState,
    Chunk,
    ChunkState,
    Outcome,
    Recipient,
    RecipientState,
    audit,
    claim_chunk,
    finish_chunk,
    transition,
    utcnow,
)
from dispatcher.store.chunks import Claimed, claim_chunks, finish_chunks
from dispatcher.vendors.registry import VendorModule
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import AnswerKind, ErrorClass, Request

logger = logging.getLogger(__name__)

SYSTEM = "system"
LEASE_SECONDS = 120.0  # longer than the transport's timeout: a live sender never loses its lease
LIMITER_WAIT = 30.0  # seconds a task waits for a token before handing the chunk back to the queue


class Next(enum.StrEnum):
    """What the task does after :func:`send_chunk`."""

    DONE = "done"  # nothing more (accepted, failed, unknown, or another worker had it)
    LATER = "later"  # still queued: send again after ``delay``
    SPLIT = "split"  # children were queued: send them
    PAUSED = "paused"  # the campaign was paused (an account problem)


@dataclass(frozen=True)
class Result:
    chunk_id: int
    next: Next
    delay: float = 0.0
    children: tuple[int, ...] = ()
    state: str = ""


@dataclass(frozen=True)
class Verdict:
    """What an answer (or a transport failure) means for the chunk."""

    state: ChunkState
    error_class: ErrorClass | None = None
    code: str | None = None
    detail: str | None = None
    batch_id: str | None = None
    sent: bool = True  # the request may have reached the vendor


def interpret(vendor: VendorModule, *, body: str | None = None, error: Exception | None = None) -> Verdict:
    """Turn a vendor's answer body, or the transport's error, into a verdict (pure)."""
    if isinstance(error, NotSentError):
        return Verdict(ChunkState.QUEUED, ErrorClass.RETRY_LATER, detail=str(error), sent=False)
    if isinstance(error, OutcomeUnknownError):
        # Sent, no answer: the vendor may have accepted it. Never re-sent automatically.
        return Verdict(ChunkState.UNKNOWN, detail=str(error))
    if isinstance(error, HTTPStatusError):
        code = f"HTTP {error.status_code}"
        if error.status_code == 429:
            return Verdict(ChunkState.QUEUED, ErrorClass.RATE_LIMITED, code, str(error))
        if error.status_code >= 500:
            return Verdict(ChunkState.QUEUED, ErrorClass.RETRY_LATER, code, str(error))
        return Verdict(ChunkState.FAILED, ErrorClass.BAD_REQUEST, code, str(error))
    if error is not None:
        raise error
    assert body is not None
    answer = vendor.parse_send(body)
    if answer.kind is AnswerKind.OK:
        return Verdict(ChunkState.ACCEPTED, batch_id=answer.value)
    if answer.kind is AnswerKind.UNEXPECTED:
        # Neither a batch id nor a code (a proxy's page, a truncated body): it may have been accepted.
        return Verdict(ChunkState.UNKNOWN, detail=f"unexpected answer: {answer.value[:200]}")
    assert answer.code is not None
    info = vendor.classify(answer.code)
    detail = f"{info.meaning_en}{': ' + answer.detail if answer.detail else ''}"
    return Verdict(ChunkState.FAILED, info.error_class, str(answer.code), detail)


def verdict_outcome(
    verdict: Verdict,
    state: ChunkState,
    started: datetime,
    finished: datetime,
    form: Mapping[str, str] | None,
    body: str | None,
    url: str | None,
    *,
    not_before: datetime | None = None,
    detail: str | None = None,
) -> Outcome:
    """What the store records for a chunk leaving ``sending`` in ``state`` after ``verdict``."""
    return Outcome(
        state,
        started,
        finished,
        batch_id=verdict.batch_id,
        error_class=verdict.error_class.value if verdict.error_class else None,
        code=verdict.code,
        detail=detail if detail is not None else verdict.detail,
        not_before=not_before,
        request=form,
        answer=body,
        url_used=url,
    )


def in_window(now: datetime, window: tuple[int, int], tz: str) -> bool:
    if window == (0, 1440):
        return True
    local = now.astimezone(ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    return window[0] <= minute < window[1]


def next_window_open(now: datetime, window: tuple[int, int], tz: str) -> datetime:
    """When sending may next start: ``now`` inside the window, else the window's next opening."""
    if in_window(now, window, tz):
        return now
    local = now.astimezone(ZoneInfo(tz))
    opening = local.replace(hour=window[0] // 60, minute=window[0] % 60, second=0, microsecond=0)
    if opening <= local:
        opening += timedelta(days=1)
    return opening.astimezone(now.tzinfo)


@dataclass
class AccountRuntime:
    """What a worker process keeps per vendor account: its vendor module, transport and limiter."""

    account: AccountConfig
    vendor: VendorModule
    transport: Transport
    limiter: AccountLimiter | LocalLimiter | None
    clock: Callable[[], datetime] = field(default=utcnow)
    lease_seconds: float = LEASE_SECONDS


def _load(session: Session, chunk_id: int) -> tuple[Chunk, Campaign] | None:
    row = session.execute(
        select(Chunk, Campaign).join(Campaign, Campaign.id == Chunk.campaign_id).where(Chunk.id == chunk_id)
    ).first()
    return None if row is None else (row[0], row[1])


def _defer(session: Session, chunk_id: int, until: datetime, now: datetime) -> None:
    session.execute(
        update(Chunk)
        .where(Chunk.id == chunk_id, Chunk.state == ChunkState.QUEUED.value)
        .values(not_before=until, updated_at=now)
    )
    session.commit()


def build_request(
    runtime: AccountRuntime, chunk: Chunk | _ChunkView, recipients: list[tuple[str, str]]
) -> Request:
    account, vendor = runtime.account, runtime.vendor
    mobiles = [mobile for mobile, _ in recipients]
    if chunk.text is not None:
        return vendor.build_send(
            account.credentials(), mobiles, chunk.text, ref=chunk.ref, encrypted=account.encrypted
        )
    return vendor.build_personalised(
        account.credentials(), recipients, separators=account.separators(), ref=chunk.ref
    )


def send_chunk(
    sessions: sessionmaker[Session], runtime: AccountRuntime, chunk_id: int, worker_id: str
) -> Result:
    """Send chunk ``chunk_id`` if it is still queued, its campaign running and inside its window."""
    with sessions() as session:
        loaded = _load(session, chunk_id)
        if loaded is None:
            return Result(chunk_id, Next.DONE, state="missing")
        chunk, campaign = loaded
        if chunk.state != ChunkState.QUEUED or campaign.state != CampaignState.RUNNING:
            return Result(chunk_id, Next.DONE, state=chunk.state)
        now = runtime.clock()
        window = (campaign.window_start, campaign.window_end)
        opening = next_window_open(now, window, campaign.timezone)
        if opening > now:
            _defer(session, chunk_id, opening, now)
            return Result(chunk_id, Next.LATER, delay=(opening - now).total_seconds(), state="window")
        if chunk.not_before is not None and chunk.not_before > now:
            return Result(chunk_id, Next.LATER, delay=(chunk.not_before - now).total_seconds())

    # Pace before claiming, so the lease does not tick while waiting for the account's turn.
    if runtime.limiter is not None and not runtime.limiter.acquire(timeout=LIMITER_WAIT):
        return Result(chunk_id, Next.LATER, delay=1.0, state="limiter")

    with sessions() as session:
        if not claim_chunk(session, chunk_id, worker_id, runtime.lease_seconds, now=runtime.clock()):
            return Result(chunk_id, Next.DONE, state="claimed elsewhere")
        chunk, campaign = _load(session, chunk_id) or (chunk, campaign)
        recipients = [
            (mobile or "", text or "")
            for mobile, text in session.execute(
                select(Recipient.mobile, Recipient.text)
                .where(Recipient.chunk_id == chunk_id)
                .order_by(Recipient.position)
            )
        ]
        started = runtime.clock()
        try:
            request = build_request(runtime, chunk, recipients)
        except (ValueError, InputError, UnsupportedMethodError) as exc:
            # A packing or content problem found before sending: nothing left the machine.
            cls = ErrorClass.BAD_CONTENT if isinstance(exc, InputError) else ErrorClass.BAD_REQUEST
            outcome = Outcome(ChunkState.FAILED, started, runtime.clock(), error_class=cls, detail=str(exc))
            finish_chunk(session, chunk_id, worker_id, outcome)
            return Result(chunk_id, Next.DONE, state="failed")

        body: str | None = None
        url: str | None = None
        error: Exception | None = None
        t0 = time.monotonic()
        try:
            response = runtime.transport.send(request)
            body, url = response.text, response.url_used
        except (NotSentError, OutcomeUnknownError, HTTPStatusError) as exc:
            error = exc
        verdict = interpret(runtime.vendor, body=body, error=error)
        finished = started + timedelta(seconds=time.monotonic() - t0)
        return _settle(
            session, runtime, chunk, campaign, worker_id, request, verdict, started, finished, body, url
        )


def _settle(
    session: Session,
    runtime: AccountRuntime,
    chunk: Chunk,
    campaign: Campaign,
    worker_id: str,
    request: Request,
    verdict: Verdict,
    started: datetime,
    finished: datetime,
    body: str | None,
    url: str | None,
    *,
    adapt: bool = True,
) -> Result:
    """Record the verdict in the transaction that leaves ``sending`` and decide what comes next."""
    limiter = runtime.limiter if adapt else None  # the group path adapted when the answer came

    def finish(state: ChunkState, *, not_before: datetime | None = None, detail: str | None = None) -> bool:
        outcome = verdict_outcome(
            verdict, state, started, finished, request.form, body, url, not_before=not_before, detail=detail
        )
        return finish_chunk(session, chunk.id, worker_id, outcome)

    if verdict.state is ChunkState.ACCEPTED:
        finish(ChunkState.ACCEPTED)
        _adapt(limiter, "reward")
        return Result(chunk.id, Next.DONE, state="accepted")
    if verdict.state is ChunkState.UNKNOWN:
        finish(ChunkState.UNKNOWN)
        return Result(chunk.id, Next.DONE, state="unknown")

    error_class = verdict.error_class or ErrorClass.UNKNOWN
    decision = retry_policy(error_class, chunk.attempts, recipients=chunk.recipient_count)
    if decision.action is Action.RETRY:
        not_before = finished + timedelta(seconds=decision.delay_s)
        finish(ChunkState.QUEUED, not_before=not_before)
        if error_class is ErrorClass.RATE_LIMITED:
            _adapt(limiter, "penalise")
        return Result(chunk.id, Next.LATER, delay=decision.delay_s, state="queued")
    if decision.action is Action.SPLIT:
        children = _split(session, chunk)
        finish(ChunkState.FAILED, detail=f"{verdict.detail}; split into chunks {list(children)}")
        return Result(chunk.id, Next.SPLIT, children=children, state="split")
    if decision.action is Action.PAUSE_CAMPAIGN:
        # Not accepted: the chunk goes back to the queue and leaves when a person resumes.
        finish(ChunkState.QUEUED)
        with contextlib.suppress(StateError):  # already paused or cancelled by someone else
            transition(session, campaign.id, CampaignState.PAUSED, SYSTEM, reason=verdict.detail)
        return Result(chunk.id, Next.PAUSED, state="paused")
    if decision.action is Action.DONT_RESEND:
        # The vendor already has this submission (entinfo -20 on a known rrid): it was accepted.
        finish(ChunkState.ACCEPTED, detail=verdict.detail)
        return Result(chunk.id, Next.DONE, state="accepted")
    finish(ChunkState.FAILED, detail=f"{verdict.detail} ({decision.reason})")
    if error_class is ErrorClass.RATE_LIMITED:  # gave up on this one; the account still slows down
        _adapt(limiter, "penalise")
    return Result(chunk.id, Next.DONE, state="failed")


def _adapt(
    limiter: AccountLimiter | LocalLimiter | None, change: Literal["reward", "penalise"], count: int = 1
) -> None:
    """Adapt the account's rate after an answer that is already recorded. Best effort: a Redis that
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


def _split(session: Session, chunk: Chunk) -> tuple[int, ...]:
    """Halve a multi-number chunk this worker holds: two queued children take its recipients.

    Runs while the parent is ``sending`` by this worker (nobody else can touch it); the parent then
    fails with no recipients left, so only the children's numbers go out again.
    """
    ids = list(
        session.execute(
            select(Recipient.id).where(Recipient.chunk_id == chunk.id).order_by(Recipient.position)
        ).scalars()
    )
    half = (len(ids) + 1) // 2
    last_seq = session.execute(
        select(Chunk.seq).where(Chunk.campaign_id == chunk.campaign_id).order_by(Chunk.seq.desc()).limit(1)
    ).scalar_one()
    children: list[int] = []
    now = utcnow()
    for offset, part in enumerate((ids[:half], ids[half:]), start=1):
        if not part:
            continue
        seq = last_seq + offset
        child_id = session.execute(
            insert(Chunk)
            .values(
                campaign_id=chunk.campaign_id,
                seq=seq,
                ref=chunk_ref(chunk.campaign_id, seq),
                method=chunk.method,
                text=chunk.text,
                recipient_count=len(part),
                state=ChunkState.QUEUED.value,
                parent_id=chunk.id,
                created_at=now,
                updated_at=now,
            )
            .returning(Chunk.id)
        ).scalar_one()
        session.execute(
            update(Recipient)
            .where(Recipient.id.in_(part))
            .values(chunk_id=child_id, state=RecipientState.QUEUED.value)
        )
        children.append(child_id)
    audit(session, SYSTEM, "chunk.split", chunk.campaign_id, chunk=chunk.id, children=children)
    session.commit()
    return tuple(children)


# ---- a task's group of chunks: loaded, claimed, sent and recorded together ---------------------------


@dataclass(frozen=True)
class GroupRow:
    """What deciding whether to send a chunk needs: its own columns and its campaign's."""

    id: int
    state: str
    not_before: datetime | None
    ref: str
    text: str | None
    recipient_count: int
    campaign_id: int
    account: str
    campaign_state: str
    window: tuple[int, int]
    timezone: str


_GROUP_SELECT = select(
    Chunk.id,
    Chunk.state,
    Chunk.not_before,
    Chunk.ref,
    Chunk.text,
    Chunk.recipient_count,
    Chunk.campaign_id,
    Campaign.account,
    Campaign.state,
    Campaign.window_start,
    Campaign.window_end,
    Campaign.timezone,
).join(Campaign, Campaign.id == Chunk.campaign_id)


def load_group(sessions: sessionmaker[Session], chunk_ids: Sequence[int]) -> list[GroupRow]:
    """The chunks of ``chunk_ids`` that exist, with their campaigns, in one SELECT."""
    with sessions() as session:
        rows = session.execute(_GROUP_SELECT.where(Chunk.id.in_(list(chunk_ids)))).tuples()
        return [
            GroupRow(a, b, c, d, e, f, g, h, i, (j, k), tz) for a, b, c, d, e, f, g, h, i, j, k, tz in rows
        ]


@dataclass(frozen=True)
class _Sent:
    """One claimed chunk after its turn: sent (verdict), failed before sending, or not sent at all."""

    row: GroupRow
    claimed: Claimed
    request: Request | None = None
    verdict: Verdict | None = None  # None: no token in time, nothing left the machine
    started: datetime | None = None
    finished: datetime | None = None
    body: str | None = None
    url: str | None = None


def _send_claimed(runtime: AccountRuntime, row: GroupRow, claimed: Claimed, slot: float) -> _Sent:
    """Build, wait for the request's limiter slot (``time.monotonic()`` value), send, interpret; runs
    on a sending thread. Never raises: what cannot be explained becomes ``unknown`` at once."""
    started = runtime.clock()
    try:
        request = build_request(runtime, _ChunkView(row.text, row.ref), list(claimed.recipients))
    except (ValueError, InputError, UnsupportedMethodError) as exc:
        # A packing or content problem found before sending: nothing left the machine.
        cls = ErrorClass.BAD_CONTENT if isinstance(exc, InputError) else ErrorClass.BAD_REQUEST
        verdict = Verdict(ChunkState.FAILED, cls, detail=str(exc), sent=False)
        return _Sent(row, claimed, None, verdict, started, runtime.clock())
    if (wait := slot - time.monotonic()) > 0:
        time.sleep(wait)
    started = runtime.clock()
    t0 = time.monotonic()
    body: str | None = None
    url: str | None = None
    try:
        try:
            response = runtime.transport.send(request)
            body, url = response.text, response.url_used
            verdict = interpret(runtime.vendor, body=body)
        except (NotSentError, OutcomeUnknownError, HTTPStatusError) as exc:
            verdict = interpret(runtime.vendor, error=exc)
    except Exception as exc:  # it may have left: as a swept lease would, call it unknown now
        logger.exception("unexpected failure sending chunk %s", row.id)
        verdict = Verdict(ChunkState.UNKNOWN, detail=f"unexpected error: {exc!r}")
    finished = started + timedelta(seconds=time.monotonic() - t0)
    return _Sent(row, claimed, request, verdict, started, finished, body, url)


@dataclass(frozen=True)
class _ChunkView:
    """The two chunk fields :func:`build_request` reads."""

    text: str | None
    ref: str


def send_group(
    sessions: sessionmaker[Session],
    runtime: AccountRuntime,
    rows: Sequence[GroupRow],
    worker_id: str,
    pool: Executor | None = None,
) -> list[Result]:
    """:func:`send_chunk` for a task's chunks of one account, with a handful of statements in all.

    Window and state checks from one SELECT (:func:`load_group`); ONE conditional UPDATE claims
    every due chunk (:func:`claim_chunks`: duplicates win nothing); the won chunks are sent
    concurrently on ``pool``, each after its own limiter token; then ONE transaction records every
    plain outcome (:func:`finish_chunks`: accepted, unknown, failed, retry later), and chunks that
    got no token go back to the queue unsent. A split or an account problem goes through the
    single-chunk code (:func:`_settle`) after that, with the chunk still ``sending`` by this worker.
    """
    now = runtime.clock()
    results: list[Result] = []
    due: list[GroupRow] = []
    closed: dict[datetime, list[int]] = {}
    for row in rows:
        if row.state != ChunkState.QUEUED or row.campaign_state != CampaignState.RUNNING:
            results.append(Result(row.id, Next.DONE, state=row.state))
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
                    .values(not_before=opening, updated_at=now),
                    execution_options={"synchronize_session": False},
                )
            session.commit()
    if not due:
        return results

    limiter = runtime.limiter
    deadline = time.monotonic() + LIMITER_WAIT
    pending = list(due)
    while pending:
        # Tokens first, then the claim: a chunk is ``sending`` only once its slot is near, so a
        # worker killed while waiting for the account's turn strands nothing in ``sending``.
        if limiter is None:
            waits = [0.0] * len(pending)
        else:
            try:
                waits = limiter.acquire_many(len(pending), timeout=max(0.0, deadline - time.monotonic()))
            except RedisError as exc:  # Redis restarting: nothing claimed, the rest waits in the queue
                logger.warning("rate limiter of account %s unavailable: %s", limiter.account, exc)
                waits = []
        if not waits:
            results += [Result(r.id, Next.LATER, delay=1.0, state="limiter") for r in pending]
            break
        reserved_at = time.monotonic()
        batch, pending = pending[: len(waits)], pending[len(waits) :]
        slots = {row.id: reserved_at + wait for row, wait in zip(batch, waits, strict=True)}
        results += _send_round(sessions, runtime, batch, slots, worker_id, now, pool)
        now = runtime.clock()
    return results


def _send_round(
    sessions: sessionmaker[Session],
    runtime: AccountRuntime,
    batch: Sequence[GroupRow],
    slots: dict[int, float],
    worker_id: str,
    now: datetime,
    pool: Executor | None,
) -> list[Result]:
    """Claim ``batch`` (one UPDATE), send the won chunks at their slots, record all in one transaction,
    then adapt the account's rate (after the record, so a Redis outage cannot undo it)."""
    with sessions() as session:
        claimed = claim_chunks(session, [row.id for row in batch], worker_id, runtime.lease_seconds, now)
    results = [Result(r.id, Next.DONE, state="claimed elsewhere") for r in batch if r.id not in claimed]
    won = [(row, claimed[row.id]) for row in batch if row.id in claimed]
    if not won:
        return results

    def one(item: tuple[GroupRow, Claimed]) -> _Sent:
        return _send_claimed(runtime, item[0], item[1], slots[item[0].id])

    interrupted: BaseException | None = None
    if pool is None:
        sent = [one(item) for item in won]
    else:
        futures = [pool.submit(one, item) for item in won]
        try:
            sent = [f.result() for f in futures]
        except BaseException as exc:
            # Terminated mid-round (Celery cancels a task with SIGTERM, which the pool's child turns
            # into SystemExit here): the requests on the wire are answered and recorded first, rather
            # than left ``sending`` for the sweep to call unknown. Then the termination goes on.
            interrupted = exc
            sent = [f.result() for f in futures]

    outcomes: dict[int, Outcome] = {}
    by_hand: list[_Sent] = []
    for s in sent:
        decided = _decide(s)
        if decided is None:
            by_hand.append(s)
            continue
        outcome, result = decided
        outcomes[s.row.id] = outcome
        results.append(result)
    with sessions() as session:
        finish_chunks(session, worker_id, outcomes)
        for s in by_hand:
            chunk, campaign = session.get_one(Chunk, s.row.id), session.get_one(Campaign, s.row.campaign_id)
            assert s.request is not None and s.verdict is not None
            assert s.started is not None and s.finished is not None
            results.append(
                _settle(
                    session,
                    runtime,
                    chunk,
                    campaign,
                    worker_id,
                    s.request,
                    s.verdict,
                    s.started,
                    s.finished,
                    s.body,
                    s.url,
                    adapt=False,
                )
            )
    verdicts = [s.verdict for s in sent if s.verdict is not None]
    accepted = sum(1 for v in verdicts if v.state is ChunkState.ACCEPTED)
    if any(v.error_class is ErrorClass.RATE_LIMITED for v in verdicts):
        _adapt(runtime.limiter, "penalise")
    elif accepted:
        _adapt(runtime.limiter, "reward", accepted)
    if interrupted is not None:
        raise interrupted
    return results


def _decide(s: _Sent) -> tuple[Outcome, Result] | None:
    """The outcome and next step of a plain answer (pure); None for a split or an account problem,
    which :func:`_settle` handles one chunk at a time."""
    verdict, started, finished = s.verdict, s.started, s.finished
    assert verdict is not None and started is not None and finished is not None
    chunk_id = s.row.id

    def outcome(
        state: ChunkState, *, not_before: datetime | None = None, detail: str | None = None
    ) -> Outcome:
        form = s.request.form if s.request is not None else None
        return verdict_outcome(
            verdict, state, started, finished, form, s.body, s.url, not_before=not_before, detail=detail
        )

    if verdict.state is ChunkState.ACCEPTED:
        return outcome(ChunkState.ACCEPTED), Result(chunk_id, Next.DONE, state="accepted")
    if verdict.state is ChunkState.UNKNOWN:
        return outcome(ChunkState.UNKNOWN), Result(chunk_id, Next.DONE, state="unknown")
    if s.request is None:  # failed before sending
        return outcome(ChunkState.FAILED), Result(chunk_id, Next.DONE, state="failed")
    error_class = verdict.error_class or ErrorClass.UNKNOWN
    decision = retry_policy(error_class, s.claimed.attempts, recipients=s.row.recipient_count)
    if decision.action is Action.RETRY:
        not_before = finished + timedelta(seconds=decision.delay_s)
        return (
            outcome(ChunkState.QUEUED, not_before=not_before),
            Result(chunk_id, Next.LATER, delay=decision.delay_s, state="queued"),
        )
    if decision.action is Action.DONT_RESEND:
        return outcome(ChunkState.ACCEPTED), Result(chunk_id, Next.DONE, state="accepted")
    if decision.action is Action.FAIL:
        detail = f"{verdict.detail} ({decision.reason})"
        return outcome(ChunkState.FAILED, detail=detail), Result(chunk_id, Next.DONE, state="failed")
    return None
