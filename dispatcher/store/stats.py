"""Campaign statistics on top of the recipient counts: delivery, failures by code, orphans, cost.

Read-only queries on the store's recipients, chunks and reports (``campaigns.status`` adds them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, tuple_
from sqlalchemy.orm import Session

from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.store.models import Campaign, Chunk, RawPull, Recipient, ReportRow
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


def failure_codes(session: Session, campaign_id: int) -> dict[str, int]:
    """Send error codes and undelivered report statuses, by count (most frequent first)."""
    code = func.coalesce(Recipient.report_status, Recipient.vendor_code, Recipient.error_class)
    rows = session.execute(
        select(code, func.count())
        .where(
            Recipient.campaign_id == campaign_id,
            Recipient.state.in_((RecipientState.FAILED.value, RecipientState.UNDELIVERED.value)),
        )
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


def extend_status(session: Session, data: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Add delivery figures to ``campaigns.status`` output (in place; also returned)."""
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
    data["has_reports"] = campaign.vendor not in NO_REPORTS
    if not data["has_reports"]:
        data["note"] = NO_REPORTS_NOTE
    segments = int(
        session.execute(
            select(func.coalesce(func.sum(Recipient.segments), 0)).where(
                Recipient.campaign_id == campaign_id, Recipient.state.in_(_SENT)
            )
        ).scalar_one()
    )
    data["segments_sent"] = segments
    price = _price(settings, campaign.account)
    data["cost"] = str(price * segments) if price is not None else None
    return data


def _price(settings: Settings | None, account: str) -> Decimal | None:
    if settings is None:
        try:
            settings = Settings.load()
        except ConfigError:  # the figures must show even when the config cannot be read
            return None
    config = settings.accounts.get(account)
    return config.price_per_segment if config is not None else None
