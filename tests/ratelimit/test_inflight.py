"""An account's in-flight leases (``max_in_flight``): shared through Redis, never leaked by a dead holder."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from dispatcher.keys import KeySpace
from dispatcher.ratelimit import AccountInFlight, InFlight, LocalInFlight


def backends(client: redis.Redis[Any], keys: KeySpace, lease_s: float) -> list[tuple[InFlight, InFlight]]:
    """Two holders of one account's leases (two processes' worth), per backend."""
    local = LocalInFlight("acc", 1, lease_s)
    return [
        (
            AccountInFlight(client, "acc", 1, lease_s, keys=keys),
            AccountInFlight(client, "acc", 1, lease_s, keys=keys),
        ),
        (local, local),
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["redis", "memory"])
def test_given_max_in_flight_1_when_one_holds_the_lease_then_the_other_waits_and_gets_it_once_released(
    redis_client: redis.Redis[Any], keys: KeySpace, which: int
) -> None:
    first, second = backends(redis_client, keys, 30.0)[which]
    held = first.acquire(3, timeout=0.0)
    assert len(held) == 1  # one at a time, whatever is asked
    assert second.acquire(1, timeout=0.1) == []
    first.release(held)
    assert len(second.acquire(1, timeout=0.0)) == 1


@pytest.mark.parametrize("which", [0, 1], ids=["redis", "memory"])
def test_given_a_holder_that_dies_when_its_lease_expires_then_the_account_sends_again(
    redis_client: redis.Redis[Any], keys: KeySpace, which: int
) -> None:
    first, second = backends(redis_client, keys, 0.3)[which]
    assert first.acquire(1, timeout=0.0)  # ... and never released: its worker was killed
    started = time.monotonic()
    assert len(second.acquire(1, timeout=5.0)) == 1
    assert 0.1 < time.monotonic() - started < 2.0
