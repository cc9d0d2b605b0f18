"""What a person at the desk waits for with a large CSV campaign, each step run as the process they run:
``campaign create --json``, ``campaign status --json``, ``campaign export`` to CSV and to xlsx (SQLite).

A quarter of the rows are bad numbers (as in the million-row list this was first measured on). Printed:
each step's seconds, the create process's peak memory and the size of its JSON, and the xlsx export as a
ratio of the CSV export (target ≤ 3×; the CSV target: ≤ 5 s at 1,000,000 rows). Nothing is sent: the
account points at a closed port and the campaign stays a draft.

    python bench/desk.py [--quick] [--rows N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
DISPATCHER = (
    [str(BIN / "dispatcher")] if (BIN / "dispatcher").exists() else [sys.executable, "-m", "dispatcher"]
)
TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"


def write_list(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("手机号,姓名\n")
        for i in range(rows):
            mobile = f"138{i:08d}" if i % 4 else f"12{i:06d}"  # every fourth row: not a mobile number
            out.write(f"{mobile},客户{i}\n")


def run(step: str, args: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run([*DISPATCHER, *args], env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{step} exited {done.returncode}: {done.stderr.decode()[-1000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 rows (under a minute)")
    parser.add_argument("--rows", type=int, default=None, help="rows in the list (default 1,000,000)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="working directory (default: a new temporary one)"
    )
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    work = args.dir or Path(tempfile.mkdtemp(prefix="desk-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    config = work / "dispatcher.toml"
    config.write_text(
        'send_window = "00:00-24:00"\n[accounts.desk]\nvendor = "yunxin"\nbase_url = "http://127.0.0.1:9"\n'
        'user = "demo"\npassword = "demo"\nchannel = "37"\nrate_limit = 10\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "DISPATCHER_CONFIG": str(config),
        "DISPATCHER_DATABASE_URL": f"sqlite:///{work / 'desk.sqlite3'}",
        "COLUMNS": "120",
    }
    contacts = work / "list.csv"
    write_list(contacts, rows)
    run("db upgrade", ["db", "upgrade"], env)

    create_s, out = run(
        "create",
        ["campaign", "create", str(contacts), "--template", TEMPLATE, "--account", "desk", "--json"],
        env,
    )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    created = json.loads(out)
    campaign = str(created["id"])
    status_s, _ = run("status", ["campaign", "status", campaign, "--json"], env)
    csv_s, _ = run("export csv", ["campaign", "export", campaign, str(work / "out.csv")], env)
    xlsx_s, _ = run("export xlsx", ["campaign", "export", campaign, str(work / "out.xlsx")], env)

    print(
        f"{rows:,} rows ({created['valid']:,} valid, {created['rejected_count']:,} rejected), SQLite, in {work}"
    )
    print(f"  campaign create --json  {create_s:7.2f} s  peak {peak_mb:,.0f} MB  JSON {len(out):,} bytes")
    print(f"  campaign status --json  {status_s:7.2f} s")
    print(f"  campaign export .csv    {csv_s:7.2f} s")
    print(f"  campaign export .xlsx   {xlsx_s:7.2f} s  = {xlsx_s / csv_s:.1f}× the CSV (target ≤ 3×)")


if __name__ == "__main__":
    main()
