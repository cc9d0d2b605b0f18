"""Campaign exports as xlsx (openpyxl write-only) or CSV, safe against formula injection."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from dispatcher.errors import InputError

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | datetime | None


def is_formula_like(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES)


def csv_safe(value: Cell) -> Cell:
    """A spreadsheet opening the CSV must not evaluate it: prefix formula-looking text with a quote."""
    if isinstance(value, str) and is_formula_like(value):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return value


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Cell) -> Any:
    if isinstance(value, datetime):
        # Excel has no time zones: write the local wall time the value carries.
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        # XML cannot hold most control characters (openpyxl refuses the whole file): shown as U+FFFD.
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if isinstance(value, str) and is_formula_like(value):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # stored as a string, never parsed as a formula
        return cell
    return value


def write_rows(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    widths: Sequence[float] = (),
    sheet: str = "recipients",
) -> int:
    """Write ``rows`` to ``path`` (.xlsx or .csv by suffix); returns the number of data rows.

    The xlsx is what a person filters and scrolls: the header row frozen, a filter on every column, and
    ``widths`` (characters) for the columns."""
    suffix = path.suffix.lower()
    count = 0
    if suffix == ".csv":
        # UTF-8 with BOM: what Chinese Excel needs to open it without mojibake.
        with path.open("w", newline="", encoding="utf-8-sig") as handle:
            writer = csv.writer(handle)
            writer.writerow([csv_safe(v) for v in header])  # a list's own column names come after ours
            prefixes = FORMULA_PREFIXES
            for row in rows:
                # Plain text and numbers as they are (most cells, no call per cell); the rest made safe.
                writer.writerow(
                    [
                        v
                        if v is None or (type(v) is str and not v.startswith(prefixes)) or type(v) is int
                        else csv_safe(v)
                        for v in row
                    ]
                )
                count += 1
        return count
    if suffix not in (".xlsx", ".xlsm"):
        raise InputError(f"{path}: export format must be .xlsx or .csv, not {suffix or 'none'!r}")
    book = Workbook(write_only=True)
    tab = book.create_sheet(sheet)
    tab.freeze_panes = "A2"
    for index, width in enumerate(widths, start=1):
        tab.column_dimensions[get_column_letter(index)].width = width
    tab.append([_xlsx_cell(tab, v) for v in header])  # a list's own column names come after ours
    prefixes = FORMULA_PREFIXES
    for row in rows:
        # Printable text that looks like no formula, numbers and blanks as they are (most cells, no call
        # per cell); the rest through _xlsx_cell.
        tab.append(
            [
                v
                if v is None
                or type(v) is int
                or (type(v) is str and v.isprintable() and not v.startswith(prefixes))
                else _xlsx_cell(tab, v)
                for v in row
            ]
        )
        count += 1
    tab.auto_filter.ref = f"A1:{get_column_letter(max(len(header), 1))}{count + 1}"
    book.save(path)
    return count
