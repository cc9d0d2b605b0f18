"""``campaign export``: one row per input row, in input order, streamed into xlsx (write-only) or CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.results.export import Cell, write_rows
from dispatcher.store import Campaign, Chunk, Recipient, RecipientState
from dispatcher.store.recipients import recipient_text
from dispatcher.vendors.registry import get as vendor_module

HEADER = (
    "row",
    "mobile",
    "text",
    "segments",
    "state",
    "vendor code",
    "meaning",
    "batch id",
    "submitted at",
    "delivered at",
    "reject reason",
)
FETCH = 10_000
_NO_REPORTS = "accepted by the vendor (entinfo has no delivery reports)"


def _meaning(vendor: str, state: str, code: str | None) -> str:
    if state == RecipientState.DELIVERED:
        return "delivered"
    if state == RecipientState.UNDELIVERED:
        return f"not delivered ({code})" if code else "not delivered"
    if state == RecipientState.EXPIRED:
        return "no delivery report within 72 h"
    if state == RecipientState.ACCEPTED and vendor == "entinfo":
        return _NO_REPORTS
    if code and code.lstrip("-").isdigit():
        return vendor_module(vendor).classify(int(code)).meaning_en
    return ""


def rows(session: Session, campaign_id: int) -> Iterator[list[Cell]]:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        from dispatcher.errors import StoreError

        raise StoreError(f"no campaign {campaign_id}")
    vendor, zone = campaign.vendor, ZoneInfo(campaign.timezone)

    def local(at: datetime | None) -> datetime | None:
        return at.astimezone(zone) if at is not None else None

    query = (
        select(
            Recipient.row_number,
            Recipient.mobile,
            Recipient.raw_value,
            recipient_text(),  # a same-text chunk's recipients keep their text in the chunk
            Recipient.segments,
            Recipient.state,
            Recipient.report_status,
            Recipient.vendor_code,
            Recipient.batch_id,
            Recipient.submitted_at,
            Recipient.delivered_at,
            Recipient.reject_reason,
        )
        .outerjoin(Chunk, Chunk.id == Recipient.chunk_id)
        .where(Recipient.campaign_id == campaign_id)
        .order_by(Recipient.position, Recipient.id)
        .execution_options(yield_per=FETCH)
    )
    for (
        row,
        mobile,
        raw,
        text,
        segments,
        state,
        status,
        code,
        batch,
        sent,
        delivered,
        reason,
    ) in session.execute(query):
        vendor_code = status or code
        yield [
            row,
            mobile or raw,
            text,
            segments,
            state,
            vendor_code,
            _meaning(vendor, state, vendor_code),
            batch,
            local(sent),
            local(delivered),
            reason,
        ]


def export(session: Session, campaign_id: int, path: Path) -> int:
    """Write the campaign's rows to ``path`` (.xlsx or .csv); returns how many."""
    return write_rows(path, HEADER, rows(session, campaign_id))
