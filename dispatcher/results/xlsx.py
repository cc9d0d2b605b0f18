"""A one-sheet xlsx written straight as SpreadsheetML, streamed into the zip: the exports' writer.

openpyxl's write-only mode spends about ten microseconds per cell in Python (a cell object, its value
bound and checked, its attributes, then the XML): a 100,000-row export with the list's own columns holds
over a million cells. Here a row is one string built from its cells' text. Text is always an inline
string (``t="inlineStr"``), never a formula, whatever it starts with; control characters XML cannot
hold are shown as U+FFFD; times are Excel serial numbers in a date-time format, as the wall time they
carry (Excel has no time zones).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from dispatcher.contacts.headers import column_letter

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CONTENT_TYPES = (
    _HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    _HEAD + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK_RELS = (
    _HEAD + f'<Relationships xmlns="{_PKG_REL}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'
)
# Style 1: a date and time (the exports' China times).
_STYLES = (
    _HEAD + f'<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
)
_EPOCH = datetime(1899, 12, 30)
# What XML 1.0 cannot hold (openpyxl's rule; not imported from it: a CSV export need not load openpyxl).
ILLEGAL_CHARACTERS_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
_ROWS_PER_WRITE = 2_000


def _text(value: str) -> str:
    if not value.isprintable():  # rare: only then look for what XML cannot hold
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(ref: str, value: Any) -> str:
    if type(value) is str:
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_text(value)}</t></is></c>'
    if isinstance(value, datetime):
        serial = (value.replace(tzinfo=None) - _EPOCH).total_seconds() / 86_400
        return f'<c r="{ref}" s="1"><v>{serial!r}</v></c>'
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value!r}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_text(str(value))}</t></is></c>'


def write_xlsx(
    path: Path, sheet: str, header: Sequence[Any], rows: Iterable[Sequence[Any]], widths: Sequence[float]
) -> int:
    """Write ``header`` and ``rows`` to ``path``: header frozen, a filter on every column, ``widths``
    (characters) for the first columns. Returns the number of data rows."""
    width = max(len(header), 1)
    letters = [column_letter(i) for i in range(width)]
    cols = "".join(
        f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(widths, start=1)
    )
    count = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(
                (
                    _HEAD + f'<worksheet xmlns="{_MAIN}"><sheetViews><sheetView workbookViewId="0">'
                    '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
                    '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
                    '<sheetFormatPr defaultRowHeight="15"/>'
                    + (f"<cols>{cols}</cols>" if cols else "")
                    + "<sheetData>"
                ).encode()
            )
            batch = [
                '<row r="1">',
                *(_cell(f"{c}1", v) for c, v in zip(letters, header, strict=False)),
                "</row>",
            ]
            for row in rows:
                count += 1
                n = count + 1
                batch.append(f'<row r="{n}">')
                batch.extend(
                    _cell(f"{c}{n}", v)
                    for c, v in zip(letters, row, strict=False)
                    if v is not None and v != ""
                )
                batch.append("</row>")
                if count % _ROWS_PER_WRITE == 0:
                    out.write("".join(batch).encode("utf-8", "replace"))
                    batch.clear()
            last = f"A1:{letters[-1]}{count + 1}"
            batch.append(f'</sheetData><autoFilter ref="{last}"/></worksheet>')
            out.write("".join(batch).encode("utf-8", "replace"))
        name = quoteattr(sheet)
        quoted = "'" + sheet.replace("'", "''") + "'"
        filter_range = _text(f"{quoted}!$A$1:${letters[-1]}${count + 1}")
        book.writestr(
            "xl/workbook.xml",
            _HEAD + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
            f'<sheet name={name} sheetId="1" r:id="rId1"/></sheets><definedNames>'
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">{filter_range}</definedName>'
            "</definedNames></workbook>",
        )
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        book.writestr("xl/styles.xml", _STYLES)
    return count
