"""Campaign lifecycle (docs/state-machine.md): allowed transitions, each one conditional and audited."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, CursorResult, insert, select, true, update
from sqlalchemy.orm import Session

from dispatcher.errors import NotFoundError, StateError
from dispatcher.i18n import N_
from dispatcher.store.models import AuditEntry, Campaign
from dispatcher.store.types import CampaignState, utcnow
from dispatcher.vendors.wire import SECRET_FIELDS

S = CampaignState
# draft → scheduled → running ⇄ paused → sent → completed, or cancelled. ``sent``: every chunk is final
# but delivery reports are still due; ``completed``: every accepted recipient has its report or has
# expired (at once for a vendor without reports). Additions an operator or the beat needs: scheduled →
# draft (unschedule to edit); sent/completed → running ("retry failed", or a late answer, re-queues a
# chunk); completed → sent (a late answer accepted a chunk of a completed campaign: reports are due).
TRANSITIONS: dict[CampaignState, frozenset[CampaignState]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.DRAFT, S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.PAUSED, S.SENT, S.COMPLETED, S.CANCELLED}),
    S.PAUSED: frozenset({S.RUNNING, S.SENT, S.COMPLETED, S.CANCELLED}),
    S.SENT: frozenset({S.RUNNING, S.COMPLETED}),
    S.COMPLETED: frozenset({S.RUNNING, S.SENT}),
    S.CANCELLED: frozenset(),
}
_SECRET_WORDS = ("password", "secret", "token")


def audit(session: Session, actor: str, action: str, campaign_id: int | None = None, **detail: Any) -> None:
    """Append an audit entry in the caller's transaction (no commit). Secret-looking keys are masked."""
    session.execute(
        insert(AuditEntry).values(
            at=utcnow(), actor=actor, action=action, campaign_id=campaign_id, detail=_safe_detail(detail)
        )
    )


def _safe_detail(detail: dict[str, Any]) -> dict[str, Any] | None:
    if not detail:
        return None
    masked = {
        k: "***" if k in SECRET_FIELDS or any(w in k.lower() for w in _SECRET_WORDS) else v
        for k, v in detail.items()
    }
    # Round-trip so datetimes, enums and decimals are stored as the text a person would read.
    result: dict[str, Any] = json.loads(json.dumps(masked, default=str, ensure_ascii=False))
    return result


def refuse(session: Session, campaign_id: int, source: CampaignState, target: CampaignState) -> NoReturn:
    """Roll back and say that the campaign cannot go from ``source`` to ``target``."""
    session.rollback()
    raise StateError.say(
        N_("campaign %(id)s cannot go from %(source)s to %(target)s"),
        id=campaign_id,
        source=source,
        target=target,
    )


def transition(
    session: Session, campaign_id: int, to_state: CampaignState | str, actor: str, **detail: Any
) -> CampaignState:
    """Move a campaign to ``to_state`` if the table allows it; returns the state it left. Commits.

    The update is conditional on the state just read, so of two people pausing and cancelling at the
    same moment one wins and the other gets :class:`StateError` instead of a silent overwrite.
    """
    target = CampaignState(to_state)
    current = session.execute(select(Campaign.state).where(Campaign.id == campaign_id)).scalar_one_or_none()
    if current is None:
        session.rollback()
        raise NotFoundError.say(N_("no campaign %(id)s"), id=campaign_id)
    source = CampaignState(current)
    if target not in TRANSITIONS[source]:
        refuse(session, campaign_id, source, target)
    if not move(session, campaign_id, source, target, actor, **detail):
        session.rollback()
        raise StateError.say(
            N_("campaign %(id)s changed state meanwhile; not moved to %(target)s"),
            id=campaign_id,
            target=target,
        )
    session.commit()
    return source


def locked_state(session: Session, campaign_id: int) -> CampaignState | None:
    """The campaign's state, its row locked until the caller commits: the campaign lock that a cancel,
    a retry, a resume and a worker re-opening work take first. PostgreSQL: ``FOR NO KEY UPDATE``.
    SQLite ignores that and reads outside any transaction, so another writer could change the state
    between this read and the caller's writes: a no-op write of the row first takes SQLite's one write
    lock, held to the commit. None: no such campaign. Caller's transaction."""
    if session.connection().dialect.name == "sqlite":
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(state=Campaign.state),
            execution_options={"synchronize_session": False},
        )
    query = select(Campaign.state).where(Campaign.id == campaign_id).with_for_update(key_share=True)
    state = session.execute(query).scalar_one_or_none()
    return None if state is None else CampaignState(state)


def move(
    session: Session,
    campaign_id: int,
    source: CampaignState,
    target: CampaignState,
    actor: str,
    *,
    only_if: ColumnElement[bool] | None = None,
    **detail: Any,
) -> bool:
    """``source → target`` if the campaign is still in ``source`` (and ``only_if`` holds, in the same
    statement), audited, in the caller's transaction (no commit). Returns whether it moved. The
    dispatcher pauses a campaign this way in the transaction that records the account error."""
    result = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id, Campaign.state == source.value, true() if only_if is None else only_if
        )
        .values(state=target.value, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return False
    audit(session, actor, f"campaign.{target.value}", campaign_id, from_state=source.value, **detail)
    return True
