"""Each data row's own cells, as the list shows them: what the export gives back after its own columns.

Read in a second pass over the file, once the campaign is stored, rather than kept from the first: a
million rows of every column held in memory until the store write would cost hundreds of MB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from dispatcher.contacts.guard import DEFAULT_LIMITS, SheetLimits
from dispatcher.contacts.headers import column_letter
from dispatcher.contacts.reader import open_rows
from dispatcher.text import display

CELL_CHARS = 32_767  # the most a spreadsheet cell holds (Excel's limit): the export must open


class RowCells:
    """The data rows' cells below ``header_row``, one JSON array of strings per non-blank row; ``headers``
    grows by column letters when a row is wider than the header (nothing is dropped)."""

    def __init__(self, headers: Sequence[str], header_row: int, first_column: int = 0) -> None:
        self.headers = list(headers)
        self.header_row = header_row
        self.first_column = first_column

    def read(
        self, path: str | Path, sheet: str | int | None, limits: SheetLimits = DEFAULT_LIMITS
    ) -> Iterator[tuple[int, str]]:
        source = open_rows(path, sheet, limits)
        self.first_column = source.first_column
        is_csv = not source.sheet
        dumps = json.dumps
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
            if not any(shown):
                continue  # a blank row: no input row of the campaign
            while shown and not shown[-1]:
                shown.pop()
            if max(map(len, shown)) > CELL_CHARS:
                shown = [v[:CELL_CHARS] for v in shown]
            if is_csv:
                shown = [v[2:-1] if v[:2] == '="' and v[-1:] == '"' else v for v in shown]
            for extra in range(len(self.headers), len(shown)):
                self.headers.append(column_letter(self.first_column + extra))
            yield number, dumps(shown, ensure_ascii=False)
