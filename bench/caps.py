"""Frequency caps bench: what counting and checking the caps at each claim costs a campaign's dispatch.

One process sends a trigger campaign (personalised, 50 numbers a request) to the simulator (its own
process, no latency, no limit) with the send pipeline itself (``dispatch.send_group``, 64 chunks a
round, as a worker task does), once without any cap and once with ``frequency_caps = ["1/1d", "3/7d"]``,
each on a fresh store, in turns (off, on, off, on): the figure is the time with caps as a share of the
time without, from the same run. Target: the caps add under 10 %.

    python bench/caps.py [--quick] [--messages N] [--rounds R] [--database-url URL]
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dispatcher import campaigns
from dispatcher.config import Settings
from dispatcher.dispatch import AccountRuntime, load_group, send_group
from dispatcher.simulator import SimulatorConfig, start_simulator_process
from dispatcher.store import Chunk, make_engine, session_factory
from dispatcher.store.caps import CapCheck
from dispatcher.vendors.transport import Transport

sys.path.insert(0, str(Path(__file__).parent))
from scratch_store import scratch_store

GROUP = 64


def run(
    base_url: str, work: Path, database_url: str | None, messages: int, caps: bool
) -> tuple[float, float]:
    """The dispatch's wall time and this process's CPU time (the store's work, SQLite in-process; the
    simulator runs in its own process): on a shared, loaded machine the CPU time is the steadier."""
    config = work / "dispatcher.toml"
    config.write_text(
        'send_window = "00:00-24:00"\n'
        + ('frequency_caps = ["1/1d", "3/7d"]\n' if caps else "")
        + f'[accounts.tg]\nvendor = "trigger"\nbase_url = "{base_url}"\nuser = "demo"\npassword = "demo"\n',
        encoding="utf-8",
    )
    path = work / "list.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["手机号", "姓名"])
        writer.writerows((str(13700000000 + i), f"客户{i % 97}") for i in range(messages))
    with scratch_store(database_url, "bench_caps") as url:
        settings = Settings.load({"DISPATCHER_CONFIG": str(config), "DISPATCHER_DATABASE_URL": url})
        engine = make_engine(url)
        sessions = session_factory(engine)
        created = campaigns.create(
            sessions, settings, path, "{姓名}您好，回T退订【测试】", "tg", actor="bench"
        )
        ids = campaigns.start(sessions, created.campaign_id, "bench")
        account = settings.account("tg")
        check = CapCheck(settings.caps_for("tg")) if settings.counting else None
        runtime = AccountRuntime(
            account, account.vendor_module(), Transport([base_url], timeout=30), None, caps=check
        )
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(ids), GROUP):
            send_group(sessions, runtime, load_group(sessions, ids[start : start + GROUP]), "bench")
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        with sessions() as session:
            left = session.query(Chunk).filter(Chunk.state.in_(("queued", "sending"))).count()
        engine.dispose()
    if left:
        raise RuntimeError(f"{left} chunks left unsent")
    return took, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20,000 messages, one round")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2, help="off/on pairs")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file per run")
    args = parser.parse_args()
    messages, rounds = (20_000, 1) if args.quick else (args.messages, args.rounds)
    off: list[tuple[float, float]] = []
    on: list[tuple[float, float]] = []
    with (
        start_simulator_process(SimulatorConfig(report_delay=3600.0, seed=1)) as sim,
        tempfile.TemporaryDirectory(prefix="bench-caps-") as tmp,
    ):
        for _ in range(rounds):
            off.append(run(sim.base_url, Path(tmp), args.database_url, messages, caps=False))
            on.append(run(sim.base_url, Path(tmp), args.database_url, messages, caps=True))
    print(
        f"machine: {platform.node()} {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"messages: {messages:,} (trigger, 50 a request), store: {(args.database_url and 'postgresql') or 'sqlite'}"
    )
    for i, what in enumerate(("wall", "cpu")):
        a, b = [t[i] for t in off], [t[i] for t in on]
        print(
            f"{what}: without caps {' '.join(f'{t:.2f}s' for t in a)}; with caps {' '.join(f'{t:.2f}s' for t in b)}"
        )
        ratio = statistics.median(b) / statistics.median(a)
        print(f"{what}: caps cost {ratio - 1:+.1%} of the dispatch time (target < +10 %)")


if __name__ == "__main__":
    main()
