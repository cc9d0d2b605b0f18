"""Several OS processes, each with its own Redis client, share one account's limiter."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
import redis

from dispatcher.keys import KeySpace
from dispatcher.ratelimit import AccountLimiter, LimiterPolicy
from tests.ratelimit.conftest import REDIS_URL
from tests.ratelimit.timeline import max_in_window

RATE = 100
DURATION = 2.0
PROCESSES = 3


def acquire_for(prefix: str, burst: int, ready: Barrier, out: Any) -> None:
    """One worker process: once all are ready, acquire slots for DURATION s; report grant times."""
    client: redis.Redis[Any] = redis.Redis.from_url(REDIS_URL)
    limiter = AccountLimiter(client, "acc", RATE, policy=LimiterPolicy(burst=burst), keys=KeySpace(prefix))
    client.ping()
    stamps: list[float] = []
    # Spawned interpreters take a varying time to import: start together, however long that took.
    ready.wait(timeout=60)
    end = time.time() + DURATION
    while (left := end - time.time()) > 0:
        if limiter.acquire(timeout=left):
            stamps.append(time.time())
    client.close()
    out.put(stamps)


@pytest.mark.parametrize("burst", [0, 5])
def test_given_three_processes_at_100_per_s_then_no_1s_window_exceeds_r_plus_burst(
    keys: KeySpace, burst: int
) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(PROCESSES)
    out = ctx.Queue()
    workers = [
        ctx.Process(target=acquire_for, args=(keys.prefix, burst, ready, out)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    stamps = [t for worker in results for t in worker]
    assert all(worker for worker in results), "every process got slots"
    assert max_in_window(stamps) <= RATE + burst
    assert len(stamps) >= 0.9 * RATE * DURATION
