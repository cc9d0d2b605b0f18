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

import array
import sys
from collections.abc import Iterable, Iterator, Sequence
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
        self.depth = 0  # tables inside tables

    def setup(self, parser: Any) -> None:
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end

    def start(self, name: str, attrs: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        if namespace == _NS_TABLE:
            if local == "table":
                self.depth += 1
                if self.depth == 1:  # a table inside a cell only adds rows to its sheet's count
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
        namespace, _, local = name.rpartition(" ")
        if namespace != _NS_TABLE:
            return
        if local in ("table-cell", "covered-table-cell"):
            self.cell = None
        elif local == "table":
            self.depth -= 1

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


# xls: an OLE2 compound file holding a BIFF8 "Workbook" stream (MS-CFB, MS-XLS).
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_END_OF_CHAIN = 0xFFFFFFFE
_BOUNDSHEET, _EOF, _MULRK, _MULBLANK = 0x0085, 0x000A, 0x00BD, 0x00BE
# NUMBER, RK, LABELSST, LABEL, BOOLERR, FORMULA, BLANK, RSTRING: each starts with its row and column.
_XLS_CELLS = frozenset({0x0203, 0x027E, 0x00FD, 0x0204, 0x0205, 0x0006, 0x0201, 0x00D6})


_STREAM_NAMES = ("Workbook", "Book", "WORKBOOK", "BOOK")  # calamine's order
_MINI_CUTOFF = 4096  # calamine's, not the header's: a stream shorter than this is in the mini stream


class XlsDamaged(Exception):
    """The compound file or its workbook stream is not what an xls holds."""


class XlsOverlap(Exception):
    """Sheets that point into each other: read from each one's start, as calamine reads them, they
    would cost time without end. No spreadsheet program writes such a file."""


def xls_extents(data: bytes) -> dict[str, Extent]:
    """Every sheet's extent, by name, from the bytes of an xls file."""
    stream = _workbook_stream(data)
    sheets: list[tuple[str, int]] = []
    for kind, body in _biff_records(stream, 0):
        if kind == _BOUNDSHEET and len(body) >= 8:
            count, wide = body[6], body[7] & 1
            raw = body[8 : 8 + count * (2 if wide else 1)]
            sheets.append(
                (
                    raw.decode("utf-16-le" if wide else "latin-1", "replace"),
                    int.from_bytes(body[:4], "little"),
                )
            )
    found: dict[str, Extent] = {}
    budget = len(stream) + (1 << 16)  # each sheet is its own part of the stream: read once in all
    for name, offset in sheets:
        extent = found.setdefault(name, Extent())
        for kind, body in _biff_records(stream, offset):
            budget -= 4 + len(body)
            if budget < 0:
                raise XlsOverlap
            if kind in _XLS_CELLS and len(body) >= 4:
                extent.add(
                    int.from_bytes(body[:2], "little") + 1, 1, int.from_bytes(body[2:4], "little") + 1, 1
                )
            elif kind in (_MULRK, _MULBLANK) and len(body) >= 6:
                first, last = int.from_bytes(body[2:4], "little"), int.from_bytes(body[-2:], "little")
                extent.add(int.from_bytes(body[:2], "little") + 1, 1, first + 1, max(1, last - first + 1))
    return found


def _biff_records(stream: bytes, at: int) -> Iterator[tuple[int, bytes]]:
    """(type, body) of each record from ``at`` to the substream's EOF record."""
    while at + 4 <= len(stream):
        kind = int.from_bytes(stream[at : at + 2], "little")
        size = int.from_bytes(stream[at + 2 : at + 4], "little")
        yield kind, stream[at + 4 : at + 4 + size]
        at += 4 + size
        if kind == _EOF:
            return


def _workbook_stream(data: bytes) -> bytes:
    if len(data) < 512 or data[:8] != OLE_SIGNATURE:
        raise XlsDamaged("not a compound file")
    shift = int.from_bytes(data[0x1E:0x20], "little")
    mini_shift = int.from_bytes(data[0x20:0x22], "little")
    if shift not in (9, 12) or mini_shift != 6:
        raise XlsDamaged("unexpected sector sizes")
    size = 1 << shift
    sectors = (len(data) - 512) // size + 1

    def sector(number: int) -> bytes:
        if number >= sectors:
            raise XlsDamaged("a sector past the end of the file")
        return data[(number + 1) * size : (number + 2) * size]

    difat = [int.from_bytes(data[0x4C + 4 * i : 0x50 + 4 * i], "little") for i in range(109)]
    next_difat, difat_count = (
        int.from_bytes(data[0x44:0x48], "little"),
        int.from_bytes(data[0x48:0x4C], "little"),
    )
    for _ in range(min(difat_count, sectors)):
        if next_difat >= sectors:
            break
        block = sector(next_difat)
        entries = [int.from_bytes(block[i : i + 4], "little") for i in range(0, size, 4)]
        difat += entries[:-1]
        next_difat = entries[-1]
    # No more FAT sectors than the file's sectors need: a crafted header cannot make a huge table.
    needed = sectors // (size // 4) + 1
    fat = array.array("I")
    for number in difat[: min(int.from_bytes(data[0x2C:0x30], "little"), needed)]:
        if number < sectors:
            fat.frombytes(sector(number).ljust(size, b"\0"))
    if sys.byteorder == "big":
        fat.byteswap()

    def chain(start: int, table: Sequence[int], limit: int) -> Iterator[int]:
        seen = 0
        while start != _END_OF_CHAIN and start < len(table) and seen < limit:
            yield start
            start = table[start]
            seen += 1

    directory = b"".join(sector(n) for n in chain(int.from_bytes(data[0x30:0x34], "little"), fat, sectors))
    records = [directory[i : i + 128] for i in range(0, len(directory) - 127, 128)]
    if not records:
        raise XlsDamaged("no directory")
    # The stream calamine reads, found as it finds it: each entry's name up to its first NUL (not its
    # length field, nor its type), the first entry of "Workbook", then "Book", "WORKBOOK", "BOOK".
    names: dict[str, tuple[int, int]] = {}
    for entry in records:
        if entry[:2] in (b"\xff\xfe", b"\xfe\xff") or entry[:3] == b"\xef\xbb\xbf":
            # calamine's decoder drops a byte-order mark (and may switch encoding): a name read here
            # otherwise would not be the one it finds
            raise XlsDamaged("a stream name starting with a byte-order mark")
        name = entry[:64].decode("utf-16-le", "replace").partition("\0")[0]
        length = int.from_bytes(entry[120:124] if size == 512 else entry[120:128], "little")
        names.setdefault(name, (int.from_bytes(entry[116:120], "little"), length))
    found = next((names[n] for n in _STREAM_NAMES if n in names), None)
    if found is None:
        raise XlsDamaged("no workbook stream")
    start, length = found
    if length >= _MINI_CUTOFF:  # calamine's cutoff, whatever the header says
        return b"".join(sector(n) for n in chain(start, fat, sectors))[:length]
    # A small stream lives in the mini stream (the root entry's), in 64-byte sectors.
    if int.from_bytes(data[0x40:0x44], "little") == 0:
        raise XlsDamaged("no mini stream")
    root = int.from_bytes(records[0][116:120], "little")
    mini_stream = b"".join(sector(n) for n in chain(root, fat, sectors))
    mini_fat_bytes = b"".join(
        sector(n) for n in chain(int.from_bytes(data[0x3C:0x40], "little"), fat, sectors)
    )
    mini_fat = [int.from_bytes(mini_fat_bytes[i : i + 4], "little") for i in range(0, len(mini_fat_bytes), 4)]
    return b"".join(mini_stream[n * 64 : n * 64 + 64] for n in chain(start, mini_fat, len(mini_fat)))[:length]
