"""How fast an idle account's delivery reports are pulled: the drain after a large campaign is sent.

The simulator (in this process, over loopback HTTP) holds ``--reports`` yunxin reports, all due; the
account is configured to ``--rate`` requests/s (the default account's 10). Each round drains them with
``pull_account`` as the results beat does, once with the pull limiter as it was (pulls held to their
quarter of the account's rate, ``PULL_SHARE``, whether or not the account sends) and once as it is now
(work-conserving: a slot the sends leave idle is the pull's), in turns, on one store and one Redis.
A third drain without any limiter is the floor (what the pulls and the store cost here). Printed: records
pulled per second and the ratio now / before. Nothing is reconciled here (that is
``bench/reconcile.py``): the bodies are stored as the drain stores them.

    python bench/pulls.py [--quick] [--reports N] [--rate R] [--rounds K]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from redis import Redis

from dispatcher.config import Settings
from dispatcher.keys import DEFAULT_KEYS
from dispatcher.ratelimit import PullLimiter
from dispatcher.results.pull import pull_account
from dispatcher.runtime import Runtime
from dispatcher.simulator import SimulatorConfig, run_simulator
from dispatcher.simulator.state import SimState
from dispatcher.store import upgrade

REDIS_URL = "redis://127.0.0.1:6379/0"


class ShareOnly(PullLimiter):
    """The limiter before: every pull waits for a token of its share, idle account or not."""

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        if not self.own.acquire(timeout=timeout):
            return False
        return self.account.acquire(timeout=max(0.0, deadline - time.monotonic()))


def queue_reports(count: int) -> object:
    def queue(state: SimState) -> None:
        acct = state.lookup("yunxin", "demo")
        assert acct is not None
        now = time.time()
        for start in range(0, count, 1000):
            batch = [(f"139{i:08d}", "您好【测试】") for i in range(start, min(start + 1000, count))]
            state.accept(acct, batch, now - 1, batch_id=state.new_batch_id("yunxin", now))

    return queue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 reports, 2 rounds (under a minute)")
    parser.add_argument("--reports", type=int, default=None, help="reports per drain (default 100,000)")
    parser.add_argument("--rate", type=float, default=10.0, help="the account's rate_limit, requests/s")
    parser.add_argument("--rounds", type=int, default=None, help="drains of each limiter (default 3)")
    args = parser.parse_args()
    reports = args.reports or (10_000 if args.quick else 100_000)
    rounds = args.rounds or (2 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="pulls-bench-"))
    url = f"sqlite:///{work / 'store.sqlite3'}"
    upgrade(url)
    with run_simulator(SimulatorConfig(report_delay=0.0, seed=1, deliver_ratio=0.9)) as sim:
        name = f"yx-{uuid.uuid4().hex[:8]}"  # its own limiter keys in the shared Redis
        config = work / "dispatcher.toml"
        config.write_text(
            f'[accounts."{name}"]\nvendor = "yunxin"\nbase_url = "{sim.base_url}"\nuser = "demo"\n'
            f'password = "demo"\nchannel = "37"\nrate_limit = {args.rate}\n',
            encoding="utf-8",
        )
        env = {
            "DISPATCHER_CONFIG": str(config),
            "DISPATCHER_DATABASE_URL": url,
            "DISPATCHER_REDIS_URL": REDIS_URL,
        }
        settings = Settings.load(env)
        account = settings.account(name)
        runtime = Runtime.from_settings(settings)
        try:
            now = runtime.pull_limiter(name)
            assert now is not None
            before = ShareOnly(now.account, now.own)
            took: dict[str, list[float]] = {
                "before (share only)": [],
                "now (work-conserving)": [],
                "no limiter (floor)": [],
            }
            for _ in range(rounds):
                for label, limiter in zip(took, (before, now, None), strict=True):
                    sim.call(queue_reports(reports))
                    runtime.pull_limiters[name] = limiter
                    time.sleep(1.0)  # the account idle: its limiters full again
                    started = time.perf_counter()
                    pulled = pull_account(runtime, account, ["reports"])
                    took[label].append(time.perf_counter() - started)
                    expected = -(-reports // 500)
                    if pulled.bodies.get("reports") != expected or pulled.failures:
                        raise SystemExit(f"{label}: {pulled}")
        finally:
            runtime.close()
            redis: Redis = Redis.from_url(REDIS_URL)
            redis.delete(
                DEFAULT_KEYS.rate_key(name), DEFAULT_KEYS.rate_key(DEFAULT_KEYS.pull_rate_account(name))
            )
            redis.close()
    print(
        f"{reports:,} due reports (500 a pull), account at {args.rate:g} requests/s, {rounds} rounds, median:"
    )
    medians = {label: statistics.median(found) for label, found in took.items()}
    for label, seconds in medians.items():
        print(f"  {label:<22} {seconds:7.2f} s  {reports / seconds:9,.0f} reports/s")
    first, last, floor = medians.values()
    print(
        f"  now / before: {first / last:.2f}× the records per second; now at {floor / last:.0%} of the floor"
    )


if __name__ == "__main__":
    main()
