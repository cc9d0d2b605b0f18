"""Campaign exports as xlsx (``xlsx.write_xlsx``) or CSV, safe against formula injection."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from dispatcher.errors import InputError
from dispatcher.results.xlsx import write_xlsx

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)  # each prefix is one character

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
            first = _FORMULA_FIRST
            write = writer.writerow
            for row in rows:
                # Text by its first character, numbers and blanks as they are (most cells, no call per
                # cell); the rest (times) through csv_safe.
                write(
                    [
                        ("'" + v if v[:1] in first else v)
                        if type(v) is str
                        else v
                        if v is None or type(v) is int
                        else csv_safe(v)
                        for v in row
                    ]
                )
                count += 1
        return count
    if suffix not in (".xlsx", ".xlsm"):
        raise InputError(f"{path}: export format must be .xlsx or .csv, not {suffix or 'none'!r}")
    return write_xlsx(path, sheet, header, rows, widths)
