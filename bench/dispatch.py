"""Dispatch benchmark: real `dispatcher worker` processes sending a webservice campaign to the
simulator (its own process), the store on SQLite (or ``--database-url``), Redis as broker and limiter.

Two measurements in one run (these machines are noisy, so each figure is a ratio to its baseline):

1. Rate-limited: the simulator admits ``--rate`` requests/s per account (sliding 1 s window), the
   account is configured to the same rate, and 1, 2 and 4 worker processes send the campaign.
   Figure: sustained accepted requests/s as a share of R (target >= 95 %), and the share of requests
   answered "too frequent" (-16; target < 1 %).
2. Unlimited, ``--latency-ms`` (20) per request: messages/s of the dispatcher (webservice, one number per
   request) against a sequential ``httpx.Client`` loop over the same recipients (target >= 30x), and
   against the client-side ceiling: bare async clients with 64 requests in flight against the same
   simulator (aiohttp; httpx.AsyncClient on the httpx-aiohttp transport; plain httpx.AsyncClient), the
   ceiling being the best of them before the dispatcher runs averaged with aiohttp again after it
   (the load of a shared machine moves within seconds; target >= 80 %).

Sustained rate = accepted requests between the first and the last acceptance in the simulator's ledger
(its own clock); wall time from hand-off to the last acceptance is printed too.

    python bench/dispatch.py [--quick] [--rate R] [--seconds S] [--messages N] [--concurrency C]
                             [--group G] [--workers W] [--only limited|unlimited] [--database-url URL]

The store is a fresh SQLite file per run, or a fresh schema of ``--database-url`` (PostgreSQL) per run.
Peak RSS: the largest ``VmHWM`` among the worker processes (Celery's parent and its pool children).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from redis import Redis

from dispatcher import campaigns
from dispatcher.config import Settings
from dispatcher.keys import rate_key
from dispatcher.simulator import SimulatorConfig, SimulatorProcess, start_simulator_process
from dispatcher.store import make_engine, session_factory
from workers import tasks
from workers.app import make_celery

sys.path.insert(0, str(Path(__file__).parent))
from scratch_store import backend_name, scratch_store

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
SEND_PATH = "/Services/MsgSend.aspx/SendMsg"


def write_list(path: Path, count: int, first: int) -> list[str]:
    mobiles = [str(first + i) for i in range(count)]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["手机号", "姓名"])
        writer.writerows((m, f"客户{i % 97}") for i, m in enumerate(mobiles))
    return mobiles


class Run:
    """One campaign sent by ``workers`` worker processes against ``sim``."""

    def __init__(
        self, sim: SimulatorProcess, args: argparse.Namespace, work: Path, rate_limit: float
    ) -> None:
        self.sim, self.args, self.work = sim, args, work
        suffix = uuid.uuid4().hex[:8]
        self.account = f"bench-{suffix}"
        self.queue = f"bench-{suffix}"
        config = work / f"{suffix}.toml"
        config.write_text(
            'send_window = "00:00-24:00"\n'
            f'[accounts."{self.account}"]\nvendor = "webservice"\nbase_url = "{sim.base_url}"\n'
            f'user = "demo"\npassword = "demo"\nrate_limit = {rate_limit}\n',
            encoding="utf-8",
        )
        self._stores = ExitStack()
        database_url = self._stores.enter_context(scratch_store(args.database_url, "bench_dispatch"))
        self.env = {
            **os.environ,
            "DISPATCHER_CONFIG": str(config),
            "DISPATCHER_DATABASE_URL": database_url,
            "DISPATCHER_REDIS_URL": args.redis_url,
            "DISPATCHER_BROKER_URL": args.redis_url,
            "DISPATCHER_QUEUE": self.queue,
        }
        self.settings = Settings.load(self.env)
        self.engine = make_engine(database_url)
        self.sessions = session_factory(self.engine)
        self.app = make_celery(args.redis_url, redis_url=args.redis_url)
        self.app.conf.task_default_queue = self.queue
        self.processes: list[subprocess.Popen[bytes]] = []

    def start_workers(self, count: int) -> None:
        logs = []
        for n in range(count):
            log = self.work / f"{self.queue}-w{n}.log"
            logs.append(log)
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "dispatcher",
                        "worker",
                        *(["-c", str(self.args.concurrency)] if self.args.concurrency else []),
                        "-l",
                        "INFO",
                    ],
                    env=self.env,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 120
        while not all(" ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.2)

    def send(self, messages: int, first: int) -> dict[str, Any]:
        mobiles = write_list(self.work / f"{self.queue}.csv", messages, first)
        created = campaigns.create(
            self.sessions,
            self.settings,
            self.work / f"{self.queue}.csv",
            TEMPLATE,
            self.account,
            actor="bench",
        )
        ids = campaigns.start(self.sessions, created.campaign_id, "bench")
        started = time.time()
        tasks.enqueue(ids, app=self.app, group=self.args.group)
        deadline = time.monotonic() + max(120.0, messages / 10)
        while True:
            with self.sessions() as session:
                status = campaigns.status(session, created.campaign_id)
            done = status["accepted"] + status["failed"] + status["unknown"]
            if done >= messages or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        peak = self.peak_rss_mb()
        ledger = self.sim.ledger()
        wanted = set(mobiles)
        accepted = sorted(e["at"] for e in ledger["accepted"] if e["mobile"] in wanted)
        refused = [r for r in ledger["rejected"] if r["at"] >= started - 1]
        span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
        return {
            "messages": messages,
            "accepted": len(accepted),
            "store_accepted": status["accepted"],
            "failed": status["failed"],
            "unknown": status["unknown"],
            "duplicates": len(accepted)
            - len({e["mobile"] for e in ledger["accepted"] if e["mobile"] in wanted}),
            "too_frequent": sum(1 for r in refused if r["code"] == -16),
            "sustained_per_s": (len(accepted) - 1) / span if span else 0.0,
            "wall_s": (accepted[-1] - started) if accepted else 0.0,
            "worker_peak_rss_mb": round(peak, 1),
        }

    def peak_rss_mb(self) -> float:
        """The largest VmHWM among the workers and their pool children (read before they stop)."""
        pids = [p.pid for p in self.processes]
        for pid in list(pids):
            with contextlib.suppress(OSError):
                pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        peaks = [0]
        for pid in pids:
            with contextlib.suppress(OSError, StopIteration):
                status = Path(f"/proc/{pid}/status").read_text().splitlines()
                peaks.append(int(next(line for line in status if line.startswith("VmHWM")).split()[1]))
        return max(peaks) / 1024

    def close(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.engine.dispose()
        client: Redis[Any] = Redis.from_url(self.args.redis_url)
        client.delete(rate_key(self.account), self.queue)
        client.close()
        self._stores.close()


def sequential_httpx(base_url: str, mobiles: list[str]) -> float:
    """Messages/s of a plain loop: one ``httpx.Client`` (keep-alive), one SendMsg after the other."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        started = time.perf_counter()
        for i, mobile in enumerate(mobiles):
            form = {
                "userCode": "demo",
                "userPass": "demo",
                "DesNo": mobile,
                "Msg": f"客户{i % 97}您好【测试】",
            }
            answer = client.post(SEND_PATH, data=form).text
            assert answer.isdigit(), answer
        return len(mobiles) / (time.perf_counter() - started)


def _form(i: int, mobile: str) -> dict[str, str]:
    return {"userCode": "demo", "userPass": "demo", "DesNo": mobile, "Msg": f"客户{i % 97}您好【测试】"}


async def _ceiling(post: Any, mobiles: list[str], in_flight: int) -> float:
    """Messages/s of ``in_flight`` concurrent loops of ``post(form) -> answer`` over ``mobiles``."""
    queue = list(enumerate(mobiles))
    queue.reverse()

    async def loop() -> None:
        while queue:
            i, mobile = queue.pop()
            answer = await post(_form(i, mobile))
            assert answer.isdigit(), answer

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(in_flight)))
    return len(mobiles) / (time.perf_counter() - started)


def ceilings(
    base_url: str, mobiles: list[str], in_flight: int = 64, *, httpx_too: bool = True
) -> dict[str, float]:
    """The client-side ceiling: bare async clients, ``in_flight`` requests at once, nothing else."""

    async def with_aiohttp() -> float:
        async with aiohttp.ClientSession(base_url) as session:

            async def post(form: dict[str, str]) -> str:
                async with session.post(SEND_PATH, data=form) as resp:
                    return await resp.text()

            return await _ceiling(post, mobiles, in_flight)

    async def with_httpx(transport: httpx.AsyncBaseTransport | None, mobiles: list[str]) -> float:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=base_url, transport=transport, limits=limits, timeout=30
        ) as client:

            async def post(form: dict[str, str]) -> str:
                return (await client.post(SEND_PATH, data=form)).text

            return await _ceiling(post, mobiles, in_flight)

    figures = {"aiohttp": asyncio.run(with_aiohttp())}
    if not httpx_too:
        return figures
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:  # an optional (dev) dependency
        pass
    else:
        figures["httpx_on_aiohttp"] = asyncio.run(with_httpx(AiohttpTransport(), mobiles))
    # Plain httpx.AsyncClient stalls with this many in flight (encode/httpx#3215): a short sample.
    figures["httpx_async"] = asyncio.run(with_httpx(None, mobiles[: max(100, len(mobiles) // 10)]))
    return figures


def rate_limited(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    rows = []
    config = SimulatorConfig(report_delay=3600.0, deliver_ratio=1.0, rate_limit=args.rate, seed=1)
    with start_simulator_process(config) as sim:
        for n, workers in enumerate((1, 2, 4)):
            run = Run(sim, args, work, rate_limit=args.rate)
            try:
                run.start_workers(workers)
                result = run.send(int(args.rate * args.seconds), first=13000000000 + n * 10_000_000)
            finally:
                run.close()
            total = result["accepted"] + result["too_frequent"]
            result.update(
                workers=workers,
                share_of_R=result["sustained_per_s"] / args.rate,
                too_frequent_share=result["too_frequent"] / total if total else 0.0,
            )
            rows.append(result)
            print(
                f"  R={args.rate:g}/s  {workers} worker(s): {result['sustained_per_s']:.1f} req/s sustained = "
                f"{result['share_of_R']:.1%} of R; too frequent {result['too_frequent']} of {total} "
                f"({result['too_frequent_share']:.2%}); wall {result['wall_s']:.1f} s; "
                f"duplicates {result['duplicates']}",
                flush=True,
            )
    return rows


def unlimited(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    config = SimulatorConfig(report_delay=3600.0, deliver_ratio=1.0, latency_ms=args.latency_ms, seed=2)
    with start_simulator_process(config) as sim:
        mobiles = [str(15000000000 + i) for i in range(args.messages)]
        baseline_n = min(len(mobiles), args.baseline_messages)
        baseline = sequential_httpx(sim.base_url, mobiles[:baseline_n])
        print(f"  sequential httpx loop: {baseline:.1f} msg/s over {baseline_n} messages", flush=True)
        sim.reset()
        ceiling_n = min(len(mobiles), args.ceiling_messages)
        ceiling = ceilings(sim.base_url, [str(16000000000 + i) for i in range(ceiling_n)])
        print(
            f"  client-side ceiling, 64 in flight, {ceiling_n} messages each: "
            + ", ".join(f"{name} {rate:.0f} msg/s" for name, rate in ceiling.items()),
            flush=True,
        )
        sim.reset()
        run = Run(sim, args, work, rate_limit=1e6)  # "no limit": the limiter still runs, never binding
        try:
            run.start_workers(args.workers)
            result = run.send(args.messages, first=15000000000)
        finally:
            run.close()
        # The load of a shared machine moves within seconds: the ceiling again, after the dispatcher.
        sim.reset()
        again = ceilings(sim.base_url, [str(17000000000 + i) for i in range(ceiling_n)], httpx_too=False)
        print(f"  client-side ceiling again, after: aiohttp {again['aiohttp']:.0f} msg/s", flush=True)
    best = (max(ceiling.values()) + again["aiohttp"]) / 2
    result.update(
        ceilings=ceiling,
        ceiling_after=again,
        ceiling_mean=best,
        share_of_ceiling=result["sustained_per_s"] / best,
        baseline_per_s=baseline,
        baseline_messages=baseline_n,
        ratio=result["sustained_per_s"] / baseline,
        wall_ratio=(result["accepted"] / result["wall_s"]) / baseline if result["wall_s"] else 0.0,
        workers=args.workers,
        concurrency=args.concurrency,
        group=args.group,
    )
    print(
        f"  dispatcher, {args.workers} worker process(es) x -c {args.concurrency or 'default'}, {args.group} chunks per task: "
        f"{result['sustained_per_s']:.0f} msg/s sustained = {result['ratio']:.1f}x the loop, "
        f"{result['share_of_ceiling']:.0%} of the ceiling ({best:.0f}: mean of before and after) "
        f"(hand-off to last acceptance: {result['wall_ratio']:.1f}x); accepted {result['accepted']}/"
        f"{result['messages']}, duplicates {result['duplicates']}, unknown {result['unknown']}; "
        f"worker peak RSS {result['worker_peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return result


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(mem_kb / 1024 / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="R=50 for 5 s per worker count, 3,000 messages")
    parser.add_argument("--rate", type=float, default=100.0, help="the vendor's requests/s (part 1)")
    parser.add_argument("--seconds", type=float, default=15.0, help="campaign length at R (part 1)")
    parser.add_argument("--messages", type=int, default=5000, help="campaign size (part 2)")
    parser.add_argument("--baseline-messages", type=int, default=400, help="sequential loop size (part 2)")
    parser.add_argument("--ceiling-messages", type=int, default=5000, help="each ceiling client's size")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (part 2)")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="tasks per worker process (-c; default: as shipped)"
    )
    parser.add_argument("--group", type=int, default=tasks.GROUP, help="chunks per task")
    parser.add_argument("--only", choices=["limited", "unlimited"], default=None, help="run one part only")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file per run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        # 3,000 messages: with 64 per task, fewer would give the eight pool children two tasks each
        args.rate, args.seconds, args.messages, args.baseline_messages = 50.0, 5.0, 3000, 100
        args.ceiling_messages = 1000
    print(f"command: python {' '.join(sys.argv)}\nstore: {backend_name(args.database_url)}", flush=True)
    print(json.dumps(machine()), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as tmp:
        part1: list[dict[str, Any]] = []
        part2: dict[str, Any] = {}
        if args.only != "unlimited":
            print(
                f"1. rate-limited vendor (R = {args.rate:g} requests/s, account configured to R):", flush=True
            )
            part1 = rate_limited(args, Path(tmp))
        if args.only != "limited":
            print(
                f"2. no limit, {args.latency_ms:g} ms latency, webservice (one number per request):",
                flush=True,
            )
            part2 = unlimited(args, Path(tmp))
    if args.json:
        args.json.write_text(
            json.dumps({"rate_limited": part1, "unlimited": part2}, indent=2), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
