"""Reports matched to recipients, set-based (a handful of statements per batch, never a row at a time).

A report matches the recipient of its account with the same ``(batch_id, mobile)``, or, for trigger,
the recipient of the chunk whose ``ref`` it carries (``customerUuid``) with the same mobile, sent on
that same account. Only
recipients whose submission is known (accepted, or already reported/expired) match: a report that
arrives before its chunk's batch id is recorded stays unmatched and is tried again on the next run;
one that never matches is an orphan. A report for a number of an ``unknown`` chunk, inside the time
that chunk's request could have been accepted, proves the vendor took it: the chunk becomes
``accepted`` with the report's batch id. ``DELIVRD`` → ``delivered``, any other status →
``undelivered`` with the raw code; the latest report of a recipient wins: the last of its inbox body,
and one of an earlier body never replaces it (``recipients.report_raw_pull_id``), whichever of two
connections processing bodies at once commits first.

New reports take :func:`reconcile_staged`: matched on the temporary stage they arrive in
(``rows.stage_bodies``), written to ``reports`` once with their match, and applied from the stage (on
PostgreSQL the three in one statement, the stage never updated).
:func:`reconcile` does the same for reports already stored (those that matched nothing before).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, case, func, select, update
from sqlalchemy.orm import Session, aliased, join, outerjoin

from dispatcher.results.rows import close_stage, insert_staged, stage, store_staged
from dispatcher.store import (
    Attempt,
    Campaign,
    Chunk,
    ChunkState,
    RawPull,
    Recipient,
    RecipientState,
    ReportRow,
    UnknownRequest,
    utcnow,
)
from dispatcher.store.chunks import accept_request, may_have_sent, request_window, sent_on
from dispatcher.store.stats import reports_due

logger = logging.getLogger(__name__)

DELIVERED = "DELIVRD"
# Recipients a report may settle: their submission is known.
REPORTABLE = (
    RecipientState.ACCEPTED.value,
    RecipientState.DELIVERED.value,
    RecipientState.UNDELIVERED.value,
    RecipientState.EXPIRED.value,
)
EXPIRE_AFTER = timedelta(hours=72)  # no report this long after acceptance: it will not come
UNKNOWN_WINDOW = timedelta(hours=72)  # reports are kept 2-3 days at the vendors
CLOCK_SKEW = timedelta(minutes=10)  # the vendor's clock against ours
SETTLED = "unknown outcome settled by a delivery report"
_NO_SYNC = {"synchronize_session": False}


@dataclass
class Reconciled:
    matched: int = 0
    settled_chunks: int = 0
    sent_twice: int = 0  # recipients found to have got a re-sent message twice

    def __iadd__(self, other: Reconciled) -> Reconciled:
        self.matched += other.matched
        self.settled_chunks += other.settled_chunks
        self.sent_twice += other.sent_twice
        return self


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def reconcile(session: Session, which: ColumnElement[bool], now: datetime | None = None) -> Reconciled:
    """Match the unmatched reports selected by ``which`` and apply them. Caller's transaction."""
    now = now or utcnow()
    done = Reconciled()
    done.matched = _match(session, which, now)
    settled = settle_unknown(session, which)
    if settled:
        done.settled_chunks = len(settled)
        done.matched += _match(session, which, now)
    if done.matched:
        _apply(session, which, now)
    done.sent_twice = flag_sent_twice(session, which, now)
    return done


def reconcile_staged(session: Session, which: ColumnElement[bool], now: datetime | None = None) -> Reconciled:
    """Match the reports staged by :func:`rows.stage_reports`, write them to ``reports`` (each row once,
    its match included) and apply them; then empty the stage. ``which`` selects the same reports in
    ``reports`` (for the rare second round, once unknown chunks are settled). Caller's transaction."""
    now = now or utcnow()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        done = Reconciled(matched=_reconcile_stage_postgresql(session, now))
        settled = settle_unknown(session, which)
        if settled:
            done.settled_chunks = len(settled)
            done.matched += _match(session, which, now)
            # The second round's matches, and again the first's (the same outcome: idempotent).
            _apply(session, which, now)
        close_stage(session)
        done.sent_twice = flag_sent_twice(session, which, now)
        return done
    connection.execute(
        update(stage).values(
            recipient_id=_recipient_of(stage.c.account, stage.c.batch_id, stage.c.mobile, stage.c.ref)
        )
    )
    store_staged(session, now)
    matched, recipients = connection.execute(
        select(func.count(stage.c.recipient_id), func.count(stage.c.recipient_id.distinct()))
    ).one()
    done = Reconciled(matched=matched)
    settled = settle_unknown(session, which)
    if settled:
        done.settled_chunks = len(settled)
        done.matched += _match(session, which, now)
        _apply(session, which, now)  # the first round's matches and the second's, from ``reports``
    elif matched:
        _apply_staged(session, now, repeated=recipients < matched)
    close_stage(session)
    done.sent_twice = flag_sent_twice(session, which, now)
    return done


def _recipient_of(
    account: SQLColumnExpression[str],
    batch_id: SQLColumnExpression[str | None],
    mobile: SQLColumnExpression[str],
    ref: SQLColumnExpression[str | None],
) -> ColumnElement[int | None]:
    """The recipient a report matches: by ``(batch_id, mobile)`` on its account, else by trigger ref on
    its account (a ref is only as good as the account it came through: another account's report or
    push may name any ref it likes)."""
    by_batch = (
        select(Recipient.id)
        .join(Campaign, Campaign.id == Recipient.campaign_id)
        .where(
            Recipient.batch_id == batch_id,
            Recipient.mobile == mobile,
            Recipient.state.in_(REPORTABLE),
            # The account it was sent on: the campaign's, unless it failed over since (issue 14).
            func.coalesce(Recipient.account, Campaign.account) == account,
        )
        .limit(1)
        .scalar_subquery()
    )
    by_ref = (
        select(Recipient.id)
        .join(Chunk, Chunk.id == Recipient.chunk_id)
        .join(Campaign, Campaign.id == Recipient.campaign_id)
        .where(
            Chunk.ref == ref,
            Recipient.mobile == mobile,
            Recipient.state.in_(REPORTABLE),
            func.coalesce(Recipient.account, Campaign.account) == account,
        )
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(by_batch, by_ref)


def _reconcile_stage_postgresql(session: Session, now: datetime) -> int:
    """The staged reports matched, written to ``reports`` and applied in one statement; returns how
    many matched. The match is :func:`_recipient_of`'s as two outer joins (by batch id; by trigger
    ref for the rest), one row per report (``DISTINCT ON``: the first match, as ``LIMIT 1`` takes);
    each matched recipient gets its latest report (the highest ``seq``, as ids follow it).

    Plans: nested loops, each staged report probing the recipients' indexes. The stage is a
    temporary table (no statistics unless analysed each batch, ~13 ms); analysed, the planner chose
    merge joins that scanned recipients from their start each batch (time growing with the batch's
    place: 100 -> 378 ms for the recipients' update at 1,000,000); unanalysed, hash joins over the
    whole table. A JIT compile cost more than the statement."""
    connection = session.connection()
    for setting in ("jit", "enable_hashjoin", "enable_mergejoin"):
        connection.exec_driver_sql(f"SET LOCAL {setting} = off")
    by_batch, by_ref = aliased(Recipient), aliased(Recipient)
    sent_on, ref_sent_on = aliased(Campaign), aliased(Campaign)
    batch_match = and_(
        by_batch.batch_id == stage.c.batch_id,
        by_batch.mobile == stage.c.mobile,
        by_batch.state.in_(REPORTABLE),
        # The account it was sent on, as in _recipient_of (a failover may have moved the campaign).
        func.coalesce(by_batch.account, sent_on.account) == stage.c.account,
    )
    ref_match = and_(
        by_batch.id.is_(None),
        Chunk.ref == stage.c.ref,
        by_ref.mobile == stage.c.mobile,
        by_ref.state.in_(REPORTABLE),
        func.coalesce(by_ref.account, ref_sent_on.account) == stage.c.account,  # the ref's account
    )
    recipient_id = func.coalesce(by_batch.id, by_ref.id).label("recipient_id")
    matched = (
        select(*(c for c in stage.c if c.name != "recipient_id"), recipient_id)
        .select_from(
            outerjoin(
                outerjoin(stage, join(by_batch, sent_on, sent_on.id == by_batch.campaign_id), batch_match),
                join(
                    join(by_ref, Chunk, Chunk.id == by_ref.chunk_id),
                    ref_sent_on,
                    ref_sent_on.id == by_ref.campaign_id,
                ),
                ref_match,
            )
        )
        .distinct(stage.c.seq)
        .order_by(stage.c.seq)
        .cte("matched")
    )
    stored = insert_staged(matched, now).cte("stored")
    latest = (
        select(matched.c.recipient_id, matched.c.status, matched.c.reported_at, matched.c.raw_pull_id)
        .where(matched.c.recipient_id.is_not(None))
        .distinct(matched.c.recipient_id)
        .order_by(matched.c.recipient_id, matched.c.seq.desc())
        .subquery("latest")
    )
    applied = (
        update(Recipient)
        .where(Recipient.id == latest.c.recipient_id, _not_older(latest.c.raw_pull_id))
        .values(_outcome(latest.c.status, latest.c.reported_at, latest.c.raw_pull_id, now))
        .cte("applied")
    )
    count = select(func.count(matched.c.recipient_id)).add_cte(stored, applied)
    return int(connection.execute(count).scalar_one())


def _match(session: Session, which: ColumnElement[bool], now: datetime) -> int:
    session.execute(
        update(ReportRow)
        .where(ReportRow.recipient_id.is_(None), which)
        .values(
            recipient_id=_recipient_of(
                ReportRow.account, ReportRow.batch_id, ReportRow.mobile, ReportRow.ref
            ),
            matched_at=now,
        ),
        execution_options=_NO_SYNC,
    )
    # matched_at marks this run's matches for _apply; the unmatched stay unmarked.
    session.execute(
        update(ReportRow)
        .where(ReportRow.recipient_id.is_(None), ReportRow.matched_at == now, which)
        .values(matched_at=None),
        execution_options=_NO_SYNC,
    )
    total = session.execute(select(func.count()).where(ReportRow.matched_at == now, which)).scalar_one()
    return int(total)


def _outcome(
    status: SQLColumnExpression[str],
    reported_at: SQLColumnExpression[datetime | None],
    raw_pull_id: SQLColumnExpression[int | None],
    now: datetime,
) -> Any:
    """A recipient's columns after its latest report."""
    delivered = func.upper(status) == DELIVERED
    return {
        "state": case((delivered, RecipientState.DELIVERED.value), else_=RecipientState.UNDELIVERED.value),
        "report_status": status,
        # Pushes of webservice/yunxin carry no time: then it is when we heard of it.
        "delivered_at": case((delivered, func.coalesce(reported_at, now)), else_=None),
        "report_raw_pull_id": raw_pull_id,
    }


def _not_older(raw_pull_id: SQLColumnExpression[int | None]) -> ColumnElement[bool]:
    """The report (of inbox body ``raw_pull_id``) is not older than the one the recipient shows: bodies
    are numbered as they arrive, and two connections may apply two bodies' reports in either order."""
    return func.coalesce(Recipient.report_raw_pull_id, 0) <= func.coalesce(raw_pull_id, 0)


def _apply(session: Session, which: ColumnElement[bool], now: datetime) -> int:
    # Each recipient's latest report: of the newest body, the last in it (ids follow arrival within a
    # body, not across bodies that two connections stored at once).
    ranked = (
        select(
            ReportRow.recipient_id.label("recipient_id"),
            ReportRow.id.label("report_id"),
            func.row_number()
            .over(
                partition_by=ReportRow.recipient_id,
                order_by=(func.coalesce(ReportRow.raw_pull_id, 0).desc(), ReportRow.id.desc()),
            )
            .label("rank"),
        )
        .where(ReportRow.matched_at == now, ReportRow.recipient_id.is_not(None), which)
        .subquery()
    )
    latest = select(ranked.c.recipient_id, ranked.c.report_id).where(ranked.c.rank == 1).subquery()
    report = aliased(ReportRow)
    result = session.execute(
        update(Recipient)
        .where(
            Recipient.id == latest.c.recipient_id,
            report.id == latest.c.report_id,
            _not_older(report.raw_pull_id),
        )
        .values(_outcome(report.status, report.reported_at, report.raw_pull_id, now)),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result)


def _apply_staged(session: Session, now: datetime, *, repeated: bool) -> int:
    """:func:`_apply` for the staged reports. The stage holds them in arrival order (= id order); only
    when a recipient has more than one (``repeated``) must its latest be picked out first."""
    if not repeated:
        result = session.execute(
            update(Recipient)
            .where(Recipient.id == stage.c.recipient_id, _not_older(stage.c.raw_pull_id))
            .values(_outcome(stage.c.status, stage.c.reported_at, stage.c.raw_pull_id, now)),
            execution_options=_NO_SYNC,
        )
        return _rowcount(result)
    latest = (
        select(stage.c.recipient_id, func.max(stage.c.seq).label("seq"))
        .where(stage.c.recipient_id.is_not(None))
        .group_by(stage.c.recipient_id)
        .subquery()
    )
    report = stage.alias("report")
    result = session.execute(
        update(Recipient)
        .where(
            Recipient.id == latest.c.recipient_id,
            report.c.seq == latest.c.seq,
            _not_older(report.c.raw_pull_id),
        )
        .values(_outcome(report.c.status, report.c.reported_at, report.c.raw_pull_id, now)),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result)


@dataclass(frozen=True)
class _Unknown:
    """A request whose outcome nobody knows, on one account: an unsettled chunk's, or (kept by an
    operator's retry, ``unknown_requests``) one whose recipients were re-queued since."""

    chunk_id: int  # the chunk whose request it is: the key of the evidence
    ref: str
    account: str
    sent_at: datetime  # when its request may have reached the vendor, at the earliest
    last_sent_at: datetime  # ... and at the latest
    current: bool  # the chunk itself is unsettled (else only recipients it carried are)


def _unsettled() -> ColumnElement[bool]:
    """Chunks whose request may have been taken and that evidence may settle: ``unknown``, or queued
    again by an operator's retry of an unknown chunk and not claimed since (settled, it is spared the
    second send)."""
    return (Chunk.state == ChunkState.UNKNOWN.value) | (
        (Chunk.state == ChunkState.QUEUED.value) & Chunk.requeued_from_unknown
    )


def _unknown_chunks(session: Session) -> list[_Unknown]:
    """Unsettled requests, each on the account it went out on, with when (``chunks.request_window``):
    the unsettled chunks that sent something (a chunk re-planned by a failover sent nothing yet: its
    recipients' earlier requests are below), and the requests an operator re-sent from unknown whose
    recipients still wait or are unknown (``unknown_requests``)."""
    first = select(func.min(Attempt.started_at)).where(Attempt.chunk_id == Chunk.id).scalar_subquery()
    last = select(func.max(Attempt.started_at)).where(Attempt.chunk_id == Chunk.id).scalar_subquery()
    # The account it went out on: its campaign's, unless the campaign failed over since.
    left_on = select(Recipient.account).where(Recipient.chunk_id == Chunk.id).limit(1).scalar_subquery()
    sent_on = func.coalesce(left_on, Campaign.account)
    rows = session.execute(
        select(Chunk.id, Chunk.ref, sent_on, Chunk.updated_at, Chunk.lease_until, first, last)
        .join(Campaign, Campaign.id == Chunk.campaign_id)
        .where(_unsettled(), may_have_sent())
    ).all()
    found = [
        _Unknown(cid, ref, account, *request_window(first_at, last_at, lease, updated), current=True)
        for cid, ref, account, updated, lease, first_at, last_at in rows
    ]
    current = {u.chunk_id for u in found}
    waiting = (RecipientState.UNKNOWN.value, RecipientState.QUEUED.value)
    for cid, ref, account, sent_from, sent_until in session.execute(
        select(
            UnknownRequest.chunk_id,
            UnknownRequest.ref,
            UnknownRequest.account,
            func.min(UnknownRequest.sent_from),
            func.max(UnknownRequest.sent_until),
        )
        .join(Recipient, Recipient.id == UnknownRequest.recipient_id)
        .where(Recipient.state.in_(waiting))
        .group_by(UnknownRequest.chunk_id, UnknownRequest.ref, UnknownRequest.account)
    ):
        found.append(_Unknown(cid, ref, account, sent_from, sent_until, current=cid in current))
    return found


def settle_unknown(session: Session, which: ColumnElement[bool]) -> list[int]:
    """Unsettled requests proven accepted by an unmatched report among ``which``: by the trigger ref, or
    by one of their numbers reported on the account they went out on within their time window, when no
    other request of that account could have carried that number then (another unsettled one, one in
    flight, or one an operator re-sent from unknown): a report that two requests may explain settles
    neither. Returns the ids of the chunks whose requests were settled here (not those another
    transaction settled first)."""
    unknown = _unknown_chunks(session)
    if not unknown:
        return []
    by_ref: dict[tuple[str, str], _Unknown] = {(u.account, u.ref): u for u in unknown}
    by_mobile: dict[tuple[str, str], list[_Unknown]] = {}
    by_id: dict[int, list[_Unknown]] = {}
    for u in unknown:
        by_id.setdefault(u.chunk_id, []).append(u)
    current = sorted(u.chunk_id for u in unknown if u.current)
    waiting = (RecipientState.UNKNOWN.value, RecipientState.QUEUED.value)
    for start in range(0, len(current), 500):
        for chunk_id, mobile in session.execute(
            select(Recipient.chunk_id, Recipient.mobile).where(
                Recipient.chunk_id.in_(current[start : start + 500]), Recipient.state.in_(waiting)
            )
        ):
            for chunk in by_id[chunk_id or 0]:
                by_mobile.setdefault((chunk.account, mobile or ""), []).append(chunk)
    for chunk_id, account, mobile in session.execute(
        select(UnknownRequest.chunk_id, UnknownRequest.account, UnknownRequest.mobile)
        .join(Recipient, Recipient.id == UnknownRequest.recipient_id)
        .where(Recipient.state.in_(waiting))
    ):
        for chunk in by_id.get(chunk_id, ()):
            if chunk.account == account:
                by_mobile.setdefault((account, mobile), []).append(chunk)
    reports = session.execute(
        select(ReportRow.account, ReportRow.batch_id, ReportRow.mobile, ReportRow.ref, ReportRow.reported_at)
        .where(ReportRow.recipient_id.is_(None), which)
        .order_by(ReportRow.id)
    ).all()
    others = _other_requests(session, {(a, m) for a, _, m, _, _ in reports if (a, m) in by_mobile})
    proofs: dict[int, tuple[_Unknown, str | None]] = {}
    for account, batch_id, mobile, ref, at in reports:
        owner = by_ref.get((account, ref)) if ref else None
        if owner is not None:
            proofs.setdefault(owner.chunk_id, (owner, batch_id))
            continue
        candidates = {
            c.chunk_id: c
            for c in by_mobile.get((account, mobile), ())
            if at is None or c.sent_at - CLOCK_SKEW <= at <= c.last_sent_at + UNKNOWN_WINDOW
        }
        if len(candidates) == 1:
            ((chunk_id, candidate),) = candidates.items()
            if not others.get((account, mobile), set()) - {chunk_id}:
                proofs.setdefault(chunk_id, (candidate, batch_id))
    return sorted(u.chunk_id for u, batch_id in proofs.values() if _accept(session, u, batch_id))


def _other_requests(session: Session, numbers: set[tuple[str, str]]) -> dict[tuple[str, str], set[int]]:
    """Of ``(account, mobile)`` pairs, the chunks whose requests may explain a report of that number on
    that account though no answer recorded it: one on the wire now (a recipient ``sending``: its report
    may come before its answer is recorded), or one an operator re-sent from ``unknown``
    (``unknown_requests``: it may have been taken, whatever the re-send's answer was), each on the
    account it went out on, never the campaign's current one."""
    found: dict[tuple[str, str], set[int]] = {}
    sent_on = func.coalesce(Recipient.account, Campaign.account)
    pairs = sorted(numbers)
    for start in range(0, len(pairs), 500):
        part = pairs[start : start + 500]
        mobiles, accounts = {m for _, m in part}, {a for a, _ in part}
        sending = session.execute(
            select(sent_on, Recipient.mobile, Recipient.chunk_id)
            .join(Campaign, Campaign.id == Recipient.campaign_id)
            .where(
                Recipient.mobile.in_(mobiles),
                Recipient.state == RecipientState.SENDING.value,
                sent_on.in_(accounts),
            )
        ).all()
        resent = session.execute(
            select(UnknownRequest.account, UnknownRequest.mobile, UnknownRequest.chunk_id).where(
                UnknownRequest.mobile.in_(mobiles), UnknownRequest.account.in_(accounts)
            )
        ).all()
        for account, mobile, chunk_id in [*sending, *resent]:
            if (account, mobile or "") in numbers:
                found.setdefault((account, mobile or ""), set()).add(chunk_id or 0)
    return found


def _accept(session: Session, u: _Unknown, batch_id: str | None) -> bool:
    """Settle ``u`` as accepted, its recipients on the account that sent it; False when it was no
    longer unsettled (another transaction did it)."""
    settled = 0
    if u.current:
        won = session.execute(
            update(Chunk)
            .where(Chunk.id == u.chunk_id, _unsettled())
            .values(
                state=ChunkState.ACCEPTED.value,
                batch_id=batch_id,
                accepted_at=u.sent_at,
                detail=SETTLED,
                updated_at=utcnow(),
            ),
            execution_options=_NO_SYNC,
        )
        if _rowcount(won):
            settled += 1
            session.execute(
                update(Recipient)
                .where(
                    Recipient.chunk_id == u.chunk_id,
                    Recipient.state.in_((RecipientState.UNKNOWN.value, RecipientState.QUEUED.value)),
                )
                .values(
                    state=RecipientState.ACCEPTED.value,
                    batch_id=batch_id,
                    submitted_at=u.sent_at,
                    account=sent_on(u.account),
                ),
                execution_options=_NO_SYNC,
            )
    # Its recipients re-planned elsewhere since (a failover), still waiting to be sent again
    settled += accept_request(session, u.chunk_id, batch_id, u.account, u.sent_at, SETTLED)
    return settled > 0


def flag_sent_twice(session: Session, which: ColumnElement[bool], now: datetime) -> int:
    """Recipients re-sent from ``unknown`` (``unknown_requests``) that a report among ``which`` shows
    the first request reached too: a report of the number on the account the first request went out
    on, since it went out, with another batch id than the recipient's (its re-send's), unmatched or
    matched to it by the trigger ref, while no other request of that account carries the number now.
    Each is flagged ``sent_twice`` (status, export) and such a report is tied to it (not an orphan).
    Returns how many were flagged here. Caller's transaction."""
    u = UnknownRequest
    other = aliased(Recipient)
    on_the_wire = (
        select(other.id)
        .join(Campaign, Campaign.id == other.campaign_id)
        .where(
            other.mobile == ReportRow.mobile,
            other.id != Recipient.id,
            other.state == RecipientState.SENDING.value,
            func.coalesce(other.account, Campaign.account) == ReportRow.account,
        )
        .exists()
    )
    found = session.execute(
        select(ReportRow.id, Recipient.id, ReportRow.reported_at, u.sent_from)
        .join(u, and_(u.account == ReportRow.account, u.mobile == ReportRow.mobile))
        .join(Recipient, Recipient.id == u.recipient_id)
        .where(
            which,
            (ReportRow.recipient_id.is_(None)) | (ReportRow.recipient_id == Recipient.id),
            Recipient.state.in_(REPORTABLE),
            ReportRow.batch_id.is_not(None),
            Recipient.batch_id.is_not(None),
            ReportRow.batch_id != Recipient.batch_id,
            ~on_the_wire,
        )
    ).all()
    owners: dict[int, set[int]] = {}
    for report_id, recipient_id, at, sent_from in found:
        if at is None or at >= sent_from - CLOCK_SKEW:  # since the first request went out
            owners.setdefault(report_id, set()).add(recipient_id)
    ties = {r: next(iter(ids)) for r, ids in owners.items() if len(ids) == 1}  # one recipient it can be
    if not ties:
        return 0
    for report_id, recipient_id in ties.items():
        session.execute(
            update(ReportRow)
            .where(ReportRow.id == report_id, ReportRow.recipient_id.is_(None))
            .values(recipient_id=recipient_id, matched_at=now),
            execution_options=_NO_SYNC,
        )
    flagged = session.execute(
        update(Recipient)
        .where(Recipient.id.in_(sorted(set(ties.values()))), ~Recipient.sent_twice)
        .values(sent_twice=True),
        execution_options=_NO_SYNC,
    )
    count = _rowcount(flagged)
    if count:
        logger.warning("reports show %d recipient(s) re-sent from unknown got the message twice", count)
    return count


def expire(session: Session, now: datetime | None = None, after: timedelta = EXPIRE_AFTER) -> int:
    """Accepted recipients with no report ``after`` their acceptance → ``expired`` (not for vendors
    without reports, whose recipients end at ``accepted``). Caller's transaction; returns how many."""
    now = now or utcnow()
    result = session.execute(
        update(Recipient)
        .where(
            reports_due(session),
            Recipient.state == RecipientState.ACCEPTED.value,
            Recipient.submitted_at < now - after,
        )
        .values(state=RecipientState.EXPIRED.value),
        execution_options=_NO_SYNC,
    )
    return _rowcount(result)


# How long after its body arrived an unmatched report may still match: its request's answer is recorded
# within minutes, an unknown chunk it may settle waits UNKNOWN_WINDOW, and a recipient accepted that long
# ago has expired. Older ones are orphans: re-matching them every run would cost more as they pile up.
REMATCH_WINDOW = max(UNKNOWN_WINDOW, EXPIRE_AFTER) + CLOCK_SKEW


def unmatched_ids(session: Session, now: datetime | None = None) -> Sequence[int]:
    """Ids of the reports still unmatched whose body arrived within :data:`REMATCH_WINDOW` of ``now``:
    from the first body received since (``ix_raw_pulls_received_at``), through the partial index
    ``ix_reports_unmatched_raw``, so the cost follows the window, not every orphan ever stored."""
    since = (now or utcnow()) - REMATCH_WINDOW
    first = session.execute(
        select(RawPull.id).where(RawPull.received_at >= since).order_by(RawPull.received_at).limit(1)
    ).scalar()
    if first is None:
        return []
    query = (
        select(ReportRow.id)
        .where(ReportRow.recipient_id.is_(None), ReportRow.raw_pull_id >= first)
        .order_by(ReportRow.id)
    )
    return list(session.execute(query).scalars())
