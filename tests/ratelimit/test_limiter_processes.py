"""Several OS processes, each with its own Redis client, share one account's limiter."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest
import redis

from dispatcher.keys import KeySpace
from dispatcher.ratelimit import AccountLimiter, LimiterPolicy
from tests.ratelimit.conftest import REDIS_URL
from tests.ratelimit.timeline import max_in_window

RATE = 100
DURATION = 2.0


def acquire_until(prefix: str, burst: int, start: float, end: float) -> list[float]:
    """One worker process: acquire slots from ``start`` to ``end`` (wall clock), return grant times."""
    client: redis.Redis[Any] = redis.Redis.from_url(REDIS_URL)
    limiter = AccountLimiter(client, "acc", RATE, policy=LimiterPolicy(burst=burst), keys=KeySpace(prefix))
    stamps: list[float] = []
    time.sleep(max(0.0, start - time.time()))
    while (left := end - time.time()) > 0:
        if limiter.acquire(timeout=left):
            stamps.append(time.time())
    client.close()
    return stamps


@pytest.mark.parametrize("burst", [0, 5])
def test_given_three_processes_at_100_per_s_then_no_1s_window_exceeds_r_plus_burst(
    keys: KeySpace, burst: int
) -> None:
    # Spawned interpreters need a moment to import: all start acquiring at the same instant.
    start = time.time() + 1.5
    end = start + DURATION
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.starmap(acquire_until, [(keys.prefix, burst, start, end)] * 3)
    stamps = [t for worker in results for t in worker]
    assert all(worker for worker in results), "every process got slots"
    assert max_in_window(stamps) <= RATE + burst
    assert len(stamps) >= 0.9 * RATE * DURATION
