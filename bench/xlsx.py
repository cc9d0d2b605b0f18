"""The export's xlsx writers against its CSV writer, on the same rows in one process (the rows are made
once, in memory: only the writing is timed, as CPU seconds of this process, each writer in turns).

Writers: ``csv`` (``results.export.write_rows``, as the CSV export), ``own`` (``results.xlsx.write_xlsx``,
SpreadsheetML streamed into the zip, as the xlsx export), xlsxwriter's ``constant_memory`` mode and
openpyxl's write-only mode (each only if installed: xlsxwriter is not a dependency). Rows as the export
writes them: 13 cells of the dispatcher's and 2 of the list's own (numbers, Chinese text, datetimes,
blanks).

    python bench/xlsx.py [--quick] [--rows N] [--rounds K]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dispatcher.results.export import write_rows
from dispatcher.results.xlsx import write_xlsx

HEADER = [f"column {i}" for i in range(15)]


def make_rows(count: int) -> list[list[Any]]:
    sent = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    out = []
    for i in range(count):
        at = sent + timedelta(seconds=i // 1000)
        out.append(
            [i + 2, f"138{i:08d}", f"客户{i}您好，会员日全场8折，回T退订【测试】", 1, "已送达", "DELIVRD",
             "成功送达", f"b{i // 1000}", at, at + timedelta(seconds=7), None, "desk（云信）", None,
             f"138{i:08d}", f"客户{i}"]
        )  # fmt: skip
    return out


def xlsxwriter_constant_memory(path: Path, rows: Sequence[Sequence[Any]]) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet("results")
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, HEADER)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, datetime):
                sheet.write_datetime(r, c, value, when)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)  # never a formula
            else:
                sheet.write_number(r, c, value)
    book.close()


def openpyxl_write_only(path: Path, rows: Sequence[Sequence[Any]]) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("results")
    sheet.append(HEADER)
    for row in rows:
        sheet.append([v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row])
    book.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 rows (under a minute)")
    parser.add_argument("--rows", type=int, default=None, help="rows (default 100,000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; --quick 2)")
    args = parser.parse_args()
    count = args.rows or (20_000 if args.quick else 100_000)
    rounds = args.rounds or (2 if args.quick else 3)
    rows = make_rows(count)
    work = Path(tempfile.mkdtemp(prefix="xlsx-bench-"))
    writers: dict[str, Callable[[Path], object]] = {
        "csv (the CSV export)": lambda p: write_rows(p.with_suffix(".csv"), HEADER, rows),
        "own SpreadsheetML (the xlsx export)": lambda p: write_xlsx(p, "results", HEADER, rows, [10] * 15),
    }
    if importlib.util.find_spec("xlsxwriter") is not None:
        writers["xlsxwriter constant_memory"] = lambda p: xlsxwriter_constant_memory(p, rows)
    writers["openpyxl write-only"] = lambda p: openpyxl_write_only(p, rows)
    took: dict[str, list[float]] = {name: [] for name in writers}
    for _ in range(rounds):
        for n, (name, write) in enumerate(writers.items()):
            started = time.process_time()
            write(work / f"out{n}.xlsx")
            took[name].append(time.process_time() - started)
    medians = {name: statistics.median(found) for name, found in took.items()}
    base = medians["csv (the CSV export)"]
    print(f"{count:,} rows of 15 cells, CPU seconds, median of {rounds}:")
    for name, seconds in medians.items():
        print(f"  {name:<36} {seconds:6.2f} s  {seconds / base:5.1f}× the CSV")


if __name__ == "__main__":
    main()
