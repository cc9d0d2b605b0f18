"""Proofs: the rendered first message, sent to a few numbers the sender types, before the real start.

A proof is a campaign of its own (``campaigns.proof`` true): the same account, its limiter and its
workers, the same exactly-once chunks and records, its own recipients and the vendor's answer, audited
as ``campaign.proof``. Being apart, it never counts in the real campaign's figures, exports or list.
It sends at once, whatever the send window (its numbers are the sender's colleagues', who asked for it
now); the opt-out list still holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import campaigns, chunker
from dispatcher.config import Settings
from dispatcher.contacts import parse_mobile
from dispatcher.errors import InputError
from dispatcher.i18n import N_
from dispatcher.store import (
    Campaign,
    CampaignState,
    Chunk,
    NewRecipient,
    Recipient,
    audit,
    bulk_insert_recipients,
)
from dispatcher.text import segments
from dispatcher.vendors import NO_REPORTS
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.statuses import status_meaning

MAX_NUMBERS = 5
_SEPARATORS = re.compile(r"[\n,，;；、]+")


@dataclass(frozen=True)
class Proof:
    campaign_id: int
    chunk_ids: list[int]
    mobiles: list[str]
    text: str = ""  # what was sent, shown with the answers


def parse_numbers(text: str, opted_out: frozenset[str] = frozenset()) -> list[str]:
    """The numbers a sender typed (spaces, commas or new lines between them): at most five mainland
    mobiles, none opted out. ``InputError`` names the first entry that is not one."""
    entries: list[str] = []
    for part in _SEPARATORS.split(text.strip()):
        part = part.strip()
        if not part:
            continue
        # "+86 138 0013 8001" is one number; "13800138000 13900139000" two
        entries += [part] if parse_mobile(part)[0] else part.split()
    if not entries:
        raise InputError.say(N_("type one to five mobile numbers to send the proof to"))
    if len(entries) > MAX_NUMBERS:
        raise InputError.say(
            N_("a proof goes to at most %(max)s numbers, not %(count)s"), max=MAX_NUMBERS, count=len(entries)
        )
    mobiles: list[str] = []
    for entry in entries:
        mobile, _reason = parse_mobile(entry)
        if mobile is None:
            raise InputError.say(N_("%(entry)s is not a mainland China mobile number"), entry=entry[:40])
        if mobile in opted_out:
            raise InputError.say(N_("%(entry)s is on the opt-out list"), entry=mobile)
        if mobile not in mobiles:
            mobiles.append(mobile)
    return mobiles


def send(
    sessions: sessionmaker[Session],
    settings: Settings,
    account_name: str,
    text: str,
    mobiles: list[str],
    *,
    actor: str,
    name: str,
) -> Proof:
    """Store the proof campaign (``text`` to ``mobiles``) and start it; returns its chunk ids to queue."""
    account = settings.account(account_name)
    with sessions() as session:
        campaign_id = session.execute(
            insert(Campaign)
            .values(
                name=name[:200],
                account=account.name,
                vendor=account.vendor,
                template=text,
                state=CampaignState.DRAFT.value,
                window_start=0,
                window_end=24 * 60,
                timezone=settings.timezone,
                created_by=actor,
                proof=True,
            )
            .returning(Campaign.id)
        ).scalar_one()
        planned = chunker.plan(
            mobiles,
            [text] * len(mobiles),
            account.vendor,
            campaign_id=campaign_id,
            separators=account.separators(),
            same_text_max=account.same_text_max,
            encrypted=account.encrypted,
        )
        chunk_of, _ = campaigns.insert_chunks(session, campaign_id, planned, len(mobiles), account.name)
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(next_seq=len(planned)))
        count = segments(text)
        rows = [
            NewRecipient(i + 1, i, mobile, mobile, text, count, None, chunk_of[i])
            for i, mobile in enumerate(mobiles)
        ]
        bulk_insert_recipients(session, campaign_id, rows)
        audit(
            session,
            actor,
            "campaign.proof",
            campaign_id,
            account=account.name,
            numbers=len(mobiles),
            text=text,
        )
        session.commit()
    ids = campaigns.start(sessions, campaign_id, actor)
    return Proof(campaign_id, ids, mobiles, text)


def outcome(session: Session, campaign_id: int) -> dict[str, Any]:
    """What became of a proof: per number, its state and the vendor's answer (code and meaning)."""
    campaign = campaigns.get(session, campaign_id)
    if not campaign.proof:
        raise InputError.say(N_("campaign %(id)s is not a proof"), id=campaign_id)
    module = vendor_module(campaign.vendor)
    rows = session.execute(
        select(
            Recipient.mobile,
            Recipient.state,
            Recipient.vendor_code,
            Recipient.report_status,
            Recipient.batch_id,
            Chunk.detail,
        )
        .join(Chunk, Chunk.id == Recipient.chunk_id, isouter=True)
        .where(Recipient.campaign_id == campaign_id)
        .order_by(Recipient.position)
    ).all()
    numbers = []
    for mobile, state, code, status, batch_id, detail in rows:
        info = module.classify(int(code)) if code and code.lstrip("-").isdigit() else None
        # What the answer means: the report's status (DELIVRD: 成功送达手机) once there is one, else the
        # submission's code; the page shows the meaning, not the code.
        meaning = (status_meaning(status, False), status_meaning(status, True)) if status else None
        if meaning is None and info is not None:
            meaning = (info.meaning_en, info.meaning)
        numbers.append(
            {
                "mobile": mobile,
                "state": state,
                "vendor_code": status or code,
                "meaning": meaning[0] if meaning else None,
                "meaning_zh": meaning[1] if meaning else None,
                "batch_id": batch_id,
                "detail": detail,
            }
        )
    return {
        "id": campaign_id,
        "state": campaign.state,
        "account": campaign.account,
        "vendor": campaign.vendor,
        "has_reports": campaign.vendor not in NO_REPORTS,
        "text": campaign.template,
        "numbers": numbers,
    }
