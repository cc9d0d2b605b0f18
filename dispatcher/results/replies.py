"""Replies tied to the campaign they answer: by trigger's ``customerUuid`` (= the chunk's ref) when that
campaign sent to the reply's number on the reply's account, else the campaign whose send to that number
on that account is the most recent (the account it went out on: a campaign may have failed over since).
The customer id comes from outside (a push names any ref it likes): on its own it never ties a number
to a campaign that did not send to it, nor a reply to another account's request."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from dispatcher.store import Campaign, Chunk, Recipient, RecipientState, ReplyRow

_NO_SYNC = {"synchronize_session": False}
_NEVER = datetime.min.replace(tzinfo=UTC)  # a send whose time is not recorded: before any other
# A recipient its campaign sent to (or may have: ``sending``, ``unknown``).
_SENT = tuple(
    s.value
    for s in (
        RecipientState.SENDING,
        RecipientState.ACCEPTED,
        RecipientState.UNKNOWN,
        RecipientState.DELIVERED,
        RecipientState.UNDELIVERED,
        RecipientState.EXPIRED,
    )
)


def sent_to(session: Session, account: str, mobiles: set[str]) -> set[str]:
    """Those of ``mobiles`` this account sent a message to (whatever campaign, the vendor took it or
    may have): the numbers whose reply may opt them out."""
    found: set[str | None] = set()
    listed = sorted(mobiles)
    for start in range(0, len(listed), 500):
        found.update(
            session.execute(
                select(Recipient.mobile)
                .join(Campaign, Campaign.id == Recipient.campaign_id)
                .where(
                    Recipient.mobile.in_(listed[start : start + 500]),
                    Recipient.state.in_(_SENT),
                    func.coalesce(Recipient.account, Campaign.account) == account,
                )
                .distinct()
            ).scalars()
        )
    return {m for m in found if m}


def assign_campaigns(session: Session, account: str, raw_pull_id: int) -> int:
    """Set ``campaign_id`` on the replies of one body. Returns how many found their campaign."""
    sent_to_it = (
        select(Recipient.id)
        .join(Campaign, Campaign.id == Recipient.campaign_id)
        .where(
            Recipient.campaign_id == Chunk.campaign_id,
            Recipient.mobile == ReplyRow.mobile,
            Recipient.state.in_(_SENT),
            func.coalesce(Recipient.account, Campaign.account) == ReplyRow.account,
        )
        .correlate_except(Recipient, Campaign)  # the chunk of the ref, the reply being updated
    )
    by_ref = select(Chunk.campaign_id).where(Chunk.ref == ReplyRow.ref, sent_to_it.exists()).scalar_subquery()
    session.execute(
        update(ReplyRow)
        .where(ReplyRow.raw_pull_id == raw_pull_id, ReplyRow.ref.is_not(None))
        .values(campaign_id=by_ref),
        execution_options=_NO_SYNC,
    )
    mobiles = list(
        session.execute(
            select(ReplyRow.mobile)
            .where(ReplyRow.raw_pull_id == raw_pull_id, ReplyRow.campaign_id.is_(None))
            .distinct()
        ).scalars()
    )
    found: dict[str, int] = {}
    latest: dict[str, tuple[datetime, int]] = {}
    for start in range(0, len(mobiles), 500):
        # One pass over the account's submitted recipients per 500 numbers (there is no mobile index:
        # it would slow every million-row upload for the sake of a few replies). Each number's most
        # recent send on this account wins (a campaign created first may have sent last).
        rows = session.execute(
            select(Recipient.mobile, Recipient.campaign_id, func.max(Recipient.submitted_at))
            .join(Campaign, Campaign.id == Recipient.campaign_id)
            .where(
                Recipient.mobile.in_(mobiles[start : start + 500]),
                Recipient.batch_id.is_not(None),
                func.coalesce(Recipient.account, Campaign.account) == account,
            )
            .group_by(Recipient.mobile, Recipient.campaign_id)
        )
        for mobile, campaign_id, sent_at in rows:
            key = (sent_at or _NEVER, campaign_id)
            if mobile and key > latest.get(mobile, (_NEVER, 0)):
                latest[mobile] = key
                found[mobile] = campaign_id
    if found:
        # Core executemany on the connection (the ORM would read a list as by-primary-key updates).
        session.connection().execute(
            update(ReplyRow)
            .where(
                ReplyRow.raw_pull_id == raw_pull_id,
                ReplyRow.campaign_id.is_(None),
                ReplyRow.mobile == bindparam("m"),
            )
            .values(campaign_id=bindparam("c")),
            [{"m": m, "c": c} for m, c in found.items()],
        )
    return len(found)
