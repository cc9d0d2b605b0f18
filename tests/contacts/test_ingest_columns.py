"""What the ingest settles after its row loop, column by column: GB2312, segments, shared values."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dispatcher.contacts import ingest
from dispatcher.contacts.ingest import PROGRESS_EVERY
from dispatcher.text import segments
from tests.contacts.files import write_csv, write_xlsx


def _csv(tmp_path: Path, rows: Sequence[Sequence[object]]) -> Path:
    return write_csv(tmp_path / "list.csv", rows)


def test_given_characters_outside_the_bmp_then_they_count_two_units_in_a_short_text(tmp_path: Path) -> None:
    # 40 characters but 60 UTF-16 units: one segment; 50 characters, 80 units: two (67 each).
    rows = [
        ["手机", "名"],
        ["13912345678", "😀" * 20 + "张" * 15],
        ["13912345679", "😀" * 30 + "张" * 15],
        ["13912345670", "张" * 40],
    ]
    result = ingest(_csv(tmp_path, rows), "{名}【店铺】", marketing=False)
    assert [len(t) for t in result.messages.texts] == [39, 49, 44]
    assert result.messages.segments == [1, 2, 1]
    assert result.not_gb2312 == [0, 1]


def test_given_a_long_text_among_short_ones_then_each_is_counted_by_the_general_rule(tmp_path: Path) -> None:
    rows = [
        ["手机", "名"],
        ["13912345678", "😀" * 30],
        ["13912345679", "张" * 80],
        ["13912345670", "a" * 120],
    ]
    result = ingest(_csv(tmp_path, rows), "{名}【店】", marketing=False)
    assert result.messages.segments == [1, 2, 2]  # 63 units; 83 characters; 123, not all ASCII
    assert result.messages.segments == [segments(t) for t in result.messages.texts]
    assert result.not_gb2312 == [0]


def test_given_a_template_word_gb2312_cannot_encode_then_every_message_is_flagged(tmp_path: Path) -> None:
    rows = [["手机", "名"], ["13912345678", "张三"], ["13912345679", "李四"]]
    result = ingest(_csv(tmp_path, rows), "{名}您好😀，回T退订【店】")
    assert result.not_gb2312 == [0, 1]
    assert any(
        "2 messages contain characters GB2312 (code page 936, GBK) cannot encode" in w
        for w in result.warnings
    )


def test_given_repeated_values_over_many_rows_then_columns_hold_them_once_each(tmp_path: Path) -> None:
    # More rows than one flush: repeated names share one string; unique codes are kept as they are.
    count = 2 * PROGRESS_EVERY + 7
    rows = [["手机", "名", "码"], *[[f"139{i:08d}", f"张{i % 3}", f"Q{i:06d}"] for i in range(count)]]
    path = write_xlsx(tmp_path / "list.xlsx", {"名单": rows})
    result = ingest(path, "{名}，券{码}，回T退订【店】")
    names, codes = result.messages.values["名"], result.messages.values["码"]
    assert names == [f"张{i % 3}" for i in range(count)] and codes == [f"Q{i:06d}" for i in range(count)]
    assert len({id(name) for name in names}) == 3
    assert result.messages[count - 1].values == {"名": f"张{(count - 1) % 3}", "码": f"Q{count - 1:06d}"}
    assert result.messages.texts[-1] == f"张{(count - 1) % 3}，券Q{count - 1:06d}，回T退订【店】"


def test_given_several_missing_values_then_the_first_is_named(tmp_path: Path) -> None:
    rows = [["手机", "甲", "乙"], ["13912345678", "", ""], ["13912345679", '="x"', '=""']]
    result = ingest(_csv(tmp_path, rows), "{甲}{乙}【店】", marketing=False)
    assert [r.reason for r in result.rejected] == ["no value for {甲}", "no value for {乙}"]
