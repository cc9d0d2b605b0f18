"""The chunk state machine on the store: claim, record, split, sweep (docs/state-machine.md).

Each decisive write is a conditional UPDATE whose row count (or RETURNING) says whether this caller
won: the database, not Celery, guarantees at most one sender. Leases and backoffs are set and compared
with the database's clock (:class:`db_now`), never a machine's own. The group functions take a task's
chunks with a handful of Core statements; ``claim_chunk``/``finish_chunk`` are the one-chunk forms.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    Float,
    Table,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from dispatcher.chunker import chunk_ref
from dispatcher.store.campaigns import audit
from dispatcher.store.caps import CapCheck, count_and_cap, uncount
from dispatcher.store.models import Attempt, Campaign, Chunk, OptOut, Recipient, UnknownRequest
from dispatcher.store.types import CampaignState, ChunkState, RecipientState, db_now, utcnow
from dispatcher.vendors.wire import SECRET_FIELDS

# How a chunk may leave ``sending``. ``queued`` = not accepted and safe to send again later
# (rate_limited / retry_later answers, an account problem, outside the vendor's hours).
FINAL_STATES = frozenset({ChunkState.ACCEPTED, ChunkState.FAILED, ChunkState.UNKNOWN, ChunkState.QUEUED})
# The states a chunk of an attempt in flight can be found in: still ``sending``; ``unknown`` after the
# sweep took its lease (the answer then arrives late, and settles it); or ``queued`` again by an
# operator's retry of that unknown chunk, not yet claimed again (the late answer still settles it,
# and an acceptance then spares it a second send). Its recipients are in the same states.
_IN_FLIGHT = (ChunkState.SENDING.value, ChunkState.UNKNOWN.value, ChunkState.QUEUED.value)

_chunks: Table = Chunk.__table__  # type: ignore[assignment]
_recipients: Table = Recipient.__table__  # type: ignore[assignment]
_attempts: Table = Attempt.__table__  # type: ignore[assignment]
_campaigns: Table = Campaign.__table__  # type: ignore[assignment]
_optouts: Table = OptOut.__table__  # type: ignore[assignment]
_unknown: Table = UnknownRequest.__table__  # type: ignore[assignment]
OPTED_OUT = "opted out"  # the reject reason of a withdrawn number
# A chunk swept with no attempt recorded (its worker died mid-send) was sent before the sweep, by at
# most its lease: look back this far from the lease.
SWEPT_LOOKBACK = timedelta(hours=1)


@dataclass(frozen=True)
class Outcome:
    """What one send attempt of a chunk came to: what the store records for it."""

    state: ChunkState
    started_at: datetime
    finished_at: datetime
    batch_id: str | None = None
    error_class: str | None = None
    code: str | None = None
    detail: str | None = None
    not_before: datetime | None = None  # for state=queued: not before this instant (a window opening)
    retry_in: float | None = None  # for state=queued: seconds from the database's now (a backoff)
    counted: bool = True  # False: the attempt does not use up the retry budget (outside the hours)
    request: Mapping[str, str] | None = None  # the form; secrets are masked again here
    answer: str | None = None  # raw body
    url_used: str | None = None


@dataclass(frozen=True)
class ClaimedRecipient:
    id: int
    mobile: str
    text: str


@dataclass(frozen=True)
class Claimed:
    """A chunk this worker won in :func:`claim_chunks`, with the recipients it moved to ``sending``."""

    id: int
    attempts: int  # counting the attempt just claimed
    recipients: tuple[ClaimedRecipient, ...]  # in input order

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """``(mobile, text)`` of each recipient, what a request is built from."""
        return [(r.mobile, r.text) for r in self.recipients]


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


def claim_chunks(
    session: Session,
    chunk_ids: Sequence[int],
    worker_id: str,
    lease_seconds: float,
    *,
    account: str | None = None,
    caps: CapCheck | None = None,
) -> dict[int, Claimed]:
    """``queued → sending`` for every chunk of ``chunk_ids`` that is queued, due (``not_before``
    passed) and of a running campaign, with ONE conditional UPDATE whose RETURNING names the winners
    (a duplicated message wins nothing); then ONE UPDATE moves their still-waiting recipients
    ``queued → sending`` and returns them: only those are sent, never a recipient already accepted,
    delivered or withdrawn (and one on the opt-out list is withdrawn there). With ``account``, only
    chunks of campaigns on that account are won: the worker checked their packing against it, and a
    failover meanwhile must not have them sent on the old one. With ``caps`` (a frequency cap is
    configured), the sends are counted in the same transaction and a recipient over a cap is ``capped``
    instead (:mod:`dispatcher.store.caps`). Returns the winners by id. Commits."""
    if not chunk_ids:
        return {}
    c, r = _chunks.c, _recipients.c
    on = [_campaigns.c.id == c.campaign_id, _campaigns.c.state == CampaignState.RUNNING.value]
    if account is not None:
        on.append(_campaigns.c.account == account)
        # ... and never a personalised request packed for another account (its separators)
        on.append(c.text.is_not(None) | c.account.is_(None) | (c.account == account))
    running = select(_campaigns.c.id).where(*on).exists()
    conn = session.connection()
    won: dict[int, int] = {
        chunk_id: attempts
        for chunk_id, attempts in conn.execute(
            update(_chunks)
            .where(
                c.id.in_(list(chunk_ids)),
                c.state == ChunkState.QUEUED.value,
                or_(c.not_before.is_(None), c.not_before <= db_now()),
                running,
            )
            .values(
                state=ChunkState.SENDING.value,
                worker_id=worker_id,
                lease_until=db_now(lease_seconds),
                attempts=c.attempts + 1,
                updated_at=db_now(),  # the beat's staleness is judged by the database's clock too
            )
            .returning(c.id, c.attempts)
        )
    }
    moved: dict[int, list[tuple[int, int, str, str]]] = {chunk_id: [] for chunk_id in won}
    if won:
        # A number that opted out since it was queued (in flight then, or failed, and queued again)
        # leaves the chunk here, in the same statement, like any withdrawn number.
        opted_out = r.mobile.in_(select(_optouts.c.mobile))
        rows = conn.execute(
            update(_recipients)
            .where(r.chunk_id.in_(list(won)), r.state == RecipientState.QUEUED.value)
            .values(
                state=case((opted_out, RecipientState.REJECTED.value), else_=RecipientState.SENDING.value),
                reject_reason=case((opted_out, OPTED_OUT), else_=r.reject_reason),
                chunk_id=case((opted_out, None), else_=r.chunk_id),
                # Sent on the campaign's account now, even a recipient an earlier account left
                # unknown (failover; re-sent by "retry --include-unknown"): its reports come from this one.
                account=None,
            )
            .returning(r.chunk_id, r.position, r.id, r.mobile, r.text, r.counted_on)
        ).all()
        capped = (
            count_and_cap(
                conn, caps, [(row[0], row[2], row[3], row[5]) for row in rows if row[0] is not None]
            )
            if caps is not None
            else {}
        )
        for chunk_id, position, recipient_id, mobile, text, _ in rows:
            if chunk_id is not None and recipient_id not in capped:
                moved[chunk_id].append((position, recipient_id, mobile or "", text or ""))
    session.commit()
    return {
        i: Claimed(i, won[i], tuple(ClaimedRecipient(rid, m, t) for _, rid, m, t in sorted(moved[i])))
        for i in won
    }


def claim_chunk(session: Session, chunk_id: int, worker_id: str, lease_seconds: float) -> bool:
    """:func:`claim_chunks` for one chunk: whether this caller won it. Commits."""
    return chunk_id in claim_chunks(session, [chunk_id], worker_id, lease_seconds)


def own_chunks(session: Session, worker_id: str, attempts: Mapping[int, int]) -> dict[int, str]:
    """Of the chunks whose attempts (``{chunk id: attempt number}``) this worker is recording, those
    still this attempt's: ``sending`` by this worker; or, its lease swept, ``unknown``, or ``queued``
    again by an operator's retry and not claimed since (the claim would have counted an attempt).
    Locks them until the caller commits (PostgreSQL: row locks; SQLite: the write lock), so the set
    cannot change before the outcomes are written. Returns ``{chunk id: state found}``. Caller's
    transaction."""
    if not attempts:
        return {}
    c = _chunks.c
    rows = session.connection().execute(
        update(_chunks)
        .where(
            c.id.in_(list(attempts)),
            c.worker_id == worker_id,
            c.state.in_(_IN_FLIGHT),
            (c.state != ChunkState.QUEUED.value) | c.requeued_from_unknown,
        )
        .values(lease_until=c.lease_until)
        .returning(c.id, c.state, c.attempts)
    )
    return {chunk_id: state for chunk_id, state, n in rows if attempts[chunk_id] == n}


# Recipient states of a number some request of the account carried, or may have.
_TAKEN = (
    RecipientState.SENDING.value,
    RecipientState.UNKNOWN.value,
    RecipientState.ACCEPTED.value,
    RecipientState.DELIVERED.value,
    RecipientState.UNDELIVERED.value,
    RecipientState.EXPIRED.value,
)


def sent_elsewhere(session: Session, claims: Mapping[int, Claimed]) -> set[int]:
    """Of the chunks in ``claims`` (operators' re-sends of unknown requests, answered "already sent"
    by the account they are sent on now), those the answer proves nothing of: another recipient of one
    of its numbers was, or may have been, sent on that account (its recipient left there by a failover,
    or a request of it re-sent from unknown); or the chunk's own earlier, unknown request went out on
    another account (the vendor's "already sent" is about a request of this one)."""
    found: set[int] = set()
    cc, r, u = _campaigns.c, _recipients.c, _unknown.c
    conn = session.connection()
    for chunk_id, claimed in claims.items():
        mobiles = [x.mobile for x in claimed.recipients]
        ids = [x.id for x in claimed.recipients]
        if not mobiles:
            continue
        account = conn.execute(
            select(cc.account).join(_chunks, _chunks.c.campaign_id == cc.id).where(_chunks.c.id == chunk_id)
        ).scalar_one()
        other = (
            select(r.id)
            .join(_campaigns, cc.id == r.campaign_id)
            .where(
                r.mobile.in_(mobiles),
                r.id.not_in(ids),
                r.state.in_(_TAKEN),
                func.coalesce(r.account, cc.account) == account,
            )
            .limit(1)
        )
        resent = select(u.id).where(u.account == account, u.mobile.in_(mobiles), u.recipient_id.not_in(ids))
        own = select(u.id).where(u.account == account, u.recipient_id.in_(ids))
        if (
            conn.execute(other).first() is not None
            or conn.execute(resent.limit(1)).first() is not None
            or conn.execute(own.limit(1)).first() is None
        ):
            found.add(chunk_id)
    return found


def may_have_sent() -> Any:
    """Chunks whose own request may have gone out: all but an operator's re-send of an unknown request
    that a failover re-planned and no worker claimed since (a cancel may have made it ``unknown``; its
    recipients' earlier requests are in ``unknown_requests``)."""
    c = _chunks.c
    return ~(c.requeued_from_unknown & (c.attempts == 0) & c.lease_until.is_(None))


def request_window(
    first: datetime | None, last: datetime | None, lease: datetime | None, updated: datetime
) -> tuple[datetime, datetime]:
    """When a chunk's requests went out, at the earliest and the latest: from its first attempt's start
    (or, when its worker died before recording one, its lease less :data:`SWEPT_LOOKBACK`) to its last
    attempt's or its lease's (not when it was planned, which may be days earlier; the sweep keeps the
    lease it found). Pure."""
    died = lease or (None if first else updated)  # a claim whose worker recorded nothing
    starts = [t for t in (first, died and died - SWEPT_LOOKBACK) if t is not None]
    ends = [t for t in (last, died) if t is not None]
    return min(starts), max(ends)


def remember_unknown_requests(
    session: Session, chunk_ids: Collection[int], *, automatic: bool = False
) -> int:
    """Before an operator's retry re-queues the ``unknown`` chunks ``chunk_ids``: keep, for each of
    their recipients still ``unknown``, the request that may have reached it (``unknown_requests``):
    the account it went out on (the recipient's, left there by a failover, else the campaign's), its
    chunk and when (``automatic``: the beat re-sends it, not a person). Returns how many. Caller's
    transaction."""
    c, r, a, cc = _chunks.c, _recipients.c, _attempts.c, _campaigns.c
    conn = session.connection()
    rows = []
    ids = sorted(chunk_ids)
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        first = select(func.min(a.started_at)).where(a.chunk_id == c.id).scalar_subquery()
        last = select(func.max(a.started_at)).where(a.chunk_id == c.id).scalar_subquery()
        windows = {
            chunk_id: (ref, request_window(f, la, lease, updated))
            for chunk_id, ref, f, la, lease, updated in conn.execute(
                select(c.id, c.ref, first, last, c.lease_until, c.updated_at).where(
                    c.id.in_(part), may_have_sent()
                )
            )
        }
        for rid, campaign_id, chunk_id, mobile, account in conn.execute(
            select(r.id, r.campaign_id, r.chunk_id, r.mobile, func.coalesce(r.account, cc.account))
            .join(_campaigns, cc.id == r.campaign_id)
            .where(
                r.chunk_id.in_(list(windows)), r.state == RecipientState.UNKNOWN.value, r.mobile.is_not(None)
            )
        ):
            ref, (sent_from, sent_until) = windows[chunk_id]
            rows.append(
                {
                    "recipient_id": rid,
                    "campaign_id": campaign_id,
                    "chunk_id": chunk_id,
                    "ref": ref,
                    "mobile": mobile,
                    "account": account,
                    "sent_from": sent_from,
                    "sent_until": sent_until,
                    "automatic": automatic,
                }
            )
    if rows:
        conn.execute(insert(_unknown), rows)
    return len(rows)


def sent_on(account: str) -> Any:
    """``recipients.account`` for a recipient sent on ``account``: null when that is its campaign's
    account now (null means "the campaign's": the reports due, the figures), else the account."""
    current = select(_campaigns.c.account).where(_campaigns.c.id == _recipients.c.campaign_id)
    return func.nullif(literal(account), current.scalar_subquery())


def accept_request(
    session: Session, chunk_id: int, batch_id: str | None, account: str, at: datetime, detail: str
) -> int:
    """The unknown request of ``chunk_id`` was accepted after all (a report of it, a late answer), but
    its recipients were re-planned since into other chunks (a failover): those of them still waiting
    to be sent again (or unknown again) are accepted, on ``account``, and a chunk left with nothing to
    send is accepted too. Returns how many recipients. Caller's transaction."""
    r, u, c = _recipients.c, _unknown.c, _chunks.c
    conn = session.connection()
    waiting = (RecipientState.QUEUED.value, RecipientState.UNKNOWN.value)
    mine = select(u.recipient_id).where(u.chunk_id == chunk_id)
    # Chunk rows before recipient rows, the order every writer takes them in (PostgreSQL deadlocks
    # otherwise, with a claim of the chunks that now carry them).
    holding = select(r.chunk_id).where(r.id.in_(mine), r.state.in_(waiting))
    conn.execute(select(c.id).where(c.id.in_(holding)).order_by(c.id).with_for_update()).all()
    held_by = list(
        conn.execute(
            update(_recipients)
            .where(r.id.in_(mine), r.state.in_(waiting))
            .values(
                state=RecipientState.ACCEPTED.value,
                batch_id=batch_id,
                submitted_at=at,
                account=sent_on(account),
            )
            .returning(r.chunk_id)
        ).scalars()
    )
    for held in sorted({x for x in held_by if x is not None}):
        left = select(r.id).where(r.chunk_id == held, r.state.in_((*waiting, RecipientState.SENDING.value)))
        conn.execute(
            update(_chunks)
            .where(
                c.id == held,
                c.state.in_((ChunkState.QUEUED.value, ChunkState.UNKNOWN.value)),
                ~left.exists(),
            )
            .values(
                state=ChunkState.ACCEPTED.value,
                batch_id=batch_id,
                accepted_at=at,
                lease_until=None,
                detail=detail,
                updated_at=db_now(),
            )
        )
    return len(held_by)


def answered_since(session: Session, chunk_ids: Collection[int], code: str) -> dict[int, datetime]:
    """For each chunk, when the run of its latest attempts answered ``code`` began (its attempts
    from the last one back to the first answered otherwise). A chunk with no such run is left out."""
    since: dict[int, datetime] = {}
    a = _attempts.c
    for chunk_id in chunk_ids:
        rows = session.connection().execute(
            select(a.code, a.started_at).where(a.chunk_id == chunk_id).order_by(a.id.desc()).limit(5000)
        )
        for answered, started in rows:
            if answered != code:
                break
            since[chunk_id] = started
    return since


def campaign_states(session: Session, campaign_ids: Collection[int]) -> dict[int, str]:
    """The campaigns' states, locked until the caller commits (``FOR NO KEY UPDATE``; SQLite holds the
    write lock already): a cancel or pause waits for the outcomes decided on these states, then sees
    them. Caller's transaction."""
    if not campaign_ids:
        return {}
    cc = _campaigns.c
    query = select(cc.id, cc.state).where(cc.id.in_(list(campaign_ids))).with_for_update(key_share=True)
    return {campaign_id: state for campaign_id, state in session.connection().execute(query)}


def record_outcomes(
    session: Session, worker_id: str, outcomes: Mapping[int, Outcome], ours: Mapping[int, str]
) -> None:
    """Write the outcomes of a worker's attempts, in the caller's transaction: the chunks in ``ours``
    (from :func:`own_chunks`) take their outcome (one executemany) and their recipients in flight
    follow; every outcome gets its attempt row, ``late_<state>`` when the chunk was no longer
    ``sending`` (the sweep took it: the answer settles the ``unknown`` chunk if it is still ours, and
    is kept as evidence if not)."""
    if not outcomes:
        return
    _check(outcomes.values())
    conn = session.connection()
    applied = [i for i in outcomes if i in ours]
    if applied:
        conn.execute(_FINISH_CHUNK, [_chunk_params(i, worker_id, outcomes[i]) for i in applied])
    conn.execute(
        insert(_attempts),
        [
            _attempt_row(i, worker_id, o, late=ours.get(i) != ChunkState.SENDING.value)
            for i, o in outcomes.items()
        ],
    )
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for chunk_id in applied:
        outcome = outcomes[chunk_id]
        params: dict[str, Any] = {"b_chunk": chunk_id, "b_state": _recipient_state(outcome.state)}
        if outcome.state is ChunkState.ACCEPTED:
            params.update(b_batch=outcome.batch_id, b_at=outcome.finished_at)
            by_kind.setdefault("accepted", []).append(params)
        elif outcome.state is ChunkState.FAILED:
            params.update(b_class=outcome.error_class, b_code=outcome.code)
            by_kind.setdefault("failed", []).append(params)
        else:
            by_kind.setdefault("other", []).append(params)
    for kind, rows in by_kind.items():
        conn.execute(_FINISH_RECIPIENTS[kind], rows)
    not_taken = [i for i in applied if outcomes[i].state in (ChunkState.FAILED, ChunkState.QUEUED)]
    if not_taken:  # the frequency caps' counts of sends the vendor did not take are given back
        uncount(conn, _recipients.c.chunk_id.in_(not_taken))


def finish_chunk(session: Session, chunk_id: int, worker_id: str, outcome: Outcome) -> bool:
    """Record ``outcome`` for the attempt ``chunk_id`` is on, if it is still this worker's (sending,
    or unknown after a sweep); the attempt row is written either way. Returns whether it applied.
    Commits. (The dispatcher records a task's attempts together: ``dispatch.record_attempts``.)"""
    _check([outcome])
    attempts = session.execute(select(Chunk.attempts).where(Chunk.id == chunk_id)).scalar_one_or_none()
    if attempts is None:
        return False
    ours = own_chunks(session, worker_id, {chunk_id: attempts})
    record_outcomes(session, worker_id, {chunk_id: outcome}, ours)
    session.commit()
    return chunk_id in ours


def split_chunk(
    session: Session, chunk_id: int, parts: Sequence[Sequence[int]], actor: str
) -> tuple[int, ...]:
    """Give each of ``parts`` (recipient ids of ``chunk_id``'s attempt in flight) a new queued child
    chunk; returns the children's ids. Their seqs come from the campaign's ``next_seq``, bumped by one
    UPDATE ... RETURNING, so concurrent splits of one campaign never collide. The caller holds the
    parent (it is its attempt in flight) and records the parent's outcome after. Caller's transaction."""
    parts = [list(part) for part in parts if part]
    if not parts:
        return ()
    c, r, cc = _chunks.c, _recipients.c, _campaigns.c
    conn = session.connection()
    campaign_id, method, text, from_unknown, packed_for = conn.execute(
        select(c.campaign_id, c.method, c.text, c.requeued_from_unknown, c.account).where(c.id == chunk_id)
    ).one()
    # Never below the seqs in use, even for chunks written without the counter.
    in_use = select(func.coalesce(func.max(c.seq), -1) + 1).where(c.campaign_id == campaign_id)
    floor = case((cc.next_seq > in_use.scalar_subquery(), cc.next_seq), else_=in_use.scalar_subquery())
    top = conn.execute(
        update(_campaigns)
        .where(cc.id == campaign_id)
        .values(next_seq=floor + len(parts))
        .returning(cc.next_seq)
    ).scalar_one()
    now = utcnow()
    children: list[int] = []
    for seq, part in zip(range(top - len(parts), top), parts, strict=True):
        child = conn.execute(
            insert(_chunks)
            .values(
                campaign_id=campaign_id,
                seq=seq,
                ref=chunk_ref(campaign_id, seq),
                method=method,
                text=text,
                recipient_count=len(part),
                state=ChunkState.QUEUED.value,
                parent_id=chunk_id,
                requeued_from_unknown=from_unknown,
                account=packed_for,
                created_at=now,
                updated_at=db_now(),  # the beat's staleness clock
            )
            .returning(c.id)
        ).scalar_one()
        conn.execute(
            update(_recipients)
            .where(r.id.in_(part), r.chunk_id == chunk_id, r.state.in_(_IN_FLIGHT))
            .values(chunk_id=child, state=RecipientState.QUEUED.value)
        )
        children.append(child)
    # Sent again by the children: counted again when they are claimed. Given back in one statement,
    # in one number order over all the parts (row locks taken part by part could cross a claim's).
    uncount(conn, r.id.in_([rid for part in parts for rid in part]))
    audit(session, actor, "chunk.split", campaign_id, chunk=chunk_id, children=children)
    return tuple(children)


def sweep_expired_leases(session: Session) -> list[int]:
    """Chunks whose sender vanished (``sending`` past its lease, by the database's clock) become
    ``unknown``, never re-sent automatically: the request may have reached the vendor. A late answer
    or a report settles them (the lease kept says when it went out). Returns their ids. Commits."""
    ids = list(
        session.execute(
            update(Chunk)
            .where(Chunk.state == ChunkState.SENDING.value, Chunk.lease_until < db_now())
            .values(
                # The lease is kept: when the request went out, for a report to settle it by.
                state=ChunkState.UNKNOWN.value,
                detail="lease expired",
                updated_at=utcnow(),
            )
            .returning(Chunk.id),
            execution_options={"synchronize_session": False},
        ).scalars()
    )
    if ids:
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id.in_(ids), Recipient.state == RecipientState.SENDING.value)
            .values(state=RecipientState.UNKNOWN.value),
            execution_options={"synchronize_session": False},
        )
    session.commit()
    return sorted(ids)


def _check(outcomes: Iterable[Outcome]) -> None:
    for outcome in outcomes:
        if outcome.state not in FINAL_STATES:
            raise ValueError(f"a chunk cannot leave sending for {outcome.state}")


def _recipient_state(state: ChunkState) -> str:
    return RecipientState(state.value).value  # the four final chunk states exist for recipients too


def _attempt_row(chunk_id: int, worker_id: str, outcome: Outcome, *, late: bool) -> dict[str, Any]:
    duration = outcome.finished_at - outcome.started_at
    return {
        "chunk_id": chunk_id,
        "worker_id": worker_id,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "request": redact_form(outcome.request) if outcome.request is not None else None,
        "answer": outcome.answer,
        "code": outcome.code,
        "error_class": outcome.error_class,
        "outcome": f"late_{outcome.state.value}" if late else outcome.state.value,
        "duration_ms": round(duration.total_seconds() * 1000),
        "url_used": redact_address(outcome.url_used) if outcome.url_used else None,
    }


def redact_form(form: Mapping[str, str]) -> dict[str, str]:
    """A request form without its secrets (password, pwd, submitInfo ...)."""
    return {k: "***" if k in SECRET_FIELDS else v for k, v in form.items()}


_SECRET_QUERY_RE = re.compile(r"(?i)\b(" + "|".join(sorted(SECRET_FIELDS)) + r")=[^&#]*")


def redact_address(url: str) -> str:
    """An address without user info or secret query fields: we POST, but never trust that alone."""
    url = re.sub(r"(?<=://)[^/@]*@", "", url)
    return _SECRET_QUERY_RE.sub(lambda m: f"{m.group(1)}=***", url)


def _chunk_params(chunk_id: int, worker_id: str, outcome: Outcome) -> dict[str, Any]:
    now = outcome.finished_at
    return {
        "b_id": chunk_id,
        "b_worker": worker_id,
        "b_state": outcome.state.value,
        "b_batch": outcome.batch_id,
        "b_class": outcome.error_class,
        "b_code": outcome.code,
        "b_detail": outcome.detail,
        "b_not_before": outcome.not_before,
        "b_retry_in": outcome.retry_in,
        "b_uncount": 0 if outcome.counted else 1,
        "b_accepted_at": now if outcome.state is ChunkState.ACCEPTED else None,
    }


_retry_in = cast(bindparam("b_retry_in", type_=Float()), Float())  # typed, also when NULL
_FINISH_CHUNK = (
    update(_chunks)
    .where(
        _chunks.c.id == bindparam("b_id"),
        _chunks.c.worker_id == bindparam("b_worker"),
        # Not IN (...): an expanding parameter cannot be used with executemany.
        or_(*(_chunks.c.state == state for state in _IN_FLIGHT)),
    )
    .values(
        state=bindparam("b_state"),
        batch_id=bindparam("b_batch"),
        error_class=bindparam("b_class"),
        code=bindparam("b_code"),
        detail=bindparam("b_detail"),
        not_before=case((_retry_in.is_(None), bindparam("b_not_before")), else_=db_now(_retry_in)),
        attempts=_chunks.c.attempts - bindparam("b_uncount"),
        lease_until=None,
        accepted_at=bindparam("b_accepted_at"),
        updated_at=db_now(),
    )
)
_CANCELLED_CLASS = "cancelled"  # decisions.CANCELLED (which imports this module)
_IN_FLIGHT_OF_CHUNK = (
    _recipients.c.chunk_id == bindparam("b_chunk"),
    or_(*(_recipients.c.state == state for state in _IN_FLIGHT)),
)
_FINISH_RECIPIENTS = {
    "accepted": update(_recipients)
    .where(*_IN_FLIGHT_OF_CHUNK)
    .values(state=bindparam("b_state"), batch_id=bindparam("b_batch"), submitted_at=bindparam("b_at")),
    # A chunk a cancel ended before it was sent: its recipients were never sent, they are cancelled.
    "failed": update(_recipients)
    .where(*_IN_FLIGHT_OF_CHUNK)
    .values(
        state=case(
            (bindparam("b_class") == _CANCELLED_CLASS, RecipientState.CANCELLED.value),
            else_=bindparam("b_state"),
        ),
        error_class=bindparam("b_class"),
        vendor_code=bindparam("b_code"),
    ),
    "other": update(_recipients).where(*_IN_FLIGHT_OF_CHUNK).values(state=bindparam("b_state")),
}
