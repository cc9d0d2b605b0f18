"""``campaigns.create`` stores every input row in input order, and every reader gets each recipient's text.

The rows are written in bulk passes (accepted with their text, accepted whose chunk carries the text,
rejected), so these check what the passes must add up to: positions following the sheet, the reasons,
the chunk of each number, and the text each number is (or will be) sent.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from sqlalchemy import select, text

from dispatcher import campaigns, reasons
from dispatcher.config import AccountConfig, Settings
from dispatcher.contacts.phones import parse_mobile
from dispatcher.results import campaign_export
from dispatcher.store import Chunk, OptOut, Recipient
from dispatcher.store.recipients import AcceptedColumns, NewRecipient, insert_upload, recipient_text
from tests.stack import write_contacts
from tests.store.conftest import Store, make_campaign


def _sheet(path: Path, rows: list[tuple[Any, ...]]) -> Path:
    return write_contacts(path, rows, header=("手机号码", "姓名"))  # the other common name of the column


def _settings(store: Store, vendor: str, same_text_max: int = 1) -> Settings:
    account = AccountConfig("acct", vendor, "http://127.0.0.1:9", "u", "p", same_text_max=same_text_max)
    return Settings(store.url, "memory://", accounts=MappingProxyType({"acct": account}))


def _stored(store: Store, campaign_id: int) -> list[tuple[Any, ...]]:
    with store.session() as s:
        query = (
            select(
                Recipient.position,
                Recipient.row_number,
                Recipient.state,
                Recipient.mobile,
                Recipient.raw_value,
                Recipient.reject_reason,
                Recipient.text,
                recipient_text(),
                Recipient.segments,
                Recipient.chunk_id,
            )
            .outerjoin(Chunk, Chunk.id == Recipient.chunk_id)
            .where(Recipient.campaign_id == campaign_id)
            .order_by(Recipient.position)
        )
        return [tuple(row) for row in s.execute(query)]


def test_given_a_sheet_of_every_kind_of_row_when_created_then_each_row_is_stored_in_input_order(
    store: Store, tmp_path: Path
) -> None:
    # Given: accepted rows around rejections of every kind, a blank row, a numeric phone cell
    rows: list[tuple[Any, ...]] = [
        ("13900000001", "张三"),  # row 2
        ("not a phone", "李四"),  # 3: invalid
        ("13900000002", None),  # 4: no value for {姓名}
        (None, None),  # 5: blank, not a data row
        ("13900000001", "王五"),  # 6: duplicate of row 2
        ("13900000003", "赵六"),  # 7: opted out
        ("13900000004", "钱七"),  # 8
        (13900000005, "孙八"),  # 9: numeric cell
    ]
    path = _sheet(tmp_path / "list.xlsx", rows)
    with store.session() as s:
        s.add(OptOut(mobile="13900000003", source="manual"))
        s.commit()
    # When
    created = campaigns.create(
        store.sessions, _settings(store, "yunxin"), path, "{姓名}您好【店】", "acct", actor="t"
    )
    # Then: seven data rows, positions following the sheet, the reasons kept
    stored = _stored(store, created.campaign_id)
    assert [r[:6] for r in stored] == [
        (0, 2, "planned", "13900000001", None, None),
        (1, 3, "rejected", None, "not a phone", parse_mobile("not a phone")[1]),
        (2, 4, "rejected", "13900000002", "13900000002", "no value for {姓名}"),
        (3, 6, "rejected", "13900000001", "13900000001", reasons.english("duplicate_other_text", {"row": 2})),
        (4, 7, "rejected", "13900000003", "13900000003", "opted out"),
        (5, 8, "planned", "13900000004", None, None),
        (6, 9, "planned", "13900000005", None, None),
    ]
    accepted = [r for r in stored if r[2] == "planned"]
    assert [(r[6], r[7], r[8]) for r in accepted] == [
        ("张三您好【店】", "张三您好【店】", 1),
        ("钱七您好【店】", "钱七您好【店】", 1),
        ("孙八您好【店】", "孙八您好【店】", 1),
    ]
    assert all(r[9] is None for r in stored if r[2] == "rejected")
    # every planned chunk holds exactly its numbers, in input order
    by_chunk: dict[int, list[str]] = {}
    for r in accepted:
        by_chunk.setdefault(r[9], []).append(r[3])
    with store.session() as s:
        chunk_rows = s.execute(
            select(Chunk.id, Chunk.seq, Chunk.ref, Chunk.method, Chunk.recipient_count, Chunk.created_at)
            .where(Chunk.campaign_id == created.campaign_id)
            .order_by(Chunk.seq)
        ).all()
    assert [(c.seq, c.ref, c.method, c.recipient_count) for c in chunk_rows] == [
        (p.seq, p.ref, p.method, len(p.mobiles)) for p in created.chunks
    ]
    assert {c.id: list(p.mobiles) for c, p in zip(chunk_rows, created.chunks, strict=True)} == by_chunk
    # timestamps written in bulk read back as aware UTC, as the ORM writes them
    for c in chunk_rows:
        assert c.created_at.tzinfo is not None
        assert abs(c.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    if store.url.startswith("sqlite"):
        with store.engine.connect() as conn:
            raw = conn.execute(text("SELECT created_at FROM chunks")).scalars().all()
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", value) for value in raw)


@pytest.mark.parametrize(
    ("vendor", "same_text_max", "template", "method"),
    [
        ("webservice", 1, "{姓名}您好【店】", "SendMsg"),  # one number per request, its text in the chunk
        ("yunxin", 500, "会员日8折【店】", "SendMsg"),  # one text for all: a same-text request
    ],
)
def test_given_chunks_carrying_the_text_when_created_then_readers_still_get_each_recipients_text(
    store: Store, tmp_path: Path, vendor: str, same_text_max: int, template: str, method: str
) -> None:
    names = ["张三", "李四", "王五", "赵六"]
    path = _sheet(
        tmp_path / "list.xlsx", [(f"1390000000{i}", n) for i, n in enumerate(names)] + [("x", "周七")]
    )
    settings = _settings(store, vendor, same_text_max)
    created = campaigns.create(store.sessions, settings, path, template, "acct", actor="t")
    expected = [template.replace("{姓名}", n) for n in names]
    assert {c.method for c in created.chunks} == {method}
    stored = _stored(store, created.campaign_id)
    # The recipients of a chunk that carries the text store none of their own...
    assert [r[6] for r in stored] == [None] * 5
    # ...and every reader that goes through recipient_text() gets it: the store, the export
    assert [r[7] for r in stored] == [*expected, None]
    with store.session() as s:
        exported = list(campaign_export.rows(s, created.campaign_id))
    assert [row[2] for row in exported] == [*expected, None]
    assert [row[0] for row in exported] == [2, 3, 4, 5, 6]


def test_given_rejected_rows_out_of_order_when_inserted_then_refused(store: Store) -> None:
    with store.session() as s:
        cid = make_campaign(s)
        accepted = AcceptedColumns([], [], [], [], [], [])
        rejected = [
            NewRecipient(5, 0, None, "a", reject_reason="x"),
            NewRecipient(3, 0, None, "b", reject_reason="x"),
        ]
        with pytest.raises(ValueError, match="input order"):
            insert_upload(s, cid, accepted, rejected)
        with pytest.raises(ValueError, match="differ in length"):
            insert_upload(s, cid, AcceptedColumns([2], ["13900000001"], [], [1], [1], [False]), [])
