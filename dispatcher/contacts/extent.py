"""The real extent of the sheets of OpenDocument (ods) and binary Excel (xlsb) workbooks, read from the
file before calamine loads a sheet (:mod:`dispatcher.contacts.guard` calls these).

calamine allocates a sheet as the rectangle from its first cell holding a value to its last, and it
expands the repeats ods writes compactly: ``<table:table-row table:number-rows-repeated="2500000">``
around one value is 2.5 million rows from 850 bytes. So the extent counts repeated rows and cells as
calamine does (a repeat of empty cells only moves the position, as LibreOffice pads every sheet to
its last row with one). xlsb's sheets are binary records: a row header gives the row, each cell
record its column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

TABLE = "table"
_NS_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


@dataclass
class Extent:
    """The rectangle of cells holding a value (1-based rows and columns, inclusive); empty: no cell."""

    top: int = 1 << 62
    bottom: int = 0
    left: int = 1 << 62
    right: int = 0

    def add(self, row: int, rows: int, column: int, columns: int) -> None:
        self.top = min(self.top, row)
        self.bottom = max(self.bottom, row + rows - 1)
        self.left = min(self.left, column)
        self.right = max(self.right, column + columns - 1)

    @property
    def rows(self) -> int:
        return max(0, self.bottom - self.top + 1)

    @property
    def columns(self) -> int:
        return max(0, self.right - self.left + 1)


def _repeat(attrs: dict[str, str], name: str) -> int:
    value = attrs.get(f"{_NS_TABLE} {name}", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


class OdsScan:
    """expat handlers over ``content.xml`` (parsed with namespaces, separator ``" "``): the extent of
    every table, by name. ``tables`` is filled as the parse goes."""

    def __init__(self) -> None:
        self.tables: dict[str, Extent] = {}
        self.current: Extent | None = None
        self.row = 0  # the current row's first (1-based) row number; 0 before any
        self.rows = 1  # how many times the current row repeats
        self.column = 0  # the last column the current row reached
        self.cell: tuple[int, int] | None = None  # (first column, repeat) of the cell being read
        self.counted = False

    def setup(self, parser: Any) -> None:
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end

    def start(self, name: str, attrs: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        if namespace == _NS_TABLE:
            if local == "table":
                self.current = self.tables.setdefault(attrs.get(f"{_NS_TABLE} name", ""), Extent())
                self.row, self.rows = 0, 1
            elif local == "table-row":
                self.row += self.rows
                self.rows = _repeat(attrs, "number-rows-repeated")
                self.column = 0
            elif local in ("table-cell", "covered-table-cell"):
                repeat = _repeat(attrs, "number-columns-repeated")
                self.cell = (self.column + 1, repeat)
                self.column += repeat
                self.counted = False
                if any(key.endswith(" value-type") for key in attrs):
                    self._count()
        elif local == "p" and self.cell is not None:
            self._count()

    def end(self, name: str) -> None:
        local = name.rpartition(" ")[2]
        if local in ("table-cell", "covered-table-cell"):
            self.cell = None

    def _count(self) -> None:
        if self.counted or self.cell is None or self.current is None:
            return
        self.counted = True
        column, columns = self.cell
        self.current.add(max(self.row, 1), self.rows, column, columns)


# xlsb record types (MS-XLSB 2.3.2): a row header, and the cell records (each starts with its column).
_ROW_HEADER = 0
_CELLS = frozenset(range(1, 12))


def _varint(data: bytes, at: int, most: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(most):
        if at + i >= len(data):
            raise EOFError
        byte = data[at + i]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at + i + 1
    return value, at + most


def xlsb_extent(blocks: Iterable[bytes]) -> Extent:
    """The extent of an xlsb worksheet part, from its bytes in blocks."""
    extent = Extent()
    row = 1
    for kind, data in _records(blocks):
        if kind == _ROW_HEADER and len(data) >= 4:
            row = int.from_bytes(data[:4], "little") + 1
        elif kind in _CELLS and len(data) >= 4:
            extent.add(row, 1, int.from_bytes(data[:4], "little") + 1, 1)
    return extent


def _records(blocks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(type, first bytes) of each record. Only a record's first bytes matter (its row or column): the
    rest is skipped as it streams past, however large the record claims to be."""
    buffer = b""
    skip = 0
    for block in blocks:
        if skip:
            if skip >= len(block):
                skip -= len(block)
                continue
            block, skip = block[skip:], 0
        buffer += block
        at = 0
        while True:
            try:
                kind, after = _varint(buffer, at, 2)
                size, start = _varint(buffer, after, 4)
            except EOFError:
                break
            head = min(size, 8)
            if start + head > len(buffer):
                break
            yield kind, buffer[start : start + head]
            if start + size > len(buffer):
                skip, at = start + size - len(buffer), len(buffer)
                break
            at = start + size
        buffer = buffer[at:]
