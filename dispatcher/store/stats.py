"""Campaign statistics on top of the recipient counts: delivery, failures by code, orphans, cost.

Read-only queries on the store's recipients, chunks and reports (``campaigns.status`` adds them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, tuple_
from sqlalchemy.orm import Session

from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.store.models import FAILED_STATES, Campaign, Chunk, RawPull, Recipient, ReportRow
from dispatcher.store.types import RecipientState
from dispatcher.vendors import NO_REPORTS

NO_REPORTS_NOTE = "entinfo has no delivery reports: accepted by the vendor is the final state"
_SENT = (
    RecipientState.ACCEPTED.value,
    RecipientState.DELIVERED.value,
    RecipientState.UNDELIVERED.value,
    RecipientState.EXPIRED.value,
)


def reports_due(session: Session) -> ColumnElement[bool]:
    """Recipients sent on a vendor that reports: their campaign's, unless a failover left them on an
    earlier account (``recipients.account``), whose vendor the move recorded (entinfo's acceptances
    are final wherever the campaign went; another vendor's still await a report)."""
    reporting = select(Campaign.id).where(Campaign.vendor.not_in(NO_REPORTS))
    due: ColumnElement[bool] = Recipient.account.is_(None) & Recipient.campaign_id.in_(reporting)
    moved = session.execute(select(Campaign.id, Campaign.routing).where(Campaign.routing.is_not(None)))
    left = [
        (campaign_id, step.get("from"))
        for campaign_id, routing in moved
        for step in (routing or {}).get("moves", [])
        if step.get("from_vendor") not in NO_REPORTS
    ]
    return due | tuple_(Recipient.campaign_id, Recipient.account).in_(left) if left else due


def reports_due_count(session: Session, campaign: Campaign, accepted: int) -> int:
    """How many of the campaign's ``accepted`` recipients still await a report: those sent on an
    account whose vendor reports (after a failover, each recipient's own account decides)."""
    moves = (campaign.routing or {}).get("moves", [])
    if not moves:
        return accepted if campaign.vendor not in NO_REPORTS else 0
    vendor_of = {m.get("from"): m.get("from_vendor") for m in moves}
    vendor_of[campaign.account] = campaign.vendor
    sent_on = func.coalesce(Recipient.account, campaign.account)
    rows = session.execute(
        select(sent_on, func.count())
        .where(Recipient.campaign_id == campaign.id, Recipient.state == RecipientState.ACCEPTED.value)
        .group_by(sent_on)
    )
    return sum(int(n) for account, n in rows if (vendor_of.get(account) or campaign.vendor) not in NO_REPORTS)


def failure_codes(session: Session, campaign_id: int) -> dict[str, int]:
    """Send error codes and undelivered report statuses, by count (most frequent first)."""
    code = func.coalesce(Recipient.report_status, Recipient.vendor_code, Recipient.error_class)
    rows = session.execute(
        select(code, func.count())
        # The partial index's own condition, as literal text: the database matches it to the index
        # (SQLite cannot with bound values) and counts from the index alone.
        .where(Recipient.campaign_id == campaign_id, FAILED_STATES)
        .group_by(code)
    ).all()
    return dict(sorted(((str(c or "unknown"), int(n)) for c, n in rows), key=lambda kv: (-kv[1], kv[0])))


def orphans(session: Session, campaign_id: int) -> int:
    """Unmatched reports that name one of the campaign's requests (batch id or trigger ref)."""
    mine = select(Chunk.id).where(
        Chunk.campaign_id == campaign_id,
        or_(Chunk.batch_id == ReportRow.batch_id, Chunk.ref == ReportRow.ref),
    )
    return int(
        session.execute(
            select(func.count()).where(ReportRow.recipient_id.is_(None), mine.exists())
        ).scalar_one()
    )


def set_aside(session: Session, campaign: Campaign) -> int:
    """Report and reply bodies of the campaign's account, since it was created, that hold something
    that could not be read or stored (``reports set-aside`` lists them): its figures may miss them."""
    return int(
        session.execute(
            select(func.count()).where(
                RawPull.error.is_not(None),
                RawPull.account == campaign.account,
                RawPull.received_at >= campaign.created_at,
            )
        ).scalar_one()
    )


def extend_status(
    session: Session,
    data: dict[str, Any],
    settings: Settings | None = None,
    segments: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Add delivery figures to ``campaigns.status`` output (in place; also returned). ``segments``: each
    state's segments, when the caller counted them already (``recipients.counts_and_segments``)."""
    campaign_id = int(data["id"])
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    delivered, undelivered = int(data.get("delivered", 0)), int(data.get("undelivered", 0))
    expired = int(data.get("expired", 0))
    reported = delivered + undelivered + expired
    data["orphans"] = orphans(session, campaign_id)
    data["set_aside"] = set_aside(session, campaign)
    data["delivery_rate"] = round(delivered / reported, 4) if reported else None
    data["failure_codes"] = failure_codes(session, campaign_id)
    # Per account that sent (a failover leaves recipients on earlier accounts): their vendors say
    # whether reports come, their prices what was spent.
    by_account = _segments_by_account(session, campaign, segments)
    vendor_of = {m.get("from"): m.get("from_vendor") for m in (campaign.routing or {}).get("moves", [])}
    vendor_of[campaign.account] = campaign.vendor
    data["has_reports"] = any((vendor_of.get(a) or campaign.vendor) not in NO_REPORTS for a in by_account)
    if not data["has_reports"]:
        data["note"] = NO_REPORTS_NOTE
    data["segments_sent"] = sum(by_account.values())
    settings = settings or _settings()
    prices = {account: _price(settings, account) for account in by_account}
    known = [price * by_account[a] for a, price in prices.items() if price is not None]
    data["cost"] = str(sum(known, Decimal(0))) if len(known) == len(prices) else None
    return data


def _segments_by_account(
    session: Session, campaign: Campaign, by_state: dict[str, int] | None = None
) -> dict[str, int]:
    """Segments sent per account that sent them. Without a failover every recipient went on the
    campaign's account: one sum over the sent states, from the (campaign, state, segments) index alone
    (a million recipients in a fraction of a second, where the per-account grouping reads each row)."""
    sent = Recipient.campaign_id == campaign.id, Recipient.state.in_(_SENT)
    if not (campaign.routing or {}).get("moves"):
        if by_state is not None:
            return {campaign.account: sum(by_state.get(state, 0) for state in _SENT)}
        total = session.execute(select(func.sum(Recipient.segments)).where(*sent)).scalar_one()
        return {campaign.account: int(total or 0)}
    sent_on = func.coalesce(Recipient.account, campaign.account)
    sent_segments = func.sum(case((Recipient.state.in_(_SENT), Recipient.segments), else_=0))
    return {
        str(account): int(segments or 0)
        for account, segments in session.execute(
            select(sent_on, sent_segments)
            .where(Recipient.campaign_id == campaign.id, Recipient.state != RecipientState.REJECTED.value)
            .group_by(sent_on)
        )
    } or {campaign.account: 0}


def _settings() -> Settings | None:
    try:
        return Settings.load()
    except ConfigError:  # the figures must show even when the config cannot be read
        return None


def _price(settings: Settings | None, account: str) -> Decimal | None:
    if settings is None:
        return None
    config = settings.accounts.get(account)
    return config.price_per_segment if config is not None else None
