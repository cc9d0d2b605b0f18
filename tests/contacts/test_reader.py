"""Each format and encoding, read from files the tests write."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.contacts import ingest, open_rows
from dispatcher.errors import SpreadsheetError
from tests.contacts.files import ROWS, Row, write_csv, write_ods, write_xls, write_xlsx

TEMPLATE = "{姓名}您好，{城市}店送您{金额}元，回T退订【店】"
EXPECTED = ["张三您好，北京店送您462元，回T退订【店】", "李四您好，上海店送您12.5元，回T退订【店】"]


@pytest.mark.parametrize("suffix", [".xlsx", ".xlsm", ".xls", ".et", ".ods"])
def test_given_each_spreadsheet_format_when_ingested_then_same_messages(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"list{suffix}"
    if suffix in (".xls", ".et"):  # WPS's .et is a BIFF workbook, as .xls is
        write_xls(path, ROWS)
    elif suffix == ".ods":
        write_ods(path, ROWS)
    else:
        write_xlsx(path, {"名单": ROWS})
    result = ingest(path, TEMPLATE)
    assert result.messages.texts == EXPECTED
    assert result.messages.mobiles == ["13912345678", "13912345679"]
    assert result.messages.rows == [2, 3]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_given_a_csv_in_each_encoding_when_ingested_then_detected_without_asking(
    tmp_path: Path, encoding: str
) -> None:
    path = write_csv(tmp_path / "list.csv", ROWS, encoding)
    assert ingest(path, TEMPLATE).messages.texts == EXPECTED


def test_given_a_semicolon_csv_when_read_then_delimiter_sniffed(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", ROWS, delimiter=";")
    assert ingest(path, TEMPLATE).messages.texts == EXPECTED


def test_given_a_utf16_csv_when_read_then_error_names_encodings_tried(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.csv", ROWS, "utf-16")
    with pytest.raises(SpreadsheetError, match=r"list\.csv.*UTF-8.*GBK.*GB18030"):
        ingest(path, TEMPLATE)


def test_given_numeric_phone_cells_when_read_then_exact_digits(tmp_path: Path) -> None:
    rows: list[Row] = [
        ["姓名", "手机"],
        ["张三", 13912345678],
        ["李四", 8613912345679],
        ["王五", 13912345670.0],
    ]
    result = ingest(write_xlsx(tmp_path / "n.xlsx", {"S": rows}), "{姓名}【店】", marketing=False)
    assert result.messages.mobiles == ["13912345678", "13912345679", "13912345670"]


def test_given_a_title_and_blank_rows_above_the_header_when_read_then_header_found(tmp_path: Path) -> None:
    rows = [["2024 年会员名单"], [], [], *ROWS, [], ["王五", "13912345670", "广州", 1]]
    result = ingest(write_xlsx(tmp_path / "t.xlsx", {"S": rows}), TEMPLATE)
    assert result.header_row == 4
    assert result.messages.rows == [5, 6, 8]  # row numbers as the spreadsheet shows them
    assert result.rows == 3  # the blank row is skipped, not counted


def test_given_two_sheets_when_one_is_chosen_by_name_or_index_then_that_one_is_read(tmp_path: Path) -> None:
    other = [["手机", "姓名"], ["13700000000", "赵六"]]
    path = write_xlsx(tmp_path / "two.xlsx", {"一月": ROWS, "二月": other})
    assert ingest(path, "{姓名}【店】", marketing=False).messages.mobiles[0] == "13912345678"
    for sheet in ("二月", 1, "1"):
        result = ingest(path, "{姓名}【店】", sheet=sheet, marketing=False)
        assert (result.sheet, result.messages.texts) == ("二月", ["赵六【店】"])


def test_given_an_empty_first_sheet_when_no_sheet_named_then_first_non_empty_is_read(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "e.xlsx", {"空": [], "名单": ROWS})
    assert ingest(path, TEMPLATE).sheet == "名单"
    with pytest.raises(SpreadsheetError, match=r"e\.xlsx: sheet '空' is empty"):
        ingest(path, TEMPLATE, sheet="空")


def test_given_only_empty_sheets_or_an_unknown_sheet_then_spreadsheet_error(tmp_path: Path) -> None:
    empty = write_xlsx(tmp_path / "empty.xlsx", {"a": [], "b": []})
    with pytest.raises(SpreadsheetError, match="every sheet is empty"):
        ingest(empty, TEMPLATE)
    path = write_xlsx(tmp_path / "s.xlsx", {"名单": ROWS})
    with pytest.raises(SpreadsheetError, match=r"no sheet '三月'; the sheets are 0: '名单'"):
        ingest(path, TEMPLATE, sheet="三月")


def test_given_a_corrupt_or_unsupported_file_then_spreadsheet_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "bad.xlsx"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip file")
    with pytest.raises(SpreadsheetError, match=r"bad\.xlsx: cannot read"):
        ingest(corrupt, TEMPLATE)
    with pytest.raises(SpreadsheetError, match=r"unsupported file type '\.pdf'"):
        (tmp_path / "x.pdf").write_bytes(b"%PDF")
        ingest(tmp_path / "x.pdf", TEMPLATE)
    with pytest.raises(SpreadsheetError, match="no such file"):
        ingest(tmp_path / "missing.csv", TEMPLATE)
    unreadable = tmp_path / "名单.et"  # a WPS file calamine cannot read (newer, or encrypted)
    unreadable.write_bytes(b"\xd0\xcf\x11\xe0 not a workbook inside")
    with pytest.raises(SpreadsheetError, match=r"名单\.et: cannot read.*另存为 xlsx"):
        ingest(unreadable, TEMPLATE)


def test_given_a_csv_with_formula_looking_cells_then_kept_as_text_never_evaluated(tmp_path: Path) -> None:
    rows = [
        ["姓名", "手机", "备注"],
        ["=1+1", '="13912345678"', '="007"'],
        ["@SUM(A1)", "13912345679", "-2+3"],
    ]
    result = ingest(write_csv(tmp_path / "f.csv", rows), "{姓名}{备注}【店】", marketing=False)
    assert result.messages.mobiles == ["13912345678", "13912345679"]
    assert result.messages.texts == ["=1+1007【店】", "@SUM(A1)-2+3【店】"]


def test_given_a_csv_when_read_then_rows_stream_in_order(tmp_path: Path) -> None:
    source = open_rows(write_csv(tmp_path / "r.csv", ROWS))
    assert [n for n, _ in source.rows] == [1, 2, 3]
