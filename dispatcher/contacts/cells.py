"""Each data row's own cells, as the list shows them: what the export gives back after its own columns.

Read again from the list the campaign was made from (kept with its upload), at export time, rather than
stored per recipient at create: a million-row create would pay another bulk insert, or hold every cell.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from dispatcher.contacts.guard import DEFAULT_LIMITS, SheetLimits
from dispatcher.contacts.headers import column_letter
from dispatcher.contacts.reader import Rows, open_rows
from dispatcher.text import display

CELL_CHARS = 32_767  # the most a spreadsheet cell holds (Excel's limit): the export must open


class RowCells:
    """The data rows below ``header_row`` of a list, each as its cells' text. ``headers`` names every
    column, by letter beyond the header row's (nothing is dropped), once :meth:`open` has looked."""

    def __init__(self, headers: Sequence[str], header_row: int, limits: SheetLimits = DEFAULT_LIMITS) -> None:
        self.headers = list(headers)
        self.header_row = header_row
        self.limits = limits

    def open(self, path: Path, sheet: str | None) -> Rows:
        """The list's rows, ``headers`` completed to its widest row (a CSV is read once for that)."""
        source = open_rows(path, sheet, self.limits)
        width = source.width
        if width is None:  # a CSV: the cheap pass over it says how wide it is
            width = max((len(cells) for _, cells in open_rows(path, sheet, self.limits).rows), default=0)
        for extra in range(len(self.headers), width):
            self.headers.append(column_letter(source.first_column + extra))
        return source

    def read(self, source: Rows) -> Iterator[tuple[int, list[str]]]:
        """(row number, its cells as text) for each data row, in order."""
        is_csv = not source.sheet
        for number, cells in source.rows:
            if number <= self.header_row:
                continue
            # Text as it is, a whole number as the sheet shows it (calamine reads 462 as 462.0), the rest
            # by display(): inline, as in ingest's loop (no call per cell).
            shown = [
                c.strip()
                if type(c) is str
                else ""
                if c is None
                else str(int(c))
                if type(c) is float and c.is_integer() and -1e15 < c < 1e15
                else display(c)
                for c in cells
            ]
            if is_csv:
                shown = [v[2:-1] if v[:2] == '="' and v[-1:] == '"' else v for v in shown]
            if shown and max(map(len, shown)) > CELL_CHARS:
                shown = [v[:CELL_CHARS] for v in shown]
            yield number, shown
