"""When each account's last complete drain of its reports (or replies) began: one that went on until
the vendor had no more, every body stored. ``settle_unknown_after`` re-sends an unknown request only
after such a drain began later than it was found unsettled (:mod:`dispatcher.unknowns`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher.store.models import AccountDrain
from dispatcher.store.types import db_now


def now(session: Session) -> datetime:
    """The database's clock: a drain's start, as the beat compares it with its own marks."""
    return session.execute(select(db_now())).scalar_one()


def record(session: Session, account: str, kind: str, started_at: datetime) -> None:
    """The drain of ``kind`` of ``account`` that began at ``started_at`` ended complete. Never moves
    the time back (two drains may end in either order). Commits."""
    won = session.execute(
        update(AccountDrain)
        .where(
            AccountDrain.account == account, AccountDrain.kind == kind, AccountDrain.started_at < started_at
        )
        .values(started_at=started_at),
        execution_options={"synchronize_session": False},
    )
    if not int(getattr(won, "rowcount", 0)) and session.get(AccountDrain, (account, kind)) is None:
        session.add(AccountDrain(account=account, kind=kind, started_at=started_at))
    try:
        session.commit()
    except IntegrityError:  # another drain recorded its own first: as recent as ours, near enough
        session.rollback()


def last(session: Session, account: str, kind: str = "reports") -> datetime | None:
    """When the last complete drain of ``kind`` of ``account`` began; None: none recorded."""
    return session.execute(
        select(AccountDrain.started_at).where(AccountDrain.account == account, AccountDrain.kind == kind)
    ).scalar_one_or_none()
