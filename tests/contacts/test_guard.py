"""The guard refuses workbooks that would exhaust memory before calamine loads them, in bounded memory,
and lets genuine lists through (however they are written)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dispatcher.config import Settings
from dispatcher.contacts import ingest, open_rows
from dispatcher.contacts.guard import SheetLimits
from dispatcher.errors import SpreadsheetError
from tests.contacts import crafted
from tests.contacts.files import ROWS, write_xlsx

TEMPLATE = "您好，回T退订【测试】"
ONE_GB_KB = 1 << 20


def run_check(path: Path, env: dict[str, str] | None = None) -> tuple[int, str, int]:
    """``dispatcher check`` as a real process: (exit code, stderr, its peak RSS in KB)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "check", str(path), "--template", TEMPLATE,
         "--vendor", "yunxin", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "400", **(env or {})},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not every child's so far
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    return proc.returncode, " ".join(err.split()), usage.ru_maxrss


HOSTILE: list[tuple[str, Callable[[Path], Path], tuple[str, ...]]] = [
    ("far-corner.xlsx", crafted.far_corner, ("sheet '名单'", "1,048,576 rows × 16,384 columns", "A1:XFD1048576")),
    ("shared.xlsx", crafted.huge_shared_strings, ("shared-strings", "4000000000")),
    ("laughs.xlsx", crafted.billion_laughs, ("xl/worksheets/sheet1.xml", "DTD")),
    ("bomb.xlsx", crafted.zip_bomb, ("xl/worksheets/sheet1.xml", "zip bomb")),
    ("lying.xlsx", crafted.lying_size, ("xl/sharedStrings.xml", "more than the 100 bytes it declares")),
    ("wide.xlsx", lambda p: crafted.wide_without_references(p, 60), ("sheet '名单'", "spans at least 2 rows × 51 columns")),
    ("far.xls", crafted.far_corner_xls, ("sheet '名单'", "spans 60,001 rows × 65,536 columns")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "build", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_given_a_hostile_workbook_when_checked_then_refused_by_name_in_bounded_memory(
    tmp_path: Path, name: str, build: Callable[[Path], Path], expected: tuple[str, ...]
) -> None:
    # Given a crafted file of a few KB (today calamine aborts the process on the first two)
    path = build(tmp_path / name)
    # When
    code, err, peak_kb = run_check(path)
    # Then: exit 2 with a message naming the file and what is wrong, and the refusal stayed small
    assert code == 2, err
    assert err.startswith(f"error: {name}:") and ("refused" in err or "stopped" in err), err
    for fragment in expected:
        assert fragment in err, err
    assert peak_kb < ONE_GB_KB, f"peak {peak_kb} KB"


def test_given_the_far_corner_file_when_ingested_then_the_message_names_file_sheet_and_size(
    tmp_path: Path,
) -> None:
    path = crafted.far_corner(tmp_path / "list.xlsx")
    with pytest.raises(SpreadsheetError) as caught:
        ingest(path, TEMPLATE)
    message = str(caught.value)
    assert message.startswith("list.xlsx: sheet '名单' spans at least 1,048,576 rows × 16,384 columns")
    assert "max_sheet_rows, max_sheet_columns" in message


def test_given_configured_limits_when_a_list_exceeds_them_then_refused_and_within_them_read(
    tmp_path: Path,
) -> None:
    path = write_xlsx(tmp_path / "list.xlsx", {"名单": ROWS})  # 3 rows × 4 columns
    with pytest.raises(
        SpreadsheetError, match=r"3 rows × 4 columns \(cells from A1 to D3.*the limit is 2 rows × 50"
    ):
        open_rows(path, limits=SheetLimits(rows=2, columns=50))
    with pytest.raises(SpreadsheetError, match=r"the limit is 10 rows × 3 columns"):
        open_rows(path, limits=SheetLimits(rows=10, columns=3))
    assert len(list(open_rows(path, limits=SheetLimits(rows=3, columns=4)).rows)) == 3
    # The settings carry them: max_sheet_rows / max_sheet_columns in the config file.
    config = tmp_path / "dispatcher.toml"
    config.write_text("max_sheet_rows = 2\nmax_sheet_columns = 40\n", encoding="utf-8")
    settings = Settings.load({"DISPATCHER_CONFIG": str(config)})
    assert settings.sheet_limits == SheetLimits(rows=2, columns=40)
    code, err, _ = run_check(path, {"DISPATCHER_CONFIG": str(config)})
    assert code == 2 and "the limit is 2 rows × 40 columns" in err, err


def _far(cell: str) -> str:
    return crafted.sheet(f'<row r="1">{crafted.HEADER_CELL}</row><row r="2000001">{cell}</row>')


@pytest.mark.parametrize(
    "xml",
    [
        _far('<c r="B2000001"><v>1</v></c>'),  # plain, beyond the rows
        _far('<c s="1" r="BA2000001"><v>1</v></c>'),  # r not the first attribute
        _far("<c r='BA7'><v>1</v></c>"),  # single quotes
        _far('<c\tr="BA7"><v>1</v></c>'),  # a tab before the attribute
        _far('<c r="ba7"><v>1</v></c>'),  # lower case
        _far('<c r="BA7" t="inlineStr"><is></is></c>'),  # an empty inline string still counts
        crafted.HEAD
        + '<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData>'
        '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>手机号</x:t></x:is></x:c></x:row>'
        '<x:row r="9"><x:c r="ZZ9"><x:v>1</x:v></x:c></x:row></x:sheetData></x:worksheet>',  # prefixed
        crafted.sheet(
            f'<row r="1">{crafted.HEADER_CELL}</row><row r="3000000"><c><v>1</v></c></row>'
        ),  # row from the row element, cell without r
    ],
    ids=["rows", "r-second", "quotes", "tab", "lower", "empty-inline", "prefixed", "positional"],
)
def test_given_far_cells_written_in_any_xml_spelling_when_read_then_refused(tmp_path: Path, xml: str) -> None:
    path = crafted.workbook(tmp_path / "odd.xlsx", xml)
    with pytest.raises(SpreadsheetError, match="refused before reading it"):
        open_rows(path)


def test_given_the_far_sheet_behind_a_renamed_part_when_read_then_found_as_calamine_finds_it(
    tmp_path: Path,
) -> None:
    # calamine finds parts whatever the case of their names, and follows the package's relationships.
    path = crafted.far_corner(tmp_path / "a.xlsx")
    crafted.rewrite(path, {"xl/worksheets/sheet1.xml": "xl/Worksheets/Sheet1.xml"})
    crafted.relink(path, "Worksheets/Sheet1.xml")
    with pytest.raises(SpreadsheetError, match="1,048,576 rows × 16,384 columns"):
        open_rows(path)
    path = crafted.rewrite(crafted.far_corner(tmp_path / "b.xlsx"), {"xl/workbook.xml": "XL/Workbook.xml"})
    with pytest.raises(SpreadsheetError, match="1,048,576 rows × 16,384 columns"):
        open_rows(path)


def test_given_a_sheet_whose_part_cannot_be_found_or_a_part_twice_when_read_then_refused(
    tmp_path: Path,
) -> None:
    path = crafted.relink(crafted.far_corner(tmp_path / "a.xlsx"), "nowhere/sheet9.xml")
    with pytest.raises(SpreadsheetError, match="has no worksheet part that can be checked"):
        open_rows(path)
    path = crafted.rewrite(crafted.far_corner(tmp_path / "b.xlsx"), {}, duplicate="xl/worksheets/sheet1.xml")
    with pytest.raises(SpreadsheetError, match="is in the zip twice"):
        open_rows(path)


@pytest.mark.parametrize(
    ("rows", "dimension"),
    [
        ('<row r="2"><c r="A2"><v>13912345678</v></c></row>', "A1:XFD1048576"),  # the declared size lies
        ('<row r="2"><c r="A2"><v>13912345678</v></c><c r="XFD1048576" s="3"/></row>', None),  # styled, empty
        ('<row r="2"><c r="A2"><v>13912345678</v></c></row><!-- <c r="XFD1048576"><v>1</v></c> -->', None),
    ],
    ids=["declared-only", "styled-empty-cell", "in-a-comment"],
)
def test_given_far_references_calamine_does_not_allocate_when_read_then_the_list_is_read(
    tmp_path: Path, rows: str, dimension: str | None
) -> None:
    # Formatting far away is common in real lists; only cells with a value make calamine's rectangle.
    xml = crafted.sheet(f'<row r="1">{crafted.HEADER_CELL}</row>{rows}', dimension=dimension)
    path = crafted.workbook(tmp_path / "formatted.xlsx", xml)
    result = ingest(path, TEMPLATE)
    assert result.messages.mobiles == ["13912345678"]


def test_given_an_xls_whose_sheets_all_point_at_one_then_refused_as_crafted_without_reading_them_again(
    tmp_path: Path,
) -> None:
    # Read from each sheet's start as calamine reads them, sheets pointing into one another would cost
    # the check time without end (thousands of them at one big sheet).
    import xlwt

    book = xlwt.Workbook()
    big = book.add_sheet("名单")
    for i in range(3000):
        big.write(i, 0, f"139{i:08d}")
        big.write(i, 1, "张三")
    for n in range(20):
        book.add_sheet(f"s{n}")
    path = tmp_path / "overlap.xls"
    book.save(str(path))
    data = bytearray(path.read_bytes())
    offsets = []
    at = data.find(b"\x85\x00")
    while at >= 0:
        size = int.from_bytes(data[at + 2 : at + 4], "little")
        if 8 <= size < 300:  # a BOUNDSHEET record: its sheet's offset first
            offsets.append(at + 4)
        at = data.find(b"\x85\x00", at + 1)
    first = bytes(data[offsets[0] : offsets[0] + 4])
    for offset in offsets[1:]:
        data[offset : offset + 4] = first
    path.write_bytes(bytes(data))
    with pytest.raises(SpreadsheetError, match=r"^overlap.xls: its sheets overlap one another"):
        open_rows(path)
