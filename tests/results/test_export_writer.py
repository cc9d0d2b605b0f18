import csv
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest

from dispatcher.errors import InputError
from dispatcher.results.export import write_rows

HEADER = ["row", "mobile", "text", "at"]
ROWS = [
    [2, "13912345678", '=HYPERLINK("http://x")', datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)],
    [3, "13912345679", "+86 call", None],
    [4, "13912345670", "-5 off", None],
    [5, "13912345671", "@SUM(A1)", None],
    [6, "13912345672", "您好【签名】", None],
]


def test_given_formula_looking_text_when_exported_to_xlsx_then_cells_are_text(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    assert write_rows(path, HEADER, ROWS) == len(ROWS)
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=False))
    assert [c.value for c in rows[0]] == HEADER
    for written, original in zip(rows[1:], ROWS, strict=True):
        assert written[2].value == original[2]
        assert written[2].data_type == "s"  # not "f": no formula is evaluated
        assert written[1].value == original[1]  # numbers stay text: no lost digits
    assert rows[1][3].value == datetime(2026, 1, 2, 3, 4, 5)


def test_given_formula_looking_text_when_exported_to_csv_then_it_is_quoted(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_rows(path, HEADER, ROWS)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        read = list(csv.reader(handle))
    assert read[0] == HEADER
    assert [r[2] for r in read[1:]] == [
        '\'=HYPERLINK("http://x")',
        "'+86 call",
        "'-5 off",
        "'@SUM(A1)",
        "您好【签名】",
    ]
    assert read[1][1] == "13912345678"


def test_given_an_unknown_suffix_then_the_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"out\.pdf"):
        write_rows(tmp_path / "out.pdf", HEADER, ROWS)


def test_given_text_xml_cannot_hold_when_exported_to_xlsx_then_the_file_opens_with_it_shown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "odd.xlsx"
    rows = [[1, "a\x00b\x1bc", "<b>&amp; 'x' \"y\"</b>", "  空格  ", 12.5, "line\nnext", "\U0001f600"]]
    assert (
        write_rows(path, ["n", "ctl", "xml", "spaces", "f", "nl", "emoji"], rows, sheet="O'Brien 的结果") == 1
    )
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["O'Brien 的结果"]
    values = [c.value for c in next(book.active.iter_rows(min_row=2))]  # type: ignore[union-attr]
    assert values == [
        1,
        "a\ufffdb\ufffdc",
        "<b>&amp; 'x' \"y\"</b>",
        "  空格  ",
        12.5,
        "line\nnext",
        "\U0001f600",
    ]
