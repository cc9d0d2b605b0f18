"""Failover: a campaign whose account fails moves what it has not sent to its next fallback account.

A campaign created with ``--fallback B [--fallback C]`` leaves its current account when

- an account-class error (no balance, bad password, IP not bound, blocked) paused it: the worker's
  ordinary pause, with a chunk sent back to the queue with class ``account``; or
- the account kept answering "try later" (or refusing connections) for longer than ``failover_after``
  seconds (config): the beat pauses the campaign first.

The beat (:func:`run`, every tick) then waits until nothing of the campaign is ``sending`` (a request in
flight is answered and recorded first), and in ONE transaction under the campaign's row lock: closes the
chunks still to send (and those failed with a class that would be retried) as ``failed``/``moved``,
re-plans their recipients to the new account's vendor and limits (a 500-number yunxin chunk becomes
50-number trigger chunks), points the campaign at the new account, runs it again and audits the move.
Recipients that were accepted, are ``unknown`` (may have been taken), or failed for good never move: none
is ever sent twice. What was settled on the old account keeps its name in ``recipients.account``.

A chunk still packed for an old account can be queued again later (a late "try later" from that
account for a chunk swept ``unknown``, an operator's retry): workers never send one that does not fit
the account they send on, and the beat re-plans it (:func:`replan_misfits`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, false, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import chunker
from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.store import (
    Attempt,
    AuditEntry,
    Campaign,
    CampaignState,
    Chunk,
    ChunkState,
    Recipient,
    RecipientState,
    audit,
)
from dispatcher.store.campaigns import locked_state, move
from dispatcher.store.types import db_now
from dispatcher.vendors.wire import ErrorClass

logger = logging.getLogger(__name__)

SYSTEM = "failover"
WORKER = "system"  # the actor of a worker's pause (dispatch.SYSTEM)
MOVED = "moved"  # the error class of a chunk whose recipients went to another account
# Failed chunks whose recipients were never taken and would be sent again by a retry: they move too.
MOVABLE_CLASSES = (ErrorClass.RETRY_LATER.value, ErrorClass.RATE_LIMITED.value, ErrorClass.ACCOUNT.value)
WAITING = (RecipientState.PLANNED.value, RecipientState.QUEUED.value)
ENDED_OR_RUNNING = (CampaignState.RUNNING, CampaignState.SENT, CampaignState.COMPLETED)


def _to_move(campaign_id: int) -> Any:
    """The campaign's chunks whose recipients go to the next account."""
    return and_(
        Chunk.campaign_id == campaign_id,
        or_(
            Chunk.state.in_((ChunkState.PLANNED.value, ChunkState.QUEUED.value)),
            and_(Chunk.state == ChunkState.FAILED.value, Chunk.error_class.in_(MOVABLE_CLASSES)),
        ),
    )


def _any_chunk(session: Session, campaign_id: int, state: ChunkState, error_class: ErrorClass) -> bool:
    """Whether some chunk of the campaign is in ``state`` with ``error_class``."""
    query = select(Chunk.id).where(
        Chunk.campaign_id == campaign_id, Chunk.state == state.value, Chunk.error_class == error_class.value
    )
    return session.execute(query.limit(1)).first() is not None


def trigger(session: Session, campaign: Campaign, now: datetime, after: timedelta) -> str | None:
    """Why ``campaign`` should leave its account now (``"account"`` / ``"retry_later"``), or None."""
    if not campaign.fallbacks:
        return None
    if campaign.state == CampaignState.PAUSED:
        # Who paused comes first: a person's pause wins, also over a failover decided before it (a
        # person who resumed the failover's pause and paused again): theirs to lift.
        paused_by = _paused_by(session, campaign.id)
        if paused_by not in (WORKER, SYSTEM):
            return None
        failing = (campaign.routing or {}).get("failing_over")
        if failing:
            return str(failing)
        account_error = _any_chunk(session, campaign.id, ChunkState.QUEUED, ErrorClass.ACCOUNT)
        return "account" if account_error and paused_by == WORKER else None
    if campaign.state not in ENDED_OR_RUNNING:
        return None
    # The retries gave up on "try later" (the backoff can run out before ``failover_after``): the
    # campaign may even have finished with those recipients failed.
    if _any_chunk(session, campaign.id, ChunkState.FAILED, ErrorClass.RETRY_LATER):
        return "retry_later"
    if campaign.state != CampaignState.RUNNING:
        return None
    # The first "try later" of a chunk still waiting because of it (closed chunks of an earlier
    # account are ``moved``: they do not count against this one), to a request sent since the last
    # move: an earlier account's late answer for a chunk swept ``unknown`` re-queues it with that
    # account's "try later", which says nothing of this one.
    stuck = _to_move(campaign.id) & (Chunk.error_class == ErrorClass.RETRY_LATER.value)
    since = [Attempt.started_at >= _moved_at(campaign)] if (campaign.routing or {}).get("moves") else []
    first = session.execute(
        select(func.min(Attempt.started_at))
        .join(Chunk, Chunk.id == Attempt.chunk_id)
        .where(stuck, Attempt.error_class == ErrorClass.RETRY_LATER.value, *since)
    ).scalar_one_or_none()
    return "retry_later" if first is not None and first <= now - after else None


def _moved_at(campaign: Campaign) -> datetime:
    """When the campaign last moved to its account (``routing.moves``, to the second: its floor)."""
    at = datetime.fromisoformat((campaign.routing or {})["moves"][-1]["at"])
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _paused_by(session: Session, campaign_id: int) -> str | None:
    """Who paused the campaign last: the worker (an account error), the failover, or a person."""
    return session.execute(
        select(AuditEntry.actor)
        .where(AuditEntry.campaign_id == campaign_id, AuditEntry.action == "campaign.paused")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def db_clock(sessions: sessionmaker[Session]) -> datetime:
    """The database's clock: what the beat compares the store's times with (never its machine's)."""
    with sessions() as session:
        at = session.execute(select(db_now())).scalar_one()
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def run(sessions: sessionmaker[Session], settings: Settings, now: datetime | None = None) -> list[int]:
    """The beat's failover pass; returns the new chunks to hand to the workers."""
    now = now or db_clock(sessions)
    after = timedelta(seconds=settings.failover_after)
    with sessions() as session:
        candidates = [
            c.id
            for c in session.execute(
                select(Campaign).where(
                    Campaign.fallbacks.is_not(None),
                    Campaign.state.in_([CampaignState.PAUSED.value, *(c.value for c in ENDED_OR_RUNNING)]),
                )
            ).scalars()
            if c.fallbacks
        ]
    queued = replan_misfits(sessions, settings)
    for campaign_id in candidates:
        try:
            queued += _one(sessions, settings, campaign_id, now, after)
        except ConfigError as exc:  # a fallback gone from the config: stays paused, said in the log
            logger.error("campaign %s cannot fail over: %s", campaign_id, exc)
    return queued


def _one(
    sessions: sessionmaker[Session], settings: Settings, campaign_id: int, now: datetime, after: timedelta
) -> list[int]:
    with sessions() as session:  # most ticks find nothing: a read, no lock
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or (trigger(session, campaign, now, after) is None and not _stale(campaign)):
            return []
    with sessions() as session:
        # Decided again under the campaign lock, and ``routing`` written from what was read under it:
        # an overlapping tick's move (or a person's resume) between a read and this write was lost,
        # its record overwritten, and the campaign failed over a second time off a healthy account.
        if locked_state(session, campaign_id) is None:
            return []
        campaign = session.get_one(Campaign, campaign_id)
        routing = dict(campaign.routing or {})
        if _stale(campaign):  # a person ran it again since the failover paused it: decided afresh
            routing.pop("failing_over")
        reason = trigger(session, campaign, now, after)
        if reason is None:
            campaign.routing = routing
            session.commit()
            return []
        if campaign.state in ENDED_OR_RUNNING:
            # Stop the claims first; the move happens once nothing is in flight. A campaign that
            # finished with recipients the retries gave up on runs again, on the next account.
            source = CampaignState(campaign.state)
            if source != CampaignState.RUNNING and not move(
                session, campaign_id, source, CampaignState.RUNNING, SYSTEM, reason=reason
            ):
                return []
            if not move(
                session, campaign_id, CampaignState.RUNNING, CampaignState.PAUSED, SYSTEM, reason=reason
            ):
                session.rollback()
                return []
        in_flight = session.execute(
            select(func.count()).where(
                Chunk.campaign_id == campaign_id, Chunk.state == ChunkState.SENDING.value
            )
        ).scalar_one()
        campaign.routing = {**routing, "failing_over": reason}
        session.commit()
        if in_flight:
            return []
    return switch(sessions, settings, campaign_id, reason)


def _stale(campaign: Campaign) -> bool:
    """A failover decided (``failing_over``) for a campaign no longer paused for it."""
    return bool((campaign.routing or {}).get("failing_over")) and campaign.state != CampaignState.PAUSED


def switch(sessions: sessionmaker[Session], settings: Settings, campaign_id: int, reason: str) -> list[int]:
    """Move the campaign's unsent recipients to its next account (see the module docstring); returns
    the new chunks' ids. Does nothing unless the campaign is paused with nothing in flight."""
    with sessions() as session:
        # The campaign lock (SQLite: the write lock, taken before anything is read: a resume between
        # these reads and the writes below let a worker claim what is then re-planned).
        if locked_state(session, campaign_id) != CampaignState.PAUSED:
            return []
        # PostgreSQL: a claim that read the campaign running just before it paused may not have
        # committed yet; locking the waiting chunks waits for it, and the check below then sees it.
        # (Not the ``sending`` ones: a worker recording an answer holds those and waits for the
        # campaign's lock, which this transaction holds.)
        session.execute(
            select(Chunk.id)
            .where(Chunk.campaign_id == campaign_id, Chunk.state.in_(WAITING))
            .with_for_update()
        ).all()
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        busy = select(Chunk.id).where(
            Chunk.campaign_id == campaign_id, Chunk.state == ChunkState.SENDING.value
        )
        if not campaign.fallbacks or session.execute(busy.limit(1)).first():
            return []
        old, new_name, rest = campaign.account, campaign.fallbacks[0], list(campaign.fallbacks[1:])
        old_vendor = campaign.vendor
        new = settings.account(new_name)
        code = session.execute(
            select(Chunk.code)
            .where(_to_move(campaign_id), Chunk.error_class.in_(MOVABLE_CLASSES))
            .order_by(Chunk.updated_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        closing = list(session.execute(select(Chunk.id, Chunk.text).where(_to_move(campaign_id))).tuples())
        chunk_text = dict(closing)
        movable = or_(
            Recipient.state.in_(WAITING),
            and_(Recipient.state == RecipientState.FAILED.value, Recipient.error_class.in_(MOVABLE_CLASSES)),
        )
        rows = _recipients_of(session, [cid for cid, _ in closing], movable)
        # What was settled so far stays on the old account's name (reports, figures, the export).
        session.execute(
            update(Recipient)
            .where(
                Recipient.campaign_id == campaign_id,
                Recipient.account.is_(None),
                Recipient.state != RecipientState.REJECTED.value,
            )
            .values(account=old),
            execution_options={"synchronize_session": False},
        )
        # The database's clock, as every time the beat compares (a beat an hour ahead stamped the new
        # chunks an hour late: the re-queue of a lost enqueue waited that long).
        now = session.execute(select(db_now())).scalar_one()
        _close_moved(
            session, [cid for cid, _ in closing], _to_move(campaign_id), f"moved to account {new_name}"
        )
        new_ids = _replan(session, campaign, new_name, rows, chunk_text, settings)
        campaign.account, campaign.vendor, campaign.fallbacks = new_name, new.vendor, rest or None
        routing = {k: v for k, v in (campaign.routing or {}).items() if k != "failing_over"}
        entry = {
            "from": old,
            "from_vendor": old_vendor,
            "to": new_name,
            "reason": reason,
            "code": code,
            "recipients": len(rows),
            "chunks": len(new_ids),
            "at": now.isoformat(timespec="seconds"),
        }
        routing["moves"] = [*routing.get("moves", []), entry]
        campaign.routing = routing
        audit(session, SYSTEM, "campaign.failover", campaign_id, **entry)
        move(session, campaign_id, CampaignState.PAUSED, CampaignState.RUNNING, SYSTEM, reason="failover")
        session.commit()
        logger.warning("campaign %s failed over from %s to %s (%s)", campaign_id, old, new_name, reason)
        return new_ids


def replan_misfits(sessions: sessionmaker[Session], settings: Settings) -> list[int]:
    """Re-plan, onto its campaign's account, every queued chunk of a running campaign that is packed
    for an account it failed over from (or for its account as configured before: see below) and does
    not fit the one it is on now (the workers leave such a chunk queued: ``dispatch.AWAITS_REPLAN``).
    Returns the new chunks' ids. Runs first in :func:`run`, so such a chunk's "try later" answers from
    the old account never count against the new one.

    Only queued chunks move, and only their queued recipients: a chunk is queued again after a move
    only by a path that already decided to send it again, and the re-plan changes its packing, never
    whether it is sent:

    - a late "try later" from the old account for a chunk swept ``unknown`` (``dispatch._record``):
      that answer settles the one attempt in flight, and says the old account did not take it.
      Genuinely safe: nothing of it is in flight any more.
    - an operator's ``campaign retry --include-unknown``: the operator chose to send again what the
      old account may have taken. The re-plan sends it once, on the new account, as the retry would
      have. The new chunks stay "re-queued from unknown", and the first request is kept with the
      account it went out on (``unknown_requests``): a late acceptance or a report of it arriving
      after the re-plan still spares the second send, a cancel still calls them ``unknown``.
    - a retry of failed chunks with a class that allows it (``campaign retry``): never taken.

    A chunk left ``unknown`` is never queued, so never re-planned here.

    Not only campaigns that failed over: an account's configuration changed while its campaign ran
    (made encrypted: one number a request; pointed at another vendor) leaves chunks packed for the
    account as it was, which nothing else would ever re-plan (they would wait, re-queued every
    :data:`scheduler.STALE_QUEUED`, and the campaign would never end). One query per account in use
    finds the campaigns holding such chunks; most ticks find none and lock nothing."""
    with sessions() as session:
        accounts = session.execute(
            select(Campaign.account).where(Campaign.state == CampaignState.RUNNING.value).distinct()
        ).scalars()
        holding: set[int] = set()
        for account in sorted(accounts):
            try:
                misfit = _misfit(settings, account)
            except ConfigError as exc:  # gone from the config: nothing can be sent on it anyway
                logger.error("campaigns on account %s cannot be re-planned: %s", account, exc)
                continue
            holding.update(
                session.execute(
                    select(Chunk.campaign_id)
                    .join(Campaign, Campaign.id == Chunk.campaign_id)
                    .where(
                        Campaign.state == CampaignState.RUNNING.value,
                        Campaign.account == account,
                        Chunk.state == ChunkState.QUEUED.value,
                        misfit,
                    )
                    .distinct()
                ).scalars()
            )
    new: list[int] = []
    for campaign_id in sorted(holding):
        try:
            new += _replan_misfits(sessions, settings, campaign_id)
        except ConfigError as exc:  # its account changed meanwhile, to one gone from the config
            logger.error("campaign %s cannot be re-planned: %s", campaign_id, exc)
    return new


def _misfit(settings: Settings, account_name: str) -> Any:
    """The chunks that do not fit ``account_name`` (``chunker.capacity``; a personalised one packed
    for another account, whose separators its texts were checked against), as a WHERE clause."""
    account = settings.account(account_name)
    same, personalised = chunker.capacity(account.vendor, encrypted=account.encrypted)
    packed_here = Chunk.account.is_(None) | (Chunk.account == account_name)
    fits = or_(
        and_(Chunk.text.is_not(None), Chunk.recipient_count <= same),
        and_(Chunk.text.is_(None), Chunk.recipient_count <= personalised, packed_here)
        if personalised
        else false(),
    )
    return ~fits


def _replan_misfits(sessions: sessionmaker[Session], settings: Settings, campaign_id: int) -> list[int]:
    """:func:`replan_misfits` for one campaign, in one transaction, locking as :func:`switch` does."""
    waiting = (Chunk.campaign_id == campaign_id) & (Chunk.state == ChunkState.QUEUED.value)
    with sessions() as session:
        # The campaign lock first (a cancel, pause, retry or failover waits, then sees the move), then
        # the chunks: a claim not yet committed is waited for, and its chunks are then not queued.
        if locked_state(session, campaign_id) != CampaignState.RUNNING:
            return []
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        closing = list(
            session.execute(
                select(Chunk.id, Chunk.text)
                .where(waiting, _misfit(settings, campaign.account))
                .order_by(Chunk.id)
                .with_for_update()
            ).tuples()
        )
        if not closing:
            session.rollback()
            return []
        ids = [cid for cid, _ in closing]
        rows = _recipients_of(session, ids, Recipient.state == RecipientState.QUEUED.value)
        still_queued = Chunk.state == ChunkState.QUEUED.value
        _close_moved(session, ids, still_queued, f"re-planned for account {campaign.account}")
        new_ids = _replan(session, campaign, campaign.account, rows, dict(closing), settings)
        audit(
            session, SYSTEM, "campaign.replanned", campaign_id,
            account=campaign.account, chunks=len(ids), recipients=len(rows), new_chunks=len(new_ids),
        )  # fmt: skip
        session.commit()
        logger.warning(
            "campaign %s: %d chunks packed for an earlier account re-planned for %s",
            campaign_id, len(ids), campaign.account,
        )  # fmt: skip
        return new_ids


def _recipients_of(session: Session, chunk_ids: list[int], which: Any) -> list[Any]:
    """The recipients of ``chunk_ids`` that ``which`` selects, in input order, with what
    :func:`_replan` plans them by."""
    rows: list[Any] = []
    for start in range(0, len(chunk_ids), 1000):
        rows += session.execute(
            select(
                Recipient.id,
                Recipient.mobile,
                Recipient.text,
                Recipient.chunk_id,
                Recipient.position,
                Recipient.variant,
                Chunk.requeued_from_unknown.label("again"),
            )
            .join(Chunk, Chunk.id == Recipient.chunk_id)
            .where(Recipient.chunk_id.in_(chunk_ids[start : start + 1000]), which)
        ).all()
    rows.sort(key=lambda r: r.position)
    return rows


def _close_moved(session: Session, chunk_ids: list[int], still: Any, detail: str) -> None:
    """``chunk_ids`` (those ``still`` selects) → ``failed``/``moved``: their recipients are re-planned."""
    for start in range(0, len(chunk_ids), 1000):
        session.execute(
            update(Chunk)
            .where(Chunk.id.in_(chunk_ids[start : start + 1000]), still)
            .values(
                state=ChunkState.FAILED.value,
                error_class=MOVED,
                not_before=None,
                detail=detail,
                updated_at=db_now(),
            ),
            execution_options={"synchronize_session": False},
        )


def _replan(
    session: Session,
    campaign: Campaign,
    account_name: str,
    rows: list[Any],
    chunk_text: dict[int, str | None],
    settings: Settings,
) -> list[int]:
    """Plan ``rows`` (recipients) as new queued chunks of ``account_name``; point the recipients at them."""
    if not rows:
        return []
    account = settings.account(account_name)
    mobiles = [r.mobile or "" for r in rows]
    texts = [r.text if r.text is not None else (chunk_text.get(r.chunk_id) or "") for r in rows]
    # One A/B variant per request, as when the campaign was planned (no variants: one group); and an
    # operator's re-send of an unknown request apart, still marked so (``requeued_from_unknown``): the
    # evidence of its first request (a report, a late answer) still spares it, a cancel still calls
    # it unknown, never "not sent".
    planned: list[chunker.PlannedChunk] = []
    again: list[bool] = []
    for variant, resent in sorted({(r.variant or "", bool(r.again)) for r in rows}):
        members = [i for i, r in enumerate(rows) if ((r.variant or ""), bool(r.again)) == (variant, resent)]
        for p in chunker.plan(
            [mobiles[i] for i in members],
            [texts[i] for i in members],
            account.vendor,
            campaign_id=campaign.id,
            separators=account.separators(),
            same_text_max=account.same_text_max,
            encrypted=account.encrypted,
        ):
            p.seq, p.indexes = len(planned), tuple(members[i] for i in p.indexes)
            planned.append(p)
            again.append(resent)
    in_use = session.execute(
        select(func.coalesce(func.max(Chunk.seq), -1) + 1).where(Chunk.campaign_id == campaign.id)
    ).scalar_one()
    base = max(int(in_use), campaign.next_seq or 0)
    table = cast(Table, Chunk.__table__)
    ids = []
    for p, resent in zip(planned, again, strict=True):
        seq = base + p.seq
        ids.append(
            session.execute(
                insert(table)
                .values(
                    campaign_id=campaign.id,
                    seq=seq,
                    ref=chunker.chunk_ref(campaign.id, seq),
                    method=p.method,
                    text=p.text,
                    recipient_count=len(p.mobiles),
                    state=ChunkState.QUEUED.value,
                    attempts=0,
                    account=account_name,
                    requeued_from_unknown=resent,
                    created_at=db_now(),
                    updated_at=db_now(),  # the requeue sweep's clock
                )
                .returning(table.c.id)
            ).scalar_one()
        )
    campaign.next_seq = base + len(planned)
    params = []
    for chunk_id, p in zip(ids, planned, strict=True):
        for index in p.indexes:
            params.append(
                {"rid": rows[index].id, "cid": chunk_id, "txt": None if p.text is not None else texts[index]}
            )
    recipients = cast(Table, Recipient.__table__)
    session.connection().execute(
        update(recipients)
        .where(recipients.c.id == bindparam("rid"))
        .values(
            chunk_id=bindparam("cid"),
            text=bindparam("txt"),
            state=RecipientState.QUEUED.value,
            error_class=None,
            vendor_code=None,
            account=None,
        ),
        params,
    )
    return ids
