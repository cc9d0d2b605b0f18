"""Refuse a spreadsheet that would exhaust memory, before calamine loads it.

calamine allocates a sheet as one rectangle from its top-left to its bottom-right cell: a 5 KB xlsx with
cells at ``A1`` and ``XFD1048576`` asks for 549 GB and aborts the process (no Python exception to catch).
Its shared-strings reader also reserves the ``uniqueCount`` the file declares. So before calamine sees a
zipped workbook (xlsx, xlsm, xlsb, ods) this module checks, streaming and in bounded memory:

- the zip itself: a bounded central directory, no part larger than :data:`MAX_PART_BYTES` uncompressed
  or compressed more than :data:`MAX_RATIO` times, and none holding more than it declares (zip bombs;
  parts are inflated here, never trusting the header);
- every XML part it parses: no DTD, so no entity is ever declared or expanded (billion laughs);
- xlsx/xlsm: the shared-strings table's declared counts, and each sheet's real extent (every ``<row>``
  and ``<c>``, with or without a ``r`` reference) against :class:`SheetLimits` (settings
  ``max_sheet_rows`` × ``max_sheet_columns``). The declared ``<dimension>`` is quoted in the refusal but
  does not decide on its own: calamine allocates from the cells, and Excel widens the dimension over
  formatted empty cells, so a genuine list may declare more than it holds.

- ods and xlsb: each sheet's real extent too (:mod:`dispatcher.contacts.extent`: ods's repeated rows
  and cells counted as calamine expands them).

- xls (not a zip): each sheet's extent from its cell records (calamine trusts a cell's column as
  written, past the 256 the format allows); a file whose records cannot be read here is left to
  calamine.

Whatever the guard passes, the web app reads in a child process with a memory limit
(:mod:`dispatcher.contacts.sandbox`) first, and so do the CLI's checks for xls, xlsb and ods.

    with WorkbookGuard.open(path, limits) as guard:   # None for a file that is not a zip
        guard.check_sheet("名单")                      # SpreadsheetError naming file, sheet and size
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.parsers import expat

from dispatcher.contacts.extent import (
    OLE_SIGNATURE,
    Extent,
    OdsScan,
    XlsDamaged,
    XlsOverlap,
    xls_extents,
    xlsb_extent,
)
from dispatcher.errors import SpreadsheetError

XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
MAX_PART_BYTES = 2 << 30  # one XML part, uncompressed
MAX_RATIO = 100  # uncompressed / compressed, judged for parts above RATIO_FLOOR
RATIO_FLOOR = 16 << 20
MAX_CENTRAL_DIRECTORY = 4 << 20  # ~40,000 entries; an xlsx has a few dozen
_READ = 1 << 20
_EOCD = b"PK\x05\x06"
_CELL = re.compile(rb"<c[\s/>]")  # a cell element's start tag (unprefixed)


@dataclass(frozen=True)
class SheetLimits:
    """The largest sheet accepted: rows × columns of the rectangle from the first cell to the last."""

    rows: int = 2_000_000
    columns: int = 50


DEFAULT_LIMITS = SheetLimits()


class _Stop(Exception):
    """Raised inside an expat handler to end a parse early (the answer is known)."""


class _Dtd(Exception):
    """Raised by expat handlers at a DTD, before any entity in it is declared or expanded."""


def column_number(letters: str) -> int:
    """``A`` → 1, ``Z`` → 26, ``AA`` → 27, ``XFD`` → 16384; 0 for anything else (calamine refuses it)."""
    if not (letters.isascii() and letters.isalpha()) or len(letters) > 7:
        return 0
    number = 0
    for ch in letters.upper():
        number = number * 26 + ord(ch) - 64
    return number


def column_letters(number: int) -> str:
    """The inverse of :func:`column_number` (``28`` → ``AB``)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters or "?"


def _forbid_dtd(*_: Any) -> int:
    raise _Dtd


def _parser(namespaces: bool = False) -> Any:
    parser = expat.ParserCreate(namespace_separator=" " if namespaces else None)
    # As defusedxml does: a DTD is refused before any entity in it could be declared or expanded.
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_dtd
    parser.ExternalEntityRefHandler = _forbid_dtd
    return parser


class WorkbookGuard:
    """One zipped workbook, opened for checking. Use :meth:`open`."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, limits: SheetLimits) -> None:
        self.path = path
        self.zip = archive
        self.limits = limits
        self.xlsx = path.suffix.lower() in XLSX_SUFFIXES  # calamine picks its reader by the suffix
        # calamine finds a part whatever the case of its name: so do we, and two names that differ
        # only by case (or a name listed twice) would leave it unclear which one it reads.
        self.parts: dict[str, str] = {}
        for info in archive.infolist():
            if info.filename.lower() in self.parts:
                raise self.refuse(f"part {info.filename} is in the zip twice")
            self.parts[info.filename.lower()] = info.filename
        self.sheet_parts: dict[str, list[str]] = {}  # sheet name -> its parts, filled by _check_xlsx
        self.extents: dict[str, Extent] = {}  # an ods's tables by name, with their real extent

    def part(self, name: str) -> str | None:
        """The zip's name of a part, found as calamine finds it (normalised, any case)."""
        return self.parts.get(posixpath.normpath(name).lower()) if name else None

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, path: Path, limits: SheetLimits = DEFAULT_LIMITS
    ) -> Iterator[WorkbookGuard | XlsGuard | None]:
        """The guard of a zipped workbook after its workbook-level checks; None when not a zip."""
        with path.open("rb") as f:
            head = f.read(8)
        if head == OLE_SIGNATURE and path.suffix.lower() == ".xls":
            yield XlsGuard(path, limits)
            return
        if head[:4] != b"PK\x03\x04":
            yield None
            return
        _check_central_directory(path)
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise SpreadsheetError(f"{path.name}: cannot read the file as a spreadsheet ({exc})") from None
        with archive:
            guard = cls(path, archive, limits)
            guard._check_sizes()
            for info in archive.infolist():  # a sheet is read whole when it is checked
                if not info.filename.lower().startswith("xl/worksheets/") and not info.is_dir():
                    for _ in guard._blocks(info.filename):
                        pass
            if guard.xlsx:
                guard._check_xlsx()
            elif content := guard.part("content.xml"):  # OpenDocument: every table's real extent
                scan = OdsScan()
                guard._parse(content, scan.setup, namespaces=True)
                guard.extents = scan.tables
                for sheet, extent in scan.tables.items():  # every one: a name calamine spells otherwise
                    guard._refuse_beyond(extent, sheet)  # must not slip through
            elif path.suffix.lower() == ".xlsb":
                guard._check_xlsb()
            yield guard

    def refuse(self, what: str) -> SpreadsheetError:
        return SpreadsheetError(f"{self.path.name}: {what}; refused before reading it")

    def _check_sizes(self) -> None:
        for info in self.zip.infolist():
            if info.file_size > MAX_PART_BYTES:
                raise self.refuse(
                    f"part {info.filename} unpacks to {info.file_size:,} bytes "
                    f"(at most {MAX_PART_BYTES:,}): a zip bomb or not a contact list"
                )
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise self.refuse(
                    f"part {info.filename} unpacks {info.file_size // max(info.compress_size, 1):,} times "
                    f"its packed size (at most {MAX_RATIO}): a zip bomb"
                )

    def _blocks(self, part: str) -> Iterator[bytes]:
        """The part's bytes, inflated here in bounded blocks: a part that holds more than its header
        declares (a zip bomb lying about its size) or fails its CRC is refused, whatever a reader
        trusting the header would have done."""
        info = self.zip.getinfo(part)
        if info.flag_bits & 1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.refuse(f"part {part} is encrypted or packed in a way spreadsheets are not")
        damaged = SpreadsheetError(f"{self.path.name}: part {part} is damaged; save the file again")
        inflate = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        produced = crc = 0
        with self.path.open("rb") as f:
            f.seek(info.header_offset)
            header = f.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                raise damaged
            name_length, extra_length = struct.unpack("<HH", header[26:30])
            f.seek(info.header_offset + 30 + name_length + extra_length)
            left = info.compress_size
            while left > 0:
                raw = f.read(min(_READ, left))
                if not raw:
                    raise damaged
                left -= len(raw)
                while raw:
                    if inflate is None:
                        block, raw = raw, b""
                    else:
                        try:
                            block = inflate.decompress(raw, _READ)
                        except zlib.error:
                            raise damaged from None
                        raw = inflate.unconsumed_tail
                    produced += len(block)
                    if produced > info.file_size:
                        raise self.refuse(
                            f"part {part} holds more than the {info.file_size:,} bytes it declares: a zip bomb"
                        )
                    crc = zlib.crc32(block, crc)
                    yield block
        if produced != info.file_size or crc != info.CRC:
            raise damaged

    def _parse(self, part: str, setup: Callable[[Any], None], *, namespaces: bool = False) -> None:
        """Stream ``part`` through a DTD-refusing expat parser set up by ``setup``."""
        parser = _parser(namespaces)
        setup(parser)
        try:
            for block in self._blocks(part):
                parser.Parse(block, False)
            parser.Parse(b"", True)
        except _Stop:
            return
        except _Dtd:
            raise self.refuse(
                f"part {part} declares a DTD (XML entities), which no spreadsheet needs"
            ) from None
        except expat.ExpatError as exc:
            raise SpreadsheetError(f"{self.path.name}: part {part} is not well-formed XML ({exc})") from None

    def _relationships(self, rels: str, base: str) -> list[tuple[str, str, str]]:
        """(id, type, part) of each relationship in ``rels`` whose target is a part of this zip."""
        found: list[tuple[str, str, str]] = []

        def setup(parser: Any) -> None:
            def start(name: str, attrs: dict[str, str]) -> None:
                target = attrs.get("Target", "")
                if name.rpartition(":")[2] != "Relationship" or attrs.get("TargetMode") == "External":
                    return
                part = self.part(target[1:] if target.startswith("/") else posixpath.join(base, target))
                if part is not None:
                    found.append((attrs.get("Id", ""), attrs.get("Type", ""), part))

            parser.StartElementHandler = start

        self._parse(rels, setup)
        return found

    def _check_xlsx(self) -> None:
        """Find the workbook, its sheets' parts and its shared strings the way calamine does (through
        the package's relationships, any case), and check the shared-strings counts."""
        workbook = self.part("xl/workbook.xml")
        if root := self.part("_rels/.rels"):
            for _, kind, part in self._relationships(root, ""):
                if kind.endswith("/officeDocument"):
                    workbook = part
        if workbook is None:
            raise self.refuse("it has no workbook part (xl/workbook.xml): not an Excel workbook")
        ids: dict[str, list[str]] = {}  # sheet name -> relationship ids (any attribute named id)

        def on_sheet(parser: Any) -> None:
            def start(name: str, attrs: dict[str, str]) -> None:
                if name.rpartition(":")[2] == "sheet" and "name" in attrs:
                    found = [v for k, v in attrs.items() if k.rpartition(":")[2].lower() == "id"]
                    ids.setdefault(attrs["name"], []).extend(found)

            parser.StartElementHandler = start

        self._parse(workbook, on_sheet)
        folder, file = posixpath.split(workbook)
        rels = self.part(posixpath.join(folder, "_rels", file + ".rels"))
        relationships = self._relationships(rels, folder) if rels else []
        for sheet, sheet_ids in ids.items():
            self.sheet_parts[sheet] = [part for rid, _, part in relationships if rid in sheet_ids]
        shared = {part for _, kind, part in relationships if kind.endswith("/sharedStrings")}
        shared |= {name for key, name in self.parts.items() if posixpath.basename(key) == "sharedstrings.xml"}
        for part in sorted(shared):
            self._check_shared_strings(part)

    def _check_shared_strings(self, part: str) -> None:
        cells = self.limits.rows * self.limits.columns

        def setup(parser: Any) -> None:
            def start(name: str, attrs: dict[str, str]) -> None:
                for key in ("uniqueCount", "count"):
                    declared = attrs.get(key, "0")
                    if not declared.isdigit() or int(declared) > cells:
                        raise self.refuse(
                            f"its shared-strings table declares {key}={declared!r}, more strings than "
                            f"a sheet of {self.limits.rows:,} rows × {self.limits.columns} columns can hold"
                        )
                raise _Stop  # the counts are on the root element: no need to read further

            parser.StartElementHandler = start

        self._parse(part, setup)

    def _check_xlsb(self) -> None:
        """Every worksheet of an xlsb (found through the workbook's relationships, as calamine finds
        them, or by folder without them) against the limits: its rows and columns from its records."""
        rels = self.part("xl/_rels/workbook.bin.rels")
        if rels:
            parts = [part for _, kind, part in self._relationships(rels, "xl") if kind.endswith("/worksheet")]
        else:
            parts = [name for key, name in self.parts.items() if key.startswith("xl/worksheets/")]
        for part in parts:
            self._refuse_beyond(xlsb_extent(self._blocks(part)), part)

    def _refuse_beyond(self, extent: Extent, sheet: str) -> None:
        refuse_beyond(self.path, extent, sheet, self.limits)

    def check_sheet(self, sheet: str) -> None:
        """Refuse ``sheet`` if its cells span more than the limits (xlsx/xlsm and ods sheets here; every
        xlsb sheet when the workbook was opened). A sheet whose part cannot be found is refused:
        calamine might find one this check did not see."""
        if self.extents:
            self._refuse_beyond(self.extents.get(sheet, Extent()), sheet)
            return
        if not self.xlsx:
            return
        parts = self.sheet_parts.get(sheet)
        if not parts:
            raise self.refuse(
                f"sheet {sheet!r} has no worksheet part that can be checked (damaged or crafted)"
            )
        for part in parts:
            self._parse(part, lambda p: setattr(p, "StartElementHandler", _stop))  # refuses a DTD
            if not self._within_limits_fast(part):
                scan = _SheetScan(self, sheet)
                self._parse(part, scan.setup)

    def _within_limits_fast(self, part: str) -> bool:
        """True when byte counts prove every cell lies within the limits; False when they cannot.

        Sound for the shape Excel, WPS, LibreOffice and openpyxl write: every cell element is
        ``<c r="...`` (counted against all ``<c`` element starts; a ``:c`` prefix anywhere, a cell
        without a leading ``r``, or an element longer than a read block sends the sheet to the exact
        scan). Then a cell beyond column Z or row 10**(d-1) - d the digits of the row limit - shows in
        :data:`_FAR` matches, few in a normal list, whose values are compared. It never accepts what
        the exact scan would refuse: comments or CDATA can only add matches.
        """
        limits = self.limits
        digits = len(str(limits.rows))
        if limits.columns < 26:
            return False
        far = re.compile(rb'<c r="(?:[A-Za-z]{2,}|[A-Za-z]+[0-9]{%d,})' % digits)
        cells = plain = 0
        rows, columns = 10 ** (digits - 1), 26
        carry = b""
        for block in self._blocks(part):
            data = carry + block
            cut = data.rfind(b"<")
            if cut < 0 or len(data) - cut > _READ:
                return False
            data, carry = data[:cut], data[cut:]
            if b":c" in data:
                return False
            cells += len(_CELL.findall(data))
            plain += data.count(b'<c r="')
            for match in far.findall(data):
                ref = match[6:].decode("ascii")
                letters = ref.rstrip("0123456789")
                columns = max(columns, column_number(letters))
                if ref[len(letters) :]:
                    rows = max(rows, int(ref[len(letters) :]))
        cells += len(_CELL.findall(carry))
        plain += carry.count(b'<c r="')
        return cells == plain and rows <= limits.rows and columns <= limits.columns


def refuse_beyond(path: Path, extent: Extent, sheet: str, limits: SheetLimits) -> None:
    if extent.rows > limits.rows or extent.columns > limits.columns:
        first = f"{column_letters(extent.left)}{extent.top}"
        last = f"{column_letters(extent.right)}{extent.bottom}"
        raise SpreadsheetError(
            f"{path.name}: sheet {sheet!r} spans {extent.rows:,} rows × {extent.columns:,} columns (cells "
            f"from {first} to {last}); the limit is {limits.rows:,} rows × {limits.columns:,} columns "
            "(settings max_sheet_rows, max_sheet_columns); refused before reading it"
        )


class XlsGuard:
    """An xls workbook's sheets against the limits: their cells read from the file's records (the
    compound file and its workbook stream, found as calamine finds them). A file this cannot read, or
    where it finds no sheet, is refused: what the check cannot see, calamine must not be left to load."""

    def __init__(self, path: Path, limits: SheetLimits) -> None:
        self.path = path
        self.limits = limits
        try:
            self.extents = xls_extents(path.read_bytes())
        except XlsDamaged as exc:
            raise SpreadsheetError(
                f"{path.name}: its workbook cannot be checked ({exc}); save it again as xlsx; "
                "refused before reading it"
            ) from None
        except XlsOverlap:
            raise SpreadsheetError(
                f"{path.name}: its sheets overlap one another (crafted); refused before reading it"
            ) from None
        if not self.extents:
            raise SpreadsheetError(
                f"{path.name}: its workbook cannot be checked (no sheet found); save it again as xlsx; "
                "refused before reading it"
            )
        for sheet, extent in self.extents.items():  # calamine loads every sheet of an xls as it opens it
            refuse_beyond(self.path, extent, sheet, self.limits)

    def check_sheet(self, sheet: str) -> None:
        refuse_beyond(self.path, self.extents.get(sheet, Extent()), sheet, self.limits)


def _stop(*_: Any) -> None:
    raise _Stop


class _SheetScan:
    """Tracks the rectangle calamine would allocate. A cell counts when it holds a value (``<v>`` or
    ``<is>``: calamine skips styled empty cells); its position is ``r="B7"`` when given, otherwise one
    column right of the previous cell, or the next row, as calamine reads it."""

    def __init__(self, guard: WorkbookGuard, sheet: str) -> None:
        self.guard = guard
        self.sheet = sheet
        self.limits = guard.limits
        self.row = 0
        self.column = 0
        self.counted = True  # the current <c> is already in the rectangle
        self.top = self.left = 1 << 62
        self.bottom = self.right = 0
        self.declared = ""
        self.columns: dict[str, int] = {}

    def setup(self, parser: Any) -> None:
        parser.StartElementHandler = self.start

    def start(self, name: str, attrs: dict[str, str]) -> None:
        # The hot path: called for every element of the sheet.
        if ":" in name:
            name = name.rpartition(":")[2]
        if name == "v" or name == "is":
            if not self.counted:
                self.counted = True
                self._cell()
        elif name == "c":
            self.counted = False
            ref = attrs.get("r")
            if ref is None:
                self.column += 1
                return
            letters = ref.rstrip("0123456789")
            column = self.columns.get(letters)
            if column is None:
                column = self.columns[letters] = column_number(letters)
            self.column = column
            digits = ref[len(letters) :]
            if digits.isdigit():
                self.row = int(digits)
        elif name == "row":
            ref = attrs.get("r")
            self.row = int(ref) if ref is not None and ref.isdigit() else self.row + 1
            self.column = 0
        elif name == "dimension":
            self.declared = attrs.get("ref", "")[:40]

    def _cell(self) -> None:
        row, column = self.row, self.column
        if row < self.top:
            self.top = row
        if row > self.bottom:
            self.bottom = row
        if column < self.left:
            self.left = column
        if column > self.right:
            self.right = column
        rows, columns = self.bottom - self.top + 1, self.right - self.left + 1
        if rows > self.limits.rows or columns > self.limits.columns:
            first = f"{column_letters(self.left)}{self.top}"
            last = f"{column_letters(self.right)}{self.bottom}"
            declared = f", declared dimension {self.declared}" if self.declared else ""
            raise self.guard.refuse(
                f"sheet {self.sheet!r} spans at least {rows:,} rows × {columns:,} columns "
                f"(cells from {first} to {last}{declared}); the limit is {self.limits.rows:,} rows × "
                f"{self.limits.columns:,} columns (settings max_sheet_rows, max_sheet_columns)"
            )


def _check_central_directory(path: Path) -> None:
    """Refuse a zip whose central directory is huge before ``zipfile`` parses every entry of it."""
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return  # not a valid zip: zipfile says so with its own message
    entries, directory_size = struct.unpack("<10xHI", tail[at : at + 16])
    if entries == 0xFFFF or directory_size > MAX_CENTRAL_DIRECTORY:
        raise SpreadsheetError(
            f"{path.name}: the zip directory lists too many parts ({entries:,} entries, "
            f"{directory_size:,} bytes); refused before reading it"
        )
