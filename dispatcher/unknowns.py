"""Unknowns that settle themselves: opt-in per account (``settle_unknown_after``, e.g. ``"30m"``).

An ``unknown`` request is otherwise re-sent only by a person (``retry --include-unknown``). With the
setting, the beat re-sends it once, as that retry would (the chunk marked ``requeued_from_unknown``, its
request kept in ``unknown_requests``, marked ``automatic``; audited ``chunk.unknown_resent``; the export
says so), when nothing says it was taken and the account's reports would have said so:

- it went out at least ``settle_unknown_after`` ago, on the account its campaign is still on;
- reports have arrived since for requests of that account sent after it: its report path works;
- no report names any of its numbers on that account since it went out (nor is one unmatched), and no
  body of the account's reports waits in the inbox unparsed, or was set aside unparsed since;
- it is not itself a re-send of an unknown request: once only, a re-send left unknown waits for a person.

A vendor without reports (entinfo) cannot show that; its duplicate refusal makes the re-send safe by
itself instead: entinfo refuses a text it already sent to a number (``-20``), and the re-send's
"already sent" settles the chunk as accepted (halved until one number is left), not sent twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.store import (
    Attempt,
    Campaign,
    CampaignState,
    Chunk,
    ChunkState,
    RawPull,
    Recipient,
    RecipientState,
    ReportRow,
    audit,
)
from dispatcher.store.campaigns import locked_state, move
from dispatcher.store.chunks import remember_unknown_requests, request_window
from dispatcher.store.types import db_now
from dispatcher.vendors import NO_REPORTS

logger = logging.getLogger(__name__)

SYSTEM = "settle"  # the actor of what the beat re-sends by itself
CLOCK_SKEW = timedelta(minutes=10)  # the vendor's report times against ours
LIVE = (CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.SENT, CampaignState.COMPLETED)


def resend_settled(sessions: sessionmaker[Session], settings: Settings) -> list[int]:
    """The beat's step: re-queue the unknown requests that settled themselves (see the module's
    docstring); returns their chunks' ids, to hand to the workers."""
    after = {n: a.settle_unknown_after for n, a in settings.accounts.items() if a.settle_unknown_after}
    if not after:
        return []
    with sessions() as session:
        now = session.execute(select(db_now())).scalar_one()
        candidates = [
            (chunk_id, campaign_id, account)
            for chunk_id, campaign_id, account in session.execute(
                select(Chunk.id, Chunk.campaign_id, Campaign.account)
                .join(Campaign, Campaign.id == Chunk.campaign_id)
                .where(
                    Chunk.state == ChunkState.UNKNOWN.value,
                    ~Chunk.requeued_from_unknown,
                    Campaign.account.in_(list(after)),
                    Campaign.state.in_([s.value for s in LIVE]),
                )
                .order_by(Chunk.id)
            )
            if _settled(session, chunk_id, account, now - timedelta(seconds=after[account]), settings)
        ]
    queued: list[int] = []
    for chunk_id, campaign_id, account in candidates:
        if _resend(sessions, chunk_id, campaign_id, account, after[account]):
            queued.append(chunk_id)
    return queued


def _settled(session: Session, chunk_id: int, account: str, before: datetime, settings: Settings) -> bool:
    """Whether the unknown chunk's request, on ``account``, went out before ``before`` and nothing
    says it was taken while the account's reports would have said so."""
    recipients = session.execute(
        select(Recipient.mobile, Recipient.account).where(
            Recipient.chunk_id == chunk_id, Recipient.state == RecipientState.UNKNOWN.value
        )
    ).all()
    if not recipients or any(left not in (None, account) for _, left in recipients):
        return False  # nothing to send, or sent on an account the campaign has left
    first, last, lease, updated = session.execute(
        select(
            select(func.min(Attempt.started_at)).where(Attempt.chunk_id == chunk_id).scalar_subquery(),
            select(func.max(Attempt.started_at)).where(Attempt.chunk_id == chunk_id).scalar_subquery(),
            Chunk.lease_until,
            Chunk.updated_at,
        ).where(Chunk.id == chunk_id)
    ).one()
    sent_from, sent_until = request_window(first, last, lease, updated)
    if sent_until > before:
        return False
    mobiles = [m for m, _ in recipients if m]
    since = sent_from - CLOCK_SKEW
    reported = select(ReportRow.id).where(
        ReportRow.account == account,
        ReportRow.mobile.in_(mobiles),
        or_(ReportRow.reported_at.is_(None), ReportRow.reported_at >= since),
    )
    if session.execute(reported.limit(1)).first() is not None:
        return False
    try:
        vendor = settings.account(account).vendor
    except ConfigError:
        return False
    if vendor in NO_REPORTS:
        return True  # its "already sent" makes the re-send safe
    # A report of it may wait in the inbox, not parsed yet (bodies are not always parsed in order), or
    # be in a body set aside for a person (one the store could not take)
    unparsed = select(RawPull.id).where(
        RawPull.account == account,
        RawPull.kind == "reports",
        or_(RawPull.parsed_at.is_(None), RawPull.error.is_not(None) & (RawPull.received_at >= since)),
    )
    if session.execute(unparsed.limit(1)).first() is not None:
        return False
    # Reports of requests sent after it arrived: its report would have too.
    later = (
        select(ReportRow.id)
        .join(Recipient, Recipient.id == ReportRow.recipient_id)
        .where(ReportRow.account == account, Recipient.submitted_at > sent_until)
    )
    return session.execute(later.limit(1)).first() is not None


def _resend(
    sessions: sessionmaker[Session], chunk_id: int, campaign_id: int, account: str, after: float
) -> bool:
    """Re-queue the chunk as an operator's ``retry --include-unknown`` would, under the campaign lock;
    False when it changed meanwhile (settled, re-sent, or its campaign ended or moved)."""
    with sessions() as session:
        state = locked_state(session, campaign_id)
        campaign = session.get(Campaign, campaign_id)
        if state not in LIVE or campaign is None or campaign.account != account:
            return False
        remember_unknown_requests(session, [chunk_id], automatic=True)
        won = session.execute(
            update(Chunk)
            .where(
                Chunk.id == chunk_id, Chunk.state == ChunkState.UNKNOWN.value, ~Chunk.requeued_from_unknown
            )
            .values(
                state=ChunkState.QUEUED.value,
                requeued_from_unknown=True,
                not_before=None,
                error_class=None,
                updated_at=db_now(),
            ),
            execution_options={"synchronize_session": False},
        )
        if not _rowcount(won):
            session.rollback()
            return False
        session.execute(
            update(Recipient)
            .where(Recipient.chunk_id == chunk_id, Recipient.state == RecipientState.UNKNOWN.value)
            .values(state=RecipientState.QUEUED.value, error_class=None, vendor_code=None),
            execution_options={"synchronize_session": False},
        )
        audit(
            session, SYSTEM, "chunk.unknown_resent", campaign_id, chunk=chunk_id, account=account, after=after
        )
        if state in (CampaignState.SENT, CampaignState.COMPLETED):
            move(session, campaign_id, state, CampaignState.RUNNING, SYSTEM, reason="unknown settled")
        session.commit()
    logger.warning(
        "campaign %s: unknown chunk %s on %s settled itself; sent again", campaign_id, chunk_id, account
    )
    return True


def _rowcount(result: Any) -> int:
    return int(result.rowcount)
