"""Campaign lifecycle transitions and the audit log."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import event, select

from dispatcher.errors import StateError, StoreError
from dispatcher.store import TRANSITIONS, AuditEntry, Campaign, CampaignState, audit, transition
from tests.store.conftest import Store, make_campaign

S = CampaignState
ALLOWED = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
FORBIDDEN = sorted((a, b) for a, b in itertools.product(S, S) if b not in TRANSITIONS[a])


def test_lifecycle_table_is_the_designed_one() -> None:
    # draft → scheduled → running ⇄ paused → completed | cancelled (+ unschedule, retry after completion)
    assert (S.RUNNING, S.PAUSED) in ALLOWED and (S.PAUSED, S.RUNNING) in ALLOWED
    assert (S.DRAFT, S.RUNNING) in FORBIDDEN  # a campaign is scheduled (and approved) before it runs
    assert TRANSITIONS[S.CANCELLED] == frozenset()


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_given_allowed_transition_when_applied_then_state_changes_and_is_audited(
    store: Store, source: CampaignState, target: CampaignState
) -> None:
    with store.session() as s:
        cid = make_campaign(s, source)
        # When
        assert transition(s, cid, target, "ann", reason="test") is source
    # Then
    with store.session() as s:
        assert s.get_one(Campaign, cid).state == target.value
        entry = s.scalars(select(AuditEntry)).one()
    assert (entry.actor, entry.action, entry.campaign_id) == ("ann", f"campaign.{target.value}", cid)
    assert entry.detail == {"from_state": source.value, "reason": "test"}


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_given_forbidden_transition_when_applied_then_state_error_and_nothing_changes(
    store: Store, source: CampaignState, target: CampaignState
) -> None:
    with store.session() as s:
        cid = make_campaign(s, source)
        with pytest.raises(StateError, match=f"from {source.value} to {target.value}"):
            transition(s, cid, target, "ann")
    with store.session() as s:
        assert s.get_one(Campaign, cid).state == source.value
        assert s.scalars(select(AuditEntry)).all() == []


def test_given_unknown_campaign_when_transition_then_store_error(store: Store) -> None:
    with store.session() as s, pytest.raises(StoreError, match="no campaign 404"):
        transition(s, 404, "paused", "ann")


def test_given_state_changed_between_read_and_update_when_transition_then_state_error(store: Store) -> None:
    # Given an operator pausing a running campaign, while another cancels it just before the pause lands
    with store.session() as s:
        cid = make_campaign(s, S.RUNNING)

    fired: list[bool] = []

    def cancel_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE CAMPAIGNS") and not fired:
            fired.append(True)
            with store.session() as other:
                transition(other, cid, "cancelled", "bob")

    event.listen(store.engine, "before_cursor_execute", cancel_first)
    # When / Then: the pause does not overwrite the cancellation
    with store.session() as s, pytest.raises(StateError, match="changed state meanwhile"):
        transition(s, cid, "paused", "ann")
    event.remove(store.engine, "before_cursor_execute", cancel_first)
    with store.session() as s:
        assert s.get_one(Campaign, cid).state == "cancelled"
        assert [e.action for e in s.scalars(select(AuditEntry))] == ["campaign.cancelled"]


def test_given_secret_looking_detail_when_audited_then_masked(store: Store) -> None:
    with store.session() as s:
        cid = make_campaign(s)
        audit(s, "ann", "account.test", cid, password="hunter2", push_token="tok", userPass="p", count=3)
        s.commit()
        entry = s.scalars(select(AuditEntry)).one()
    assert entry.detail == {"password": "***", "push_token": "***", "userPass": "***", "count": 3}


def test_given_audit_without_commit_when_rolled_back_then_not_kept(store: Store) -> None:
    # audit() joins the caller's transaction: an action that fails leaves no entry claiming it happened
    with store.session() as s:
        audit(s, "ann", "upload")
        s.rollback()
        assert s.scalars(select(AuditEntry)).all() == []


def test_given_no_such_campaign_when_asked_for_or_moved_then_not_found_a_store_error(store: Store) -> None:
    from dispatcher import campaigns
    from dispatcher.errors import NotFoundError

    with store.session() as s:
        with pytest.raises(NotFoundError, match="no campaign 424242") as got:
            campaigns.get(s, 424242)
        assert isinstance(got.value, StoreError)
        with pytest.raises(NotFoundError):
            transition(s, 424242, S.SCHEDULED, "ann")
    # A store error that is not "not found" stays one (the web answers 400/409, not 404).
    assert not issubclass(StateError, NotFoundError)
