"""Reading contact lists: spreadsheets through python-calamine, CSV streamed with its encoding detected.

Both give :class:`Rows`: an iterator of ``(row number as the spreadsheet shows it, cells)``. Calamine
loads one sheet whole (a sheet holds at most 1,048,576 rows) and hands rows to Python one at a time;
CSV is decoded in chunks, so its memory stays bounded whatever its size. Before calamine opens a
workbook or loads a sheet, :mod:`dispatcher.contacts.guard` refuses one that would exhaust memory.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import python_calamine

from dispatcher.contacts.guard import DEFAULT_LIMITS, SheetLimits, WorkbookGuard, XlsGuard
from dispatcher.contacts.phones import Cell
from dispatcher.errors import SpreadsheetError
from dispatcher.i18n import N_

# .et: WPS's own spreadsheets, BIFF workbooks as .xls is (calamine reads them by their content).
SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".et", ".ods"})
CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})
# Tried in this order. GB18030 is a superset of GBK (what Chinese Excel and WPS write); UTF-8 first
# because valid UTF-8 Chinese text is almost never valid GBK and vice versa.
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
_CHUNK = 1 << 20
MAX_FIELDS_PER_LINE = 20_000  # above any genuine width (Excel's is 16,384), far below what memory minds


@dataclass
class Rows:
    """The rows of one sheet (or CSV file), read lazily."""

    path: Path
    sheet: str  # the sheet's name ('' for CSV)
    rows: Iterator[tuple[int, Sequence[Cell]]]
    total: int | None  # rows in the sheet, for progress; None when unknown (CSV)
    first_column: int = 0  # 0-based column of the first cell of each row (calamine trims empty columns)
    width: int | None = None  # cells in the widest row; None when unknown (CSV)

    def where(self) -> str:
        return f"{self.path.name}" + (f", sheet {self.sheet!r}" if self.sheet else "")


def open_rows(path: str | Path, sheet: str | int | None = None, limits: SheetLimits = DEFAULT_LIMITS) -> Rows:
    """The rows of ``sheet`` (name, or 0-based index; default: the first non-empty) in ``path``.
    A sheet larger than ``limits`` is refused before it is loaded."""
    path = Path(path)
    if not path.is_file():
        raise SpreadsheetError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        if sheet not in (None, 0, "0"):
            raise SpreadsheetError(f"{path.name}: a CSV file has no sheets (asked for {sheet!r})")
        return read_csv(path, limits)
    if suffix in SPREADSHEET_SUFFIXES:
        return read_spreadsheet(path, sheet, limits)
    raise SpreadsheetError(
        f"{path.name}: unsupported file type {suffix or '(none)'!r}; use xlsx, xlsm, xls, et, ods or csv"
    )


def _workbook(path: Path) -> python_calamine.CalamineWorkbook:
    try:
        return python_calamine.CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own errors, zip errors, and ValueError on junk
        hint = ""
        if path.suffix.lower() == ".et":  # a WPS format calamine does not know (a newer or encrypted one)
            hint = "; WPS 表格 (.et): 在 WPS 中另存为 xlsx (save it as xlsx in WPS) and upload that"
        raise SpreadsheetError(f"{path.name}: cannot read the file as a spreadsheet ({exc}){hint}") from exc


def sheet_names(path: Path, limits: SheetLimits = DEFAULT_LIMITS) -> list[str]:
    """The workbook's sheets ([] for CSV, which has none), without loading any of them."""
    if path.suffix.lower() in CSV_SUFFIXES:
        return []
    with WorkbookGuard.open(path, limits):
        return list(_workbook(path).sheet_names)


def read_spreadsheet(
    path: Path, sheet: str | int | None = None, limits: SheetLimits = DEFAULT_LIMITS
) -> Rows:
    with WorkbookGuard.open(path, limits) as guard:
        workbook = _workbook(path)
        names = workbook.sheet_names
        try:
            chosen = _choose_sheet(workbook, names, sheet, path, guard)
        except python_calamine.CalamineError as exc:
            raise SpreadsheetError(f"{path.name}: cannot read the sheet ({exc})") from exc
    end = chosen.end
    first_column = chosen.start[1] if chosen.start else 0
    return Rows(
        path,
        chosen.name,
        _numbered(chosen.iter_rows(), path, chosen.name),
        total=(end[0] + 1) if end else 0,
        first_column=first_column,
        width=(end[1] + 1 - first_column) if end else 0,
    )


def read_through(path: Path, sheet: str | int | None, limits: SheetLimits = DEFAULT_LIMITS) -> int:
    """Read every row of ``sheet`` (what creating a campaign will do); the number of rows. Run in a
    memory-limited child (:mod:`dispatcher.contacts.sandbox`) before a process reads the sheet itself."""
    return sum(1 for _ in open_rows(path, None if sheet == "" else sheet, limits).rows)


def _load(
    workbook: python_calamine.CalamineWorkbook, name: str, guard: WorkbookGuard | XlsGuard | None
) -> python_calamine.CalamineSheet:
    if guard is not None:
        guard.check_sheet(name)  # before calamine allocates the sheet
    return workbook.get_sheet_by_name(name)


def _choose_sheet(
    workbook: python_calamine.CalamineWorkbook,
    names: list[str],
    sheet: str | int | None,
    path: Path,
    guard: WorkbookGuard | XlsGuard | None,
) -> python_calamine.CalamineSheet:
    if sheet is None:
        for name in names:
            candidate = _load(workbook, name, guard)
            # any() stops at the first non-blank row: only the top of a big sheet is converted
            if candidate.height > 0 and any(not all(map(_blank, row)) for row in candidate.iter_rows()):
                return candidate
        raise SpreadsheetError.say(
            N_("%(file)s: every sheet is empty (sheets: %(sheets)s)"),
            file=path.name,
            sheets=", ".join(names) or "-",
        )
    if isinstance(sheet, str) and sheet in names:
        chosen = _load(workbook, sheet, guard)
    else:
        index = _as_index(sheet)
        if index is None or not 0 <= index < len(names):
            raise SpreadsheetError.say(
                N_("%(file)s: no sheet %(sheet)r; the sheets are %(sheets)s"),
                file=path.name,
                sheet=sheet,
                sheets=", ".join(f"{i}: {n!r}" for i, n in enumerate(names)),
            )
        chosen = _load(workbook, names[index], guard)
    if chosen.height == 0:
        raise SpreadsheetError.say(
            N_("%(file)s: sheet %(sheet)r is empty"), file=path.name, sheet=chosen.name
        )
    return chosen


def _as_index(sheet: str | int) -> int | None:
    if isinstance(sheet, int):
        return sheet
    text = sheet.strip()
    return int(text) if text.isdigit() else None


def _blank(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _numbered(rows: Iterator[Sequence[Cell]], path: Path, sheet: str) -> Iterator[tuple[int, Sequence[Cell]]]:
    # calamine's iter_rows starts at the sheet's first row (row 1), whatever the data's top-left cell.
    number = 0
    try:
        for number, row in enumerate(rows, start=1):
            yield number, row
    except python_calamine.CalamineError as exc:
        raise SpreadsheetError(f"{path.name}, sheet {sheet!r}, after row {number}: {exc}") from exc


def detect_encoding(path: Path) -> str:
    """The first of :data:`CSV_ENCODINGS` that decodes the whole file (checked in chunks)."""
    for encoding in CSV_ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise SpreadsheetError.say(
        N_(
            "%(file)s: cannot decode the CSV file; tried UTF-8 (with or without BOM), GBK and GB18030. "
            "Save it again as 'CSV UTF-8' from Excel or WPS"
        ),
        file=path.name,
    )


def _sniff_delimiter(sample: str) -> str:
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    counts = {d: sum(line.count(d) for line in lines) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_csv(path: Path, limits: SheetLimits = DEFAULT_LIMITS) -> Rows:
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as f:
        delimiter = _sniff_delimiter(f.read(64 * 1024))
    return Rows(
        path,
        "",
        _csv_rows(path, encoding, delimiter, limits),
        total=None,
    )


def _csv_rows(
    path: Path, encoding: str, delimiter: str, limits: SheetLimits
) -> Iterator[tuple[int, Sequence[Cell]]]:
    # Cells stay text, exactly as written: nothing that looks like a formula is ever evaluated.
    # A CSV is held to the sheet limits too: a row of millions of fields takes minutes to read.
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(_bounded_lines(f, delimiter, path, limits), delimiter=delimiter)
        try:
            for number, row in enumerate(reader, start=1):
                if number > limits.rows:
                    raise SpreadsheetError(
                        f"{path.name}: more than {limits.rows:,} rows; the limit is {limits.rows:,} "
                        "(setting max_sheet_rows)"
                    )
                if row and not row[-1].strip():
                    # Trailing empty fields (Excel pads rows; a crafted file sends millions) hold
                    # nothing: dropped here, so no page or column count ever sees them.
                    del row[_width(row) :]
                if len(row) > limits.columns:
                    raise SpreadsheetError(
                        f"{path.name}, row {number}: {len(row):,} columns; the limit is "
                        f"{limits.columns:,} (setting max_sheet_columns)"
                    )
                yield number, row
        except csv.Error as exc:
            raise SpreadsheetError(f"{path.name}, row {reader.line_num}: {exc}") from exc


def _bounded_lines(lines: Iterator[str], delimiter: str, path: Path, limits: SheetLimits) -> Iterator[str]:
    """The file's lines, each with at most :data:`MAX_FIELDS_PER_LINE` fields before the csv module
    makes a list of them: a trailing run of empty ones is dropped (as every row's are), a line with
    more is refused. A 50 MB line of commas would otherwise be a list of 50 million fields."""
    for number, line in enumerate(lines, start=1):
        if line.count(delimiter) > MAX_FIELDS_PER_LINE:
            line = line.rstrip("\r\n").rstrip(delimiter + " \t") + "\n"
            fields = line.count(delimiter) + 1
            if fields > MAX_FIELDS_PER_LINE:
                raise SpreadsheetError(
                    f"{path.name}, row {number}: {fields:,} columns; the limit is {limits.columns:,} "
                    "(setting max_sheet_columns)"
                )
        yield line


def _width(row: Sequence[str]) -> int:
    """Up to the last non-empty field: trailing empty ones (Excel pads rows) hold nothing, as in a sheet."""
    width = len(row)
    while width and not row[width - 1].strip():
        width -= 1
    return width
