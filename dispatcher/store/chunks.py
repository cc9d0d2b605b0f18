"""The chunk state machine (DESIGN.md, "Exactly once"): claim, finish, sweep.

Each step is one transaction that it commits itself, and each decisive write is a conditional UPDATE
whose row count says whether this caller won: the database, not Celery, guarantees at most one sender.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, Executable, Table, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from dispatcher.store.models import Attempt, Campaign, Chunk, Recipient
from dispatcher.store.types import CampaignState, ChunkState, RecipientState, utcnow
from dispatcher.vendors.wire import SECRET_FIELDS

# How a chunk may leave ``sending``. ``queued`` = not accepted and safe to send again later
# (rate_limited / retry_later answers, with ``not_before``).
FINAL_STATES = frozenset({ChunkState.ACCEPTED, ChunkState.FAILED, ChunkState.UNKNOWN, ChunkState.QUEUED})
_OPEN_RECIPIENTS = (RecipientState.QUEUED.value, RecipientState.SENDING.value)


@dataclass(frozen=True)
class Outcome:
    """What one send attempt of a chunk came to, as the worker saw it."""

    state: ChunkState
    started_at: datetime
    finished_at: datetime
    batch_id: str | None = None
    error_class: str | None = None
    code: str | None = None
    detail: str | None = None
    not_before: datetime | None = None  # for state=queued: backoff
    request: Mapping[str, str] | None = None  # the form; secrets are masked again here
    answer: str | None = None  # raw body
    url_used: str | None = None


def _rowcount(session: Session, statement: Executable) -> int:
    result = session.execute(statement, execution_options={"synchronize_session": False})
    assert isinstance(result, CursorResult)
    return result.rowcount


def claim_chunk(
    session: Session, chunk_id: int, worker_id: str, lease_seconds: float, now: datetime | None = None
) -> bool:
    """``queued → sending`` for this worker if, and only if, nobody else has it and its campaign is
    running. Returns whether this caller won. Commits. A duplicated Celery message loses here."""
    now = now or utcnow()
    running = select(Campaign.id).where(
        Campaign.id == Chunk.campaign_id, Campaign.state == CampaignState.RUNNING.value
    )
    won = _rowcount(
        session,
        update(Chunk)
        .where(Chunk.id == chunk_id, Chunk.state == ChunkState.QUEUED.value, running.exists())
        .values(
            state=ChunkState.SENDING.value,
            worker_id=worker_id,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=Chunk.attempts + 1,
            updated_at=now,
        ),
    )
    if won:
        # Only the winner touches the recipients, so this cannot race.
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == chunk_id, Recipient.state == RecipientState.QUEUED.value)
            .values(state=RecipientState.SENDING.value),
            execution_options={"synchronize_session": False},
        )
    session.commit()
    return won == 1


def finish_chunk(session: Session, chunk_id: int, worker_id: str, outcome: Outcome) -> bool:
    """Leave ``sending`` with ``outcome``: chunk, attempt row and recipient states in one transaction.

    Conditional on the chunk still being ``sending`` by this worker. If it is not (the lease expired
    and a sweep made it ``unknown``), the chunk is left alone but the attempt is still recorded, as
    ``late_<state>`` with its batch id, so reconciliation can settle the chunk from it. Returns whether
    the outcome was applied. Commits.
    """
    if outcome.state not in FINAL_STATES:
        raise ValueError(f"a chunk cannot leave sending for {outcome.state}")
    now = outcome.finished_at
    accepted = outcome.state is ChunkState.ACCEPTED
    applied = _rowcount(
        session,
        update(Chunk)
        .where(Chunk.id == chunk_id, Chunk.state == ChunkState.SENDING.value, Chunk.worker_id == worker_id)
        .values(
            state=outcome.state.value,
            batch_id=outcome.batch_id,
            error_class=outcome.error_class,
            code=outcome.code,
            detail=outcome.detail,
            not_before=outcome.not_before,
            lease_until=None,
            accepted_at=now if accepted else None,
            updated_at=now,
        ),
    )
    session.execute(insert(Attempt).values(_attempt_row(chunk_id, worker_id, outcome, late=not applied)))
    if applied:
        values: dict[str, Any] = {"state": _recipient_state(outcome.state)}
        if accepted:
            values.update(batch_id=outcome.batch_id, submitted_at=now)
        elif outcome.state is ChunkState.FAILED:
            values.update(error_class=outcome.error_class, vendor_code=outcome.code)
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == chunk_id, Recipient.state.in_(_OPEN_RECIPIENTS))
            .values(**values),
            execution_options={"synchronize_session": False},
        )
    session.commit()
    return applied == 1


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


def sweep_expired_leases(session: Session, now: datetime | None = None) -> list[int]:
    """Chunks whose sender vanished (``sending`` past its lease) become ``unknown``, never re-sent
    automatically: the request may have reached the vendor. Returns their ids. Commits."""
    now = now or utcnow()
    ids = list(
        session.execute(
            update(Chunk)
            .where(Chunk.state == ChunkState.SENDING.value, Chunk.lease_until < now)
            .values(state=ChunkState.UNKNOWN.value, detail="lease expired", lease_until=None, updated_at=now)
            .returning(Chunk.id),
            execution_options={"synchronize_session": False},
        ).scalars()
    )
    if ids:
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id.in_(ids), Recipient.state.in_(_OPEN_RECIPIENTS))
            .values(state=RecipientState.UNKNOWN.value),
            execution_options={"synchronize_session": False},
        )
    session.commit()
    return sorted(ids)


# ---- groups: one task's chunks claimed and finished together (Core statements, compiled once) -------

_chunks: Table = Chunk.__table__  # type: ignore[assignment]
_recipients: Table = Recipient.__table__  # type: ignore[assignment]
_attempts: Table = Attempt.__table__  # type: ignore[assignment]
_campaigns: Table = Campaign.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Claimed:
    """A chunk this worker won in :func:`claim_chunks`, with what sending it needs."""

    id: int
    attempts: int  # counting the attempt just claimed
    recipients: tuple[tuple[str, str], ...]  # (mobile, text) in input order


def claim_chunks(
    session: Session, chunk_ids: Sequence[int], worker_id: str, lease_seconds: float, now: datetime
) -> dict[int, Claimed]:
    """:func:`claim_chunk` for a group, in one transaction: ``queued → sending`` for every chunk of
    ``chunk_ids`` that is queued, due (``not_before`` passed) and of a running campaign, with ONE
    conditional UPDATE whose RETURNING names the winners (a duplicate message wins nothing), then
    their recipients ``queued → sending``. Returns the winners by id, with their recipients. Commits."""
    if not chunk_ids:
        return {}
    c, r = _chunks.c, _recipients.c
    running = (
        select(_campaigns.c.id)
        .where(_campaigns.c.id == c.campaign_id, _campaigns.c.state == CampaignState.RUNNING.value)
        .exists()
    )
    conn = session.connection()
    result = conn.execute(
        update(_chunks)
        .where(
            c.id.in_(list(chunk_ids)),
            c.state == ChunkState.QUEUED.value,
            or_(c.not_before.is_(None), c.not_before <= now),
            running,
        )
        .values(
            state=ChunkState.SENDING.value,
            worker_id=worker_id,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=c.attempts + 1,
            updated_at=now,
        )
        .returning(c.id, c.attempts)
    )
    won: dict[int, int] = {chunk_id: attempts for chunk_id, attempts in result}
    recipients: dict[int, list[tuple[str, str]]] = {chunk_id: [] for chunk_id in won}
    if won:
        ids = list(won)
        conn.execute(
            update(_recipients)
            .where(r.chunk_id.in_(ids), r.state == RecipientState.QUEUED.value)
            .values(state=RecipientState.SENDING.value)
        )
        rows = conn.execute(
            select(r.chunk_id, r.mobile, r.text).where(r.chunk_id.in_(ids)).order_by(r.chunk_id, r.position)
        )
        for chunk_id, mobile, text in rows:
            recipients[chunk_id].append((mobile or "", text or ""))
    session.commit()
    return {i: Claimed(i, won[i], tuple(recipients[i])) for i in won}


def finish_chunks(session: Session, worker_id: str, outcomes: Mapping[int, Outcome]) -> set[int]:
    """:func:`finish_chunk` for a group, in ONE transaction: the chunks still ``sending`` by this
    worker take their outcome (one executemany), every outcome gets its attempt row (``late_<state>``
    for a chunk whose lease was swept meanwhile, which is left alone), and the applied chunks' open
    recipients follow. Returns the ids whose outcome was applied. Commits."""
    if not outcomes:
        return set()
    for outcome in outcomes.values():
        if outcome.state not in FINAL_STATES:
            raise ValueError(f"a chunk cannot leave sending for {outcome.state}")
    c = _chunks.c
    conn = session.connection()
    # Lock the rows still ours first (PostgreSQL: row locks; SQLite: the write lock), so the set
    # cannot change before the commit: a concurrent sweep waits and then finds them no longer sending.
    applied = set(
        conn.execute(
            update(_chunks)
            .where(c.id.in_(list(outcomes)), c.state == ChunkState.SENDING.value, c.worker_id == worker_id)
            .values(lease_until=c.lease_until)
            .returning(c.id)
        ).scalars()
    )
    if applied:
        conn.execute(_FINISH_CHUNK, [_chunk_params(i, worker_id, outcomes[i]) for i in applied])
    conn.execute(
        insert(_attempts),
        [_attempt_row(i, worker_id, o, late=i not in applied) for i, o in outcomes.items()],
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
    session.commit()
    return applied


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
        "b_accepted_at": now if outcome.state is ChunkState.ACCEPTED else None,
        "b_at": now,
    }


_FINISH_CHUNK = (
    update(_chunks)
    .where(
        _chunks.c.id == bindparam("b_id"),
        _chunks.c.state == ChunkState.SENDING.value,
        _chunks.c.worker_id == bindparam("b_worker"),
    )
    .values(
        state=bindparam("b_state"),
        batch_id=bindparam("b_batch"),
        error_class=bindparam("b_class"),
        code=bindparam("b_code"),
        detail=bindparam("b_detail"),
        not_before=bindparam("b_not_before"),
        lease_until=None,
        accepted_at=bindparam("b_accepted_at"),
        updated_at=bindparam("b_at"),
    )
)
_OPEN_OF_CHUNK = (
    _recipients.c.chunk_id == bindparam("b_chunk"),
    # Not IN (...): an expanding parameter cannot be used with executemany.
    or_(*(_recipients.c.state == state for state in _OPEN_RECIPIENTS)),
)
_FINISH_RECIPIENTS = {
    "accepted": update(_recipients)
    .where(*_OPEN_OF_CHUNK)
    .values(state=bindparam("b_state"), batch_id=bindparam("b_batch"), submitted_at=bindparam("b_at")),
    "failed": update(_recipients)
    .where(*_OPEN_OF_CHUNK)
    .values(state=bindparam("b_state"), error_class=bindparam("b_class"), vendor_code=bindparam("b_code")),
    "other": update(_recipients).where(*_OPEN_OF_CHUNK).values(state=bindparam("b_state")),
}
