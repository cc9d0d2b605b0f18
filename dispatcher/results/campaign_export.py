"""``campaign export``: one row per input row, in input order, streamed into xlsx (write-only) or CSV.

Said in Chinese or English (``lang``): headers, states, what a vendor code means, why a row was not sent
("第 12 行，手机号码列：不是大陆手机号"). Times are China time, the zone named in the header. Every row keeps
its phone number, whatever the reason it was not sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import i18n, reasons
from dispatcher.errors import InputError, NotFoundError
from dispatcher.i18n import N_
from dispatcher.results.export import Cell, write_rows
from dispatcher.store import Campaign, Chunk, Recipient, RecipientState, UnknownRequest
from dispatcher.store.recipients import recipient_text
from dispatcher.vendors import NO_REPORTS
from dispatcher.vendors.registry import get as vendor_module

# (header, column width in characters)
COLUMNS = (
    (N_("row"), 7),
    (N_("mobile"), 14),
    (N_("text"), 48),
    (N_("segments"), 8),
    (N_("state"), 10),
    (N_("vendor code"), 12),
    (N_("meaning"), 28),
    (N_("batch id"), 22),
    (N_("submitted at (China time)"), 20),
    (N_("delivered at (China time)"), 20),
    (N_("reject reason"), 40),
    (N_("account"), 16),  # the account that sent it (issue 14: failover)
    (N_("variant"), 8),  # its A/B template (issue 14)
)
HEADER = tuple(name for name, _ in COLUMNS)  # the English header (csv's default)
FETCH = 10_000
RESENT = N_("sent again by itself: nothing showed that its first request was taken")
LANGS = {"zh": "zh_CN", "en": "en"}


def language(lang: str | None, path: Path) -> str:
    """The catalog locale of ``--lang`` (``zh`` or ``en``): by default Chinese for xlsx, English for csv."""
    if lang is None:
        return "en" if path.suffix.lower() == ".csv" else "zh_CN"
    locale = LANGS.get(lang) or i18n.normalise(lang)
    if locale is None:
        raise InputError(f"--lang must be zh or en, not {lang!r}")
    return locale


def _meaning(vendor: str, state: str, code: str | None) -> str:
    _ = i18n.gettext
    if state == RecipientState.DELIVERED:
        return _("delivered")
    if state == RecipientState.UNDELIVERED:
        return _("not delivered (%(code)s)") % {"code": code} if code else _("not delivered")
    if state == RecipientState.EXPIRED:
        return _("no delivery report within 72 h")
    if state == RecipientState.ACCEPTED and vendor in NO_REPORTS:
        return _("accepted by the vendor (entinfo has no delivery reports)")
    if state == RecipientState.CANCELLED:
        return _("not sent: the campaign was cancelled")
    if state == RecipientState.CAPPED:
        return _("not sent: the number reached its frequency cap")
    if code and code.lstrip("-").isdigit():
        info = vendor_module(vendor).classify(int(code))
        return info.meaning if i18n.current() == "zh_CN" else info.meaning_en
    return ""


def rows(session: Session, campaign_id: int) -> Iterator[list[Cell]]:
    """The export's rows, said in the current language (``i18n.use``)."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"no campaign {campaign_id}")
    vendor = campaign.vendor
    # After a failover, a recipient settled on an earlier account is said in that account's vendor codes.
    moves = (campaign.routing or {}).get("moves", [])
    vendor_of = {m.get("from"): m.get("from_vendor") or vendor for m in moves}

    def local(at: datetime | None) -> datetime | None:
        return at.astimezone(i18n.CHINA) if at is not None else None

    # Sent again by the beat after an unknown outcome settled itself (``settle_unknown_after``).
    resent = (
        select(UnknownRequest.id)
        .where(UnknownRequest.recipient_id == Recipient.id, UnknownRequest.automatic)
        .exists()
    )
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
            Recipient.reject_code,
            Recipient.reject_params,
            Recipient.account,
            Recipient.variant,
            resent.label("resent"),
        )
        .outerjoin(Chunk, Chunk.id == Recipient.chunk_id)
        .where(Recipient.campaign_id == campaign_id)
        .order_by(Recipient.position, Recipient.id)
        .execution_options(yield_per=FETCH)
    )
    states: dict[str, str] = {}
    for (row, mobile, raw, text, segments, state, status, code, batch, sent, delivered, reason, reason_code,
         params, account, variant, again) in session.execute(query):  # fmt: skip
        vendor_code = status or code
        sent_by = None if state == RecipientState.REJECTED else (account or campaign.account)
        label = states.get(state) or states.setdefault(state, i18n.pgettext("recipient", state))
        yield [
            row,
            mobile or raw,
            text,
            segments,
            label,
            vendor_code,
            _meaning(vendor_of.get(account, vendor) if account else vendor, state, vendor_code),
            batch,
            local(sent),
            local(delivered),
            _reason(row, reason, reason_code, params) or (i18n.gettext(RESENT) if again else None),
            sent_by,
            variant,
        ]


def _reason(row: int, english: str | None, code: str | None, params: dict[str, Any] | None) -> str | None:
    if not english and not code:
        return None
    column = str((params or {}).get("column") or "")
    return reasons.at_row(row, column, code, params, english)


def export(session: Session, campaign_id: int, path: Path, lang: str | None = None) -> int:
    """Write the campaign's rows to ``path`` (.xlsx or .csv) in ``lang``; returns how many."""
    with i18n.use(language(lang, path)):
        header = [i18n.gettext(name) for name, _ in COLUMNS]
        return write_rows(path, header, rows(session, campaign_id), widths=[w for _, w in COLUMNS])
