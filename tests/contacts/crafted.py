"""Hostile workbooks, built byte by byte: each would make calamine allocate far more than any machine has
(it aborts the process), or make an XML parser expand entities, or unpack a zip bomb."""

from __future__ import annotations

import struct
import warnings
import zipfile
import zlib
from pathlib import Path

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_TYPES = (
    HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_RELS = (
    HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS = (
    HEAD + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
    'Target="sharedStrings.xml"/></Relationships>'
)
HEADER_CELL = '<c r="A1" t="inlineStr"><is><t>手机号</t></is></c>'


def workbook(path: Path, sheet_xml: str, *, sheet: str = "名单", shared: str | None = None) -> Path:
    """An xlsx of one sheet with this XML (and this sharedStrings.xml)."""
    shared = shared or HEAD + f'<sst {NS} count="0" uniqueCount="0"></sst>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _TYPES)
        z.writestr("_rels/.rels", _RELS)
        z.writestr(
            "xl/workbook.xml",
            HEAD + f'<workbook {NS} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
            f'relationships"><sheets><sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        z.writestr("xl/sharedStrings.xml", shared)
    return path


def sheet(rows: str, *, dimension: str | None = None) -> str:
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return HEAD + f"<worksheet {NS}>{dim}<sheetData>{rows}</sheetData></worksheet>"


def far_corner(path: Path) -> Path:
    """The issue's file: cells at A1 and XFD1048576 (a 549 GB rectangle for calamine), a few KB."""
    rows = f'<row r="1">{HEADER_CELL}</row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    return workbook(path, sheet(rows, dimension="A1:XFD1048576"))


def wide_without_references(path: Path, columns: int) -> Path:
    """Cells without ``r``: calamine places them one column right of the previous one."""
    cells = "<c><v>1</v></c>" * columns
    return workbook(path, sheet(f"<row>{HEADER_CELL}</row><row>{cells}</row>"))


def huge_shared_strings(path: Path) -> Path:
    """A shared-strings table declaring four billion strings (calamine reserves them up front: 96 GB)."""
    shared = HEAD + f'<sst {NS} count="4000000000" uniqueCount="4000000000"><si><t>x</t></si></sst>'
    rows = f'<row r="1">{HEADER_CELL}</row><row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    return workbook(path, sheet(rows), shared=shared)


def billion_laughs(path: Path) -> Path:
    """Ten levels of ten entities: a parser that expands them builds 10**9 copies of "lol"."""
    levels = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doctype = f"<!DOCTYPE worksheet [{''.join(levels)}]>"
    xml = (
        HEAD
        + doctype
        + (
            f'<worksheet {NS}><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
            "</sheetData></worksheet>"
        )
    )
    return workbook(path, xml)


def zip_bomb(path: Path, megabytes: int = 64) -> Path:
    """A sheet that unpacks to ``megabytes`` of blanks from a few tens of KB (a real one would be GBs)."""
    rows = f'<row r="1">{HEADER_CELL}</row>'
    xml = sheet(rows).replace("<sheetData>", "<sheetData>" + " " * (megabytes << 20))
    return workbook(path, xml)


def lying_size(path: Path, *, declared: int = 100) -> Path:
    """A workbook whose shared-strings part declares ``declared`` bytes (and that prefix's CRC) but
    inflates to megabytes: a reader trusting the header is surprised."""
    real = HEAD + f'<sst {NS} count="1" uniqueCount="1"><si><t>{"x" * (8 << 20)}</t></si></sst>'
    workbook(path, sheet(f'<row r="1">{HEADER_CELL}</row>'), shared=real)
    data = bytearray(path.read_bytes())
    prefix_crc = zlib.crc32(real.encode()[:declared])
    name = b"xl/sharedStrings.xml"
    # Patch the sizes and CRC in both the local header and the central directory entry.
    at = 0
    while (at := data.find(name, at)) >= 0:
        if data[at - 30 : at - 26] == b"PK\x03\x04":  # local file header
            struct.pack_into("<I", data, at - 30 + 14, prefix_crc)
            struct.pack_into("<I", data, at - 30 + 22, declared)
        elif data[at - 46 : at - 42] == b"PK\x01\x02":  # central directory entry
            struct.pack_into("<I", data, at - 46 + 16, prefix_crc)
            struct.pack_into("<I", data, at - 46 + 24, declared)
        at += len(name)
    path.write_bytes(bytes(data))
    return path


def rewrite(path: Path, edit: dict[str, str | None], *, duplicate: str | None = None) -> Path:
    """Rename parts (``old: new``; ``None`` drops one), or add a second copy of ``duplicate``."""
    with zipfile.ZipFile(path) as z:
        items = [(name, z.read(name)) for name in z.namelist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            new = edit.get(name, name)
            if new is not None:
                z.writestr(new, data)
        if duplicate is not None:
            with warnings.catch_warnings():  # zipfile warns about the duplicate: that is the point
                warnings.simplefilter("ignore")
                z.writestr(duplicate, dict(items)[duplicate])
    return path


def relink(path: Path, target: str) -> Path:
    """Point the sheet's relationship at ``target`` (as written in workbook.xml.rels)."""
    with zipfile.ZipFile(path) as z:
        items = [(name, z.read(name)) for name in z.namelist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            if name == "xl/_rels/workbook.xml.rels":
                data = data.replace(b'Target="worksheets/sheet1.xml"', f'Target="{target}"'.encode())
            z.writestr(name, data)
    return path


def far_corner_xls(path: Path) -> Path:
    """An xls whose last cell claims column 65,535 (BIFF8 allows 256): calamine asks for 125 GB."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("名单")
    sheet.write(0, 0, "手机号")
    sheet.write(1, 0, "13912345678")
    sheet.write(60000, 200, 7.25)  # written as an RK record: type, length, row, column, ...
    book.save(str(path))
    data = bytearray(path.read_bytes())
    at = data.find(struct.pack("<HHHH", 0x027E, 10, 60000, 200))
    assert at >= 0, "xlwt wrote the cell otherwise"
    struct.pack_into("<H", data, at + 6, 0xFFFF)
    path.write_bytes(bytes(data))
    return path


def ods(path: Path, rows_xml: str, *, sheet: str = "名单") -> Path:
    """An OpenDocument spreadsheet of one table whose rows are ``rows_xml`` (use :func:`ods_cell`)."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="{sheet}">{rows_xml}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content)
        z.writestr("META-INF/manifest.xml", manifest)
    return path


def ods_cell(value: str, repeat: int = 1) -> str:
    repeated = f' table:number-columns-repeated="{repeat}"' if repeat > 1 else ""
    return (
        f'<table:table-cell{repeated} office:value-type="string"><text:p>{value}</text:p></table:table-cell>'
    )


def ods_row(cells: str, repeat: int = 1) -> str:
    repeated = f' table:number-rows-repeated="{repeat}"' if repeat > 1 else ""
    return f"<table:table-row{repeated}>{cells}</table:table-row>"


def xlsb_records(path: Path, rows: list[tuple[int, list[int]]]) -> Path:
    """A zip holding an xlsb worksheet part whose records put cells at (0-based row, [columns])."""

    def record(kind: int, data: bytes) -> bytes:
        return bytes([kind]) + bytes([len(data)]) + data

    body = b"".join(
        record(0, row.to_bytes(4, "little") + b"\0" * 8)
        + b"".join(record(5, column.to_bytes(4, "little") + b"\0" * 12) for column in columns)
        for row, columns in rows
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.bin", b"")
        z.writestr("xl/worksheets/sheet1.bin", body)
    return path
