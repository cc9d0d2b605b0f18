"""Contact-list files written by the tests themselves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import xlwt

Row = Sequence[Any]


def write_xlsx(path: Path, sheets: dict[str, Sequence[Row]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    workbook.save(path)
    return path


def write_xls(path: Path, rows: Sequence[Row]) -> Path:
    book = xlwt.Workbook()
    sheet = book.add_sheet("名单")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(path))
    return path


def write_ods(path: Path, rows: Sequence[Row]) -> Path:
    pd.DataFrame(rows[1:], columns=list(rows[0])).to_excel(path, engine="odf", index=False)  # type: ignore[arg-type]
    return path


def write_csv(path: Path, rows: Sequence[Row], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    text = "\r\n".join(delimiter.join(str(v) for v in row) for row in rows) + "\r\n"
    path.write_bytes(text.encode(encoding))
    return path


HEADER = ["姓名", "手机号码", "城市", "金额"]
ROWS: list[Row] = [
    HEADER,
    ["张三", "13912345678", "北京", 462],
    ["李四", "13912345679", "上海", 12.5],
]
