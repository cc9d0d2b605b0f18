"""Recording an outcome does not depend on Redis: the store is the truth, the limiter only paces."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.dispatch import AccountRuntime, Next, load_group, send_group
from dispatcher.ratelimit import AccountLimiter
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import Chunk
from dispatcher.vendors.registry import get as vendor_module
from dispatcher.vendors.transport import Transport
from tests.stack import REDIS_URL, Stack, write_contacts


class RedisGoneAfterAcquire(AccountLimiter):
    """A limiter whose Redis disappears once the token was granted (a Redis restart mid-send)."""

    def reward(self, count: int = 1) -> float:
        raise RedisConnectionError("Connection refused")

    def penalise(self) -> float:
        raise RedisConnectionError("Connection refused")


def runtime_for(stack: Stack, vendor: str, redis: Redis[Any]) -> AccountRuntime:
    account = stack.settings.account(stack.accounts[vendor])
    limiter = RedisGoneAfterAcquire(redis, account.name, 1000.0)
    return AccountRuntime(account, vendor_module(vendor), Transport([account.base_url]), limiter)


@pytest.mark.parametrize(
    ("sim_rate", "expected"),
    [(0.0, ("accepted", Next.DONE)), (1.0, ("queued", Next.LATER))],
    ids=["accepted-then-reward-fails", "too-frequent-then-penalise-fails"],
)
def test_given_redis_lost_after_the_send_when_settling_then_the_outcome_is_still_recorded(
    make_stack: Any, sim_rate: float, expected: tuple[str, Next]
) -> None:
    # Given a started campaign of two webservice messages; with sim_rate=1 the second is refused "-16"
    stack = make_stack(
        SimulatorConfig(report_delay=0.0, seed=1, deliver_ratio=1.0, rate_limit=sim_rate), worker=False
    )
    path = write_contacts(stack.tmp / "c.xlsx", [("13900000001", "张三"), ("13900000002", "李四")])
    created = campaigns.create(
        stack.sessions, stack.settings, path, "{姓名}您好【测试】", stack.accounts["webservice"], actor="t"
    )
    ids = campaigns.start(stack.sessions, created.campaign_id, "t")
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    runtime = runtime_for(stack, "webservice", redis)
    try:
        # When both are sent, one after the other, and Redis fails while the limiter adapts its rate
        results = [
            result
            for chunk_id in ids
            for result in send_group(stack.sessions, runtime, load_group(stack.sessions, [chunk_id]), "w1")
        ]
    finally:
        runtime.transport.close()
        redis.close()

    # Then the vendor's answer is in the store all the same: nothing is left "sending" to turn unknown
    assert results[0].state == "accepted"
    assert (results[1].state, results[1].next) == expected
    with stack.sessions() as session:
        states = Counter(session.execute(select(Chunk.state)).scalars())
    assert states == Counter(["accepted", expected[0]])
