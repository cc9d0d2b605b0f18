"""Bulk recipients and per-state counts."""

from __future__ import annotations

from sqlalchemy import select

from dispatcher.store import NewRecipient, Recipient, RecipientState, bulk_insert_recipients, counts
from tests.store.conftest import Store, make_campaign


def test_given_rows_when_bulk_inserted_then_every_row_is_stored_in_order(store: Store) -> None:
    # Given an upload with accepted and rejected rows
    rows = [
        NewRecipient(2, 0, "13912345678", "139 1234 5678", "您好 张三【店】", 1),
        NewRecipient(3, 1, None, "12345", None, 0, reject_reason="bad_number"),
        NewRecipient(4, 2, "13700000000", "13700000000.0", "您好 李四【店】", 2),
    ]
    with store.session() as s:
        cid = make_campaign(s)
        # When
        n = bulk_insert_recipients(s, cid, iter(rows))
        s.commit()
    # Then
    assert n == 3
    with store.session() as s:
        stored = s.scalars(select(Recipient).order_by(Recipient.position)).all()
    assert [
        (r.row_number, r.mobile, r.raw_value, r.text, r.segments, r.reject_reason, r.state) for r in stored
    ] == [
        (2, "13912345678", "139 1234 5678", "您好 张三【店】", 1, None, "planned"),
        (3, None, "12345", None, 0, "bad_number", "rejected"),
        (4, "13700000000", "13700000000.0", "您好 李四【店】", 2, None, "planned"),
    ]
    assert {r.campaign_id for r in stored} == {cid}


def test_given_more_rows_than_one_batch_when_bulk_inserted_then_all_arrive(store: Store) -> None:
    rows = (NewRecipient(i + 2, i, f"139{i:08d}", f"139{i:08d}", "x【店】", 1) for i in range(25_000))
    with store.session() as s:
        cid = make_campaign(s)
        assert bulk_insert_recipients(s, cid, rows) == 25_000
        s.commit()
        assert counts(s, cid)["planned"] == 25_000


def test_given_uncommitted_bulk_insert_when_rolled_back_then_nothing_stays(store: Store) -> None:
    # The insert joins the caller's transaction: a failed upload leaves no half-campaign behind.
    with store.session() as s:
        cid = make_campaign(s)
        bulk_insert_recipients(s, cid, [NewRecipient(2, 0, "13912345678", "x", "t", 1)])
        s.rollback()
        assert counts(s, cid)["planned"] == 0


def test_given_recipients_in_states_when_counted_then_every_state_is_reported(store: Store) -> None:
    with store.session() as s:
        cid = make_campaign(s)
        other = make_campaign(s)
        bulk_insert_recipients(
            s,
            cid,
            [
                NewRecipient(2, 0, "13912345678", "a", "t", 1),
                NewRecipient(3, 1, None, "b", reject_reason="bad"),
            ],
        )
        bulk_insert_recipients(s, other, [NewRecipient(2, 0, "13912345678", "a", "t", 1)])
        s.commit()
        # When
        result = counts(s, cid)
    # Then: zeros included, other campaigns not counted
    assert set(result) == {state.value for state in RecipientState}
    assert result["planned"] == 1 and result["rejected"] == 1
    assert sum(result.values()) == 2
