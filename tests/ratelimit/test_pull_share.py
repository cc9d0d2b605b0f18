"""Pulls are work-conserving: on an idle account they take its whole rate; while it sends, the sends keep
priority and the pulls keep their share (``PULL_SHARE``), never more than the account's rate together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from dispatcher.keys import KeySpace
from dispatcher.ratelimit import (
    PULL_SHARE,
    AccountLimiter,
    LimiterPolicy,
    LocalLimiter,
    LocalRates,
    PullLimiter,
)
from tests.ratelimit.conftest import REDIS_URL

RATE = 20.0
MakePull = Callable[[], tuple[PullLimiter, Any]]


@pytest.fixture(params=["redis", "local"])
def make_pull(request: pytest.FixtureRequest, keys: KeySpace) -> Iterator[MakePull]:
    """(a pull limiter, the account's limiter as a sender holds it): two workers of one account."""
    clients: list[redis.Redis[Any]] = []
    rates = LocalRates()

    def limiter(name: str, ceiling: float) -> Any:
        if request.param == "local":
            return LocalLimiter(rates, name, ceiling, policy=LimiterPolicy(burst=1))
        client: redis.Redis[Any] = redis.Redis.from_url(REDIS_URL)
        clients.append(client)
        return AccountLimiter(client, name, ceiling, policy=LimiterPolicy(burst=1), keys=keys)

    def make() -> tuple[PullLimiter, Any]:
        puller = PullLimiter(limiter("acc", RATE), limiter("acc:pulls", RATE * PULL_SHARE))
        return puller, limiter("acc", RATE)

    yield make
    for client in clients:
        client.close()


def test_given_an_idle_account_when_pulling_then_the_pulls_take_its_whole_rate(make_pull: MakePull) -> None:
    # Given an account that sends nothing
    puller, _ = make_pull()
    # When 20 pulls go one after another
    started = time.monotonic()
    for _ in range(21):
        assert puller.acquire(timeout=30)
    took = time.monotonic() - started
    # Then they went at the account's rate (about 1 s), not at their share of it (4 s)
    assert took < 20 / (RATE * PULL_SHARE) / 2
    assert took >= 20 / RATE * 0.95  # and never faster than the account's rate


def test_given_an_account_sending_flat_out_when_pulling_then_sends_keep_most_and_pulls_their_share(
    make_pull: MakePull,
) -> None:
    # Given a sender that takes every slot it can for 3 s
    puller, sender = make_pull()
    stop = time.monotonic() + 3.0
    sent = pulled = 0

    def send() -> None:
        nonlocal sent
        while time.monotonic() < stop:
            if sender.acquire(timeout=1):
                sent += 1

    thread = threading.Thread(target=send)
    thread.start()
    # When a drain pulls beside it
    while time.monotonic() < stop:
        if puller.acquire(timeout=1):
            pulled += 1
    thread.join()
    # Then together they kept to the account's rate, and the pulls to about their share
    assert sent + pulled <= 3.0 * RATE + 3
    assert pulled <= 3.0 * RATE * PULL_SHARE + 3
    assert sent >= 3.0 * RATE * (1 - PULL_SHARE) - 5
