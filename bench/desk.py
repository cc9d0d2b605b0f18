"""What a person at the desk waits for with a large CSV campaign, each step run as the process they run:
``campaign create --json``, ``campaign status --json``, ``campaign export`` to CSV and to xlsx (SQLite),
then the campaign's page and ``GET /api/campaigns/N`` from the real web app (``dispatcher web``).

A quarter of the rows are bad numbers (as in the million-row list this was first measured on). Printed:
each step's seconds, the create process's peak memory and the size of its JSON, and the xlsx export as a
ratio of the CSV export (target ≤ 3×; the CSV target: ≤ 5 s at 1,000,000 rows); the page and the API as
the median of a few requests (target < 300 ms at 1,000,000 recipients), beside the sign-in page's (a
page that reads no recipient: the app's own floor in the same run). Nothing is sent: the account points
at a closed port; once created, the campaign is marked sent in the store (most delivered, some
undelivered, accepted and failed, with batch ids, codes and times), as a campaign the desk exports is.

``--baseline CHECKOUT`` runs the status and export steps with another checkout's package too, taking
turns on the same store, and prints each step's ratio (a before/after in one run).

    python bench/desk.py [--quick] [--rows N] [--dir DIR] [--baseline CHECKOUT] [--no-web]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sqlite3
import statistics
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


def mark_sent(database: Path, campaign: int) -> None:
    """The campaign as after its sending: 85 % delivered, 5 % undelivered, 5 % accepted (reports still
    due), 5 % failed; a batch id per 1,000, submitted and delivered times a few seconds apart."""
    with sqlite3.connect(database) as db:
        db.execute(
            """UPDATE recipients SET
                state = CASE id % 20 WHEN 0 THEN 'undelivered' WHEN 1 THEN 'accepted' WHEN 2 THEN 'failed'
                        ELSE 'delivered' END,
                vendor_code = CASE id % 20 WHEN 2 THEN '-16' ELSE '0' END,
                report_status = CASE id % 20 WHEN 0 THEN 'UNDELIV' WHEN 1 THEN NULL WHEN 2 THEN NULL
                        ELSE 'DELIVRD' END,
                batch_id = CASE id % 20 WHEN 2 THEN NULL ELSE 'b' || (id / 1000) END,
                submitted_at = CASE id % 20 WHEN 2 THEN NULL
                        ELSE datetime('2026-12-07 02:00:00', '+' || (id / 1000) || ' seconds') END,
                delivered_at = CASE WHEN id % 20 IN (0, 1, 2) THEN NULL
                        ELSE datetime('2026-12-07 02:00:07', '+' || (id / 1000) || ' seconds') END
            WHERE campaign_id = ? AND state = 'planned'""",
            (campaign,),
        )
        db.execute("UPDATE chunks SET state = 'accepted' WHERE campaign_id = ?", (campaign,))
        db.execute("UPDATE campaigns SET state = 'sent' WHERE id = ?", (campaign,))


def run(
    step: str, args: list[str], env: dict[str, str], command: list[str] = DISPATCHER
) -> tuple[float, bytes, float]:
    """Run one step as its own process: (seconds, its standard output, its peak RSS in MB)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([*command, *args], env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{step} exited {child.returncode}: {err.read().decode()[-1000:]}")
        return elapsed, out.read(), usage.ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def web_times(
    env: dict[str, str], campaign: str, rounds: int, command: list[str] = DISPATCHER
) -> dict[str, float]:
    """Median seconds of the sign-in page, the campaign's page and its API, from ``dispatcher web``."""
    import httpx

    subprocess.run([*command, "user", "add", "desk", "--role", "sender", "--password-stdin"],
                   input=b"desk-bench-password\n", env=env, check=False, capture_output=True)  # fmt: skip
    token = subprocess.run([*command, "user", "token", "desk"], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*command, "web", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with (
            httpx.Client(base_url=base, timeout=60) as client,
            httpx.Client(base_url=base, timeout=60) as anon,
        ):
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/login").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("dispatcher web did not answer within 60 s")
                time.sleep(0.2)
            csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
            assert csrf is not None
            signed = client.post(
                "/login", data={"name": "desk", "password": "desk-bench-password", "csrf": csrf.group(1)}
            )
            assert signed.status_code == 303, signed.text[:300]
            bearer = {"Authorization": f"Bearer {token.stdout.decode().strip()}"}
            asks = {
                "sign-in page": lambda: anon.get("/login"),  # signed out: no session look-up
                "campaign page": lambda: client.get(f"/campaigns/{campaign}"),
                "API": lambda: client.get(f"/api/campaigns/{campaign}", headers=bearer, cookies={}),
            }
            times: dict[str, list[float]] = {name: [] for name in asks}
            for _ in range(rounds):  # in turns: the machine's load falls on each alike
                for name, ask in asks.items():
                    started = time.perf_counter()
                    answer = ask()
                    times[name].append(time.perf_counter() - started)
                    if answer.status_code != 200:
                        raise SystemExit(f"{name}: HTTP {answer.status_code}: {answer.text[:300]}")
    finally:
        server.terminate()
        server.wait(30)
    return {name: statistics.median(found) for name, found in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 rows (under a minute)")
    parser.add_argument("--rows", type=int, default=None, help="rows in the list (default 1,000,000)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="working directory (default: a new temporary one)"
    )
    parser.add_argument(
        "--baseline", type=Path, help="also run status and exports with this checkout's package"
    )
    parser.add_argument("--no-web", action="store_true", help="leave out the page and the API")
    parser.add_argument("--rounds", type=int, default=5, help="requests to the page and API (median)")
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
    contacts = work / "list.csv"
    write_list(contacts, rows)
    runners = {"now": DISPATCHER}
    if args.baseline is not None:
        source = str(args.baseline.resolve())
        code = f"import sys; sys.path.insert(0, {source!r}); from dispatcher.cli import app; app()"
        runners = {"baseline": [sys.executable, "-c", code], **runners}  # the baseline first, then now
    # Each its own store (a baseline may not know the newer schema), steps in turns.
    envs, campaign = {}, ""
    for name in runners:
        database = work / f"desk-{name}.sqlite3"
        database.unlink(missing_ok=True)
        envs[name] = {
            **os.environ,
            "DISPATCHER_CONFIG": str(config),
            "DISPATCHER_DATABASE_URL": f"sqlite:///{database}",
            "DISPATCHER_SECRET_KEY": os.urandom(24).hex(),
            "COLUMNS": "120",
        }
        run("db upgrade", ["db", "upgrade"], envs[name], runners[name])
    create = ["campaign", "create", str(contacts), "--template", TEMPLATE, "--account", "desk", "--json"]
    took: dict[str, dict[str, float]] = {name: {} for name in runners}
    print(f"{rows:,} rows, SQLite, in {work}")
    for name, command in runners.items():
        took[name]["campaign create --json"], out, peak_mb = run("create", create, envs[name], command)
        created = json.loads(out)
        campaign = str(created["id"])
        mark_sent(work / f"desk-{name}.sqlite3", int(campaign))
        print(
            f"  {name}: {created['valid']:,} valid, {created['rejected_count']:,} rejected; create peak "
            f"{peak_mb:,.0f} MB, JSON {len(out):,} bytes"
        )
    steps = {
        "campaign status --json": ["campaign", "status", campaign, "--json"],
        "campaign export .csv": ["campaign", "export", campaign, str(work / "out.csv")],
        "campaign export .xlsx": ["campaign", "export", campaign, str(work / "out.xlsx")],
    }
    for step, step_args in steps.items():
        for name, command in runners.items():
            took[name][step], _, _ = run(step, step_args, envs[name], command)
    for step in ["campaign create --json", *steps]:
        now = took["now"][step]
        line = f"  {step:<23} {now:7.2f} s"
        if "baseline" in took:
            line += f"  (baseline {took['baseline'][step]:.2f} s: {now / took['baseline'][step]:.2f}×)"
        print(line)
    csv_s, xlsx_s = took["now"]["campaign export .csv"], took["now"]["campaign export .xlsx"]
    print(f"  xlsx / csv              {xlsx_s / csv_s:7.2f}×  (target ≤ 3×; csv target ≤ 5 s at 1,000,000)")
    if not args.no_web:
        for name, command in runners.items():
            web = web_times(envs[name], campaign, args.rounds, command)
            floor = web["sign-in page"]
            for page, seconds in web.items():
                print(
                    f"  {name}: GET {page:<14} {seconds * 1000:7.0f} ms  = {seconds / floor:.1f}× the sign-in page"
                )


if __name__ == "__main__":
    main()
