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
from dispatcher.runtime import lease_seconds
from dispatcher.store import (
    AccountError,
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
    drains,
)
from dispatcher.store.campaigns import locked_state, move
from dispatcher.store.chunks import remember_unknown_requests, request_window
from dispatcher.store.types import db_now
from dispatcher.vendors import NO_REPORTS

logger = logging.getLogger(__name__)

SYSTEM = "settle"  # the actor of what the beat re-sends by itself
CLOCK_SKEW = timedelta(minutes=10)  # the vendor's report times against ours
SCALE_NUMBERS = 50  # a request of 1 + this many numbers waits twice as long as one of one number
LIVE = (CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.SENT, CampaignState.COMPLETED)


def wait_for(after: float, numbers: int) -> float:
    """Seconds an unknown request of ``numbers`` numbers waits (``after`` for one number): longer for a
    bigger one, whose reports a vendor returns over more pulls and which sends more twice if wrong."""
    return after * (1.0 + max(0, numbers - 1) / SCALE_NUMBERS)


def resend_settled(sessions: sessionmaker[Session], settings: Settings) -> list[int]:
    """The beat's step: mark the unknown requests that settled themselves (see the module's
    docstring), and re-queue those marked before a complete report drain that began since; returns
    the re-queued chunks' ids, to hand to the workers."""
    after = {n: a.settle_unknown_after for n, a in settings.accounts.items() if a.settle_unknown_after}
    if not after:
        return []
    with sessions() as session:
        now = session.execute(select(db_now())).scalar_one()
        candidates = session.execute(
            select(Chunk.id, Chunk.campaign_id, Campaign.account, Chunk.settle_marked_at)
            .join(Campaign, Campaign.id == Chunk.campaign_id)
            .where(
                Chunk.state == ChunkState.UNKNOWN.value,
                ~Chunk.requeued_from_unknown,
                Campaign.account.in_(list(after)),
                Campaign.state.in_([s.value for s in LIVE]),
            )
            .order_by(Chunk.id)
        ).all()
        marks: list[int] = []
        due: list[tuple[int, int, str]] = []
        for chunk_id, campaign_id, account, marked in candidates:
            if not _settled(session, chunk_id, account, now, after[account], settings):
                continue
            if _may_resend(session, account, marked, settings):
                due.append((chunk_id, campaign_id, account))
            elif marked is None:
                marks.append(chunk_id)
        if marks:
            session.execute(
                update(Chunk)
                .where(Chunk.id.in_(marks), Chunk.settle_marked_at.is_(None))
                .values(settle_marked_at=now),
                execution_options={"synchronize_session": False},
            )
            session.commit()
    queued: list[int] = []
    for chunk_id, campaign_id, account in due:
        if _resend(sessions, settings, chunk_id, campaign_id, account, after[account]):
            queued.append(chunk_id)
    return queued


def _may_resend(session: Session, account: str, marked: datetime | None, settings: Settings) -> bool:
    """The second phase: found unsettled (``marked``) before a complete drain of the account's reports
    began, with no account error now. entinfo, without reports, relies on its duplicate refusal."""
    if settings.account(account).vendor in NO_REPORTS:
        return True
    if marked is None or session.get(AccountError, account) is not None:
        return False
    drained = drains.last(session, account, "reports")
    return drained is not None and drained > marked


def _settled(
    session: Session, chunk_id: int, account: str, now: datetime, after: float, settings: Settings
) -> bool:
    """Whether the unknown chunk's request, on ``account``, went out long enough ago (``after``, scaled
    with its numbers) and nothing says it was taken while the account's reports would have said so."""
    recipients = session.execute(
        select(Recipient.mobile, Recipient.account).where(
            Recipient.chunk_id == chunk_id, Recipient.state == RecipientState.UNKNOWN.value
        )
    ).all()
    if not recipients or any(left not in (None, account) for _, left in recipients):
        return False  # nothing to send, or sent on an account the campaign has left
    try:
        config = settings.account(account)
    except ConfigError:
        return False
    if config.push:
        return False  # pushed reports: nothing shows that none is on the way
    first, last, lease, updated = session.execute(
        select(
            select(func.min(Attempt.started_at)).where(Attempt.chunk_id == chunk_id).scalar_subquery(),
            select(func.max(Attempt.started_at)).where(Attempt.chunk_id == chunk_id).scalar_subquery(),
            Chunk.lease_until,
            Chunk.updated_at,
        ).where(Chunk.id == chunk_id)
    ).one()
    sent_from, sent_until = request_window(first, last, lease, updated)
    if sent_until > now - timedelta(seconds=wait_for(after, len(recipients))):
        return False
    if config.vendor in NO_REPORTS:
        # Its "already sent" makes the re-send safe, only while its duplicate window still holds the
        # first request (the re-send leaves within its own claim's lease).
        window = config.duplicate_window or 0.0
        return (now - sent_from).total_seconds() + lease_seconds() < window
    return _silent(
        session, account, [m for m, _ in recipients if m], sent_from - CLOCK_SKEW
    ) and _heard_later(session, account, sent_until)


def _silent(session: Session, account: str, mobiles: list[str], since: datetime) -> bool:
    """No report names one of ``mobiles`` on ``account`` since ``since`` (matched or not), no body of
    its reports waits in the inbox unparsed, and none was set aside since (unread)."""
    reported = select(ReportRow.id).where(
        ReportRow.account == account,
        ReportRow.mobile.in_(mobiles),
        or_(ReportRow.reported_at.is_(None), ReportRow.reported_at >= since),
    )
    if session.execute(reported.limit(1)).first() is not None:
        return False
    unparsed = select(RawPull.id).where(
        RawPull.account == account,
        RawPull.kind == "reports",
        or_(RawPull.parsed_at.is_(None), RawPull.error.is_not(None) & (RawPull.received_at >= since)),
    )
    return session.execute(unparsed.limit(1)).first() is None


def _heard_later(session: Session, account: str, sent_until: datetime) -> bool:
    """Reports of requests of ``account`` sent after ``sent_until`` arrived: its report path worked."""
    later = (
        select(ReportRow.id)
        .join(Recipient, Recipient.id == ReportRow.recipient_id)
        .where(ReportRow.account == account, Recipient.submitted_at > sent_until)
    )
    return session.execute(later.limit(1)).first() is not None


def _resend(
    sessions: sessionmaker[Session],
    settings: Settings,
    chunk_id: int,
    campaign_id: int,
    account: str,
    after: float,
) -> bool:
    """Re-queue the chunk as an operator's ``retry --include-unknown`` would, under the campaign lock,
    once the evidence is read again there (a report stored since the decision stops it); False when
    it changed meanwhile (settled, re-sent, reported, or its campaign ended or moved)."""
    with sessions() as session:
        state = locked_state(session, campaign_id)
        campaign = session.get(Campaign, campaign_id)
        if state not in LIVE or campaign is None or campaign.account != account:
            return False
        now = session.execute(select(db_now())).scalar_one()
        if not _settled(session, chunk_id, account, now, after, settings):
            session.rollback()
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
