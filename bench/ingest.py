"""Ingest benchmark: a contact list of N rows stored as a campaign, and checked, against pandas/openpyxl.

Measured side by side in one run (these machines are noisy), each step in a child process of its own,
whose peak RSS (``VmHWM``) is the step's peak memory; the time is the step alone, imports excluded:
  create    ``dispatcher.campaigns.create``: read, validate, render, plan, and store the campaign (every
            row as a recipient, accepted or rejected, and the planned chunks) in a fresh store
  check     what ``dispatcher check`` runs: ``contacts.ingest`` + ``chunker.plan``, nothing stored
  calamine  python-calamine's bare parse of the same sheet (``to_python``)
  openpyxl  ``pandas.read_excel(engine="openpyxl")``, the baseline every ratio is against
  csv       the check path on the same list saved as CSV (GB18030)

    python bench/ingest.py --quick                       # 100,000 rows, SQLite, under a minute
    python bench/ingest.py                               # 200,000 and 1,000,000 rows, SQLite
    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

A SQLite store is a file in a temporary directory; a PostgreSQL URL gets a fresh schema per create
run, dropped afterwards (the server's own memory is not in the peak RSS).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from scratch_store import backend_name, scratch_store

TEMPLATE = "{姓名}您好，{城市}门店送您{金额}元优惠券，券码{券码}，回T退订【好店】"
PREFIXES = ("139", "138", "137", "136", "135", "186", "188", "150", "151", "177", "199", "158")
CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚"
HEADER = ("手机号码", "姓名", "城市", "券码", "金额")


def _rows(n: int) -> Any:
    rng = random.Random(20240501)
    for i in range(n):
        phone = f"{rng.choice(PREFIXES)}{rng.randrange(10**8):08d}"
        if i % 200 == 7:
            phone = phone[:-1]  # 0.5% invalid numbers
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        yield phone, name, rng.choice(CITIES), f"Q{i:08d}", rng.choice((5, 10, 20, 50, 100, 12.5))


_INLINE = re.compile(
    r'<c r="([A-Z]+[0-9]+)"([^>]*?) t="inlineStr"><is><t(?: [^>]*)?>(.*?)</t></is></c>', re.S
)
_SST_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_SST_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"


def to_shared_strings(source: Path, target: Path) -> None:
    """Rewrite openpyxl's write-only inline strings into xl/sharedStrings.xml, as Excel and WPS save."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        index: dict[str, int] = {}

        def shared(m: re.Match[str]) -> str:
            i = index.setdefault(m.group(3), len(index))
            return f'<c r="{m.group(1)}"{m.group(2)} t="s"><v>{i}</v></c>'

        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = _INLINE.sub(shared, data.decode("utf-8")).encode("utf-8")
            elif item.filename == "[Content_Types].xml":
                part = f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_SST_TYPE}"/>'
                data = data.replace(b"</Types>", part.encode() + b"</Types>")
            elif item.filename == "xl/_rels/workbook.xml.rels":
                rel = f'<Relationship Id="rIdSST" Type="{_SST_REL}" Target="sharedStrings.xml"/>'
                data = data.replace(b"</Relationships>", rel.encode() + b"</Relationships>")
            zout.writestr(item, data)
        body = "".join(f"<si><t>{text}</t></si>" for text in index)  # already XML-escaped by openpyxl
        zout.writestr(
            "xl/sharedStrings.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            f'count="{len(index)}" uniqueCount="{len(index)}">{body}</sst>',
        )


def write_files(n: int, directory: Path) -> tuple[Path, Path]:
    import openpyxl

    xlsx, csv_path = directory / f"contacts-{n}.xlsx", directory / f"contacts-{n}.csv"
    if not xlsx.exists():
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("名单")
        sheet.append(("2024 五一活动名单",))  # a title row above the header, as real lists have
        sheet.append(HEADER)
        for i, (phone, *rest) in enumerate(_rows(n)):
            # half the phone cells text, half numeric (what Excel does when a column is not text)
            sheet.append((phone if i % 2 else int(phone), *rest))
        tmp = xlsx.with_suffix(".tmp.xlsx")
        workbook.save(tmp)
        to_shared_strings(tmp, xlsx)
        tmp.unlink()
    if not csv_path.exists():
        with csv_path.open("w", encoding="gb18030", newline="") as f:  # what Chinese Excel/WPS write
            writer = csv.writer(f)
            writer.writerow(HEADER)
            writer.writerows(_rows(n))
    return xlsx, csv_path


STEPS = ("create", "openpyxl", "check", "calamine", "csv")


def _settings(database_url: str, vendor: str) -> Any:
    from types import MappingProxyType

    from dispatcher.config import AccountConfig, Settings

    account = AccountConfig("bench", vendor, "http://127.0.0.1:9", "u", "p")
    return Settings(database_url, "memory://", accounts=MappingProxyType({"bench": account}))


def child(kind: str, path: str, vendor: str, database_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kind == "create":
        from sqlalchemy import text

        from dispatcher import campaigns
        from dispatcher.store import make_engine, session_factory

        engine = make_engine(database_url)
        sessions = session_factory(engine)
        settings = _settings(database_url, vendor)
        started = time.perf_counter()
        created = campaigns.create(sessions, settings, path, TEMPLATE, "bench", actor="bench")
        out["seconds"] = time.perf_counter() - started
        with engine.connect() as conn:  # not timed: every non-blank row stored, positions 0..rows-1
            stored, first, last = conn.execute(
                text("SELECT count(*), min(position), max(position) FROM recipients WHERE campaign_id = :c"),
                {"c": created.campaign_id},
            ).one()
        engine.dispose()
        out.update(
            rows=created.result.rows,
            stored=stored if (first, last) == (0, stored - 1) else -1,
            messages=len(created.result.messages),
            rejected=len(created.result.rejected),
            requests=len(created.chunks),
        )
    elif kind in ("check", "csv"):
        from dispatcher import chunker
        from dispatcher.contacts import ingest

        started = time.perf_counter()
        result = ingest(path, TEMPLATE)
        ingested = time.perf_counter()
        chunks = chunker.plan(result.messages.mobiles, result.messages.texts, vendor, campaign_id=1)
        out["seconds"] = time.perf_counter() - started
        out["plan_s"] = time.perf_counter() - ingested
        out.update(rows=result.rows, messages=len(result.messages), requests=len(chunks))
    elif kind == "calamine":
        import python_calamine

        started = time.perf_counter()
        rows = python_calamine.CalamineWorkbook.from_path(path).get_sheet_by_index(0).to_python()
        out["seconds"] = time.perf_counter() - started
        out["rows"] = len(rows)
    elif kind == "openpyxl":
        import pandas as pd

        started = time.perf_counter()
        out["rows"] = len(pd.read_excel(path, engine="openpyxl", header=None))
        out["seconds"] = time.perf_counter() - started
    out["peak_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ``ru_maxrss``: Linux carries that over from the parent across exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, path: Path, vendor: str, database_url: str = "") -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path), vendor, database_url],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        sys.exit(f"{kind} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_step(kind: str, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One run of a step in a child process (a create in a fresh store, checked afterwards)."""
    if kind != "create":
        return run_child(kind, path, args.vendor)
    with scratch_store(args.database_url, "bench_ingest") as url:
        run = run_child(kind, path, args.vendor, url)
    if run["stored"] != run["rows"]:
        sys.exit(f"create stored {run['stored']} rows of {run['rows']}")
    return run


def bench_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    t = time.perf_counter()
    xlsx, csv_path = write_files(n, args.dir)
    print(f"\nfiles for {n:,} rows ready in {time.perf_counter() - t:.1f} s: {xlsx}, {csv_path}")
    # Rounds of every step, interleaved, so a change of load during the run weighs on all of them;
    # the best run of each step is kept, and every time shown.
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in STEPS}
    for _ in range(args.repeat):
        for kind in STEPS:
            runs[kind].append(run_step(kind, csv_path if kind == "csv" else xlsx, args))
    steps = {
        kind: {
            **min(done, key=lambda r: r["seconds"]),
            "times": [r["seconds"] for r in done],
            "peak_mb": max(r["peak_mb"] for r in done),
        }
        for kind, done in runs.items()
    }
    base = steps["openpyxl"]["seconds"]
    print(f"{'step':<10} {'best s':>8} {'runs (s)':>22} {'peak RSS':>9}  vs openpyxl")
    for name, step in steps.items():
        times = " / ".join(f"{s:.2f}" for s in step["times"])
        ratio = base / step["seconds"]
        print(f"{name:<10} {step['seconds']:8.2f} {times:>22} {step['peak_mb']:6.0f} MB  {ratio:5.1f}x")
    create, check = steps["create"], steps["check"]
    print(
        f"create: {create['rows']:,} rows stored ({create['messages']:,} messages, {create['rejected']:,} "
        f"rejected) in {create['requests']:,} {args.vendor} requests\n"
        f"create vs openpyxl: {base / create['seconds']:.1f}x (target >= 5x, aim 8x); "
        f"peak {create['peak_mb']:.0f} MB (target < 1024)\n"
        f"check vs openpyxl: {base / check['seconds']:.1f}x; check / calamine bare parse: "
        f"{check['seconds'] / steps['calamine']['seconds']:.2f}x (target <= 3x); "
        f"chunk plan {100 * check['plan_s'] / check['seconds']:.1f} % of the check (target < 5 %)"
    )
    return {"rows": n, **steps}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="100,000 rows only")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file per create run")
    parser.add_argument("--vendor", default="entinfo", help="the account's vendor (its chunk plan)")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/dispatcher-bench"), help="contact lists")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of every step (best kept)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    sizes = [100_000] if args.quick else args.rows
    args.dir.mkdir(parents=True, exist_ok=True)
    print(
        f"command: python {' '.join(sys.argv)}\nstore: {backend_name(args.database_url)}; "
        f"vendor {args.vendor}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    figures = [bench_size(n, args) for n in sizes]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
