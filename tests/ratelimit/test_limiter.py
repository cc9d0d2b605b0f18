"""The limiters (Redis, and the in-process stand-in) and BalanceGate, in one process."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from dispatcher.keys import KeySpace
from dispatcher.ratelimit import AccountLimiter, BalanceGate, LimiterPolicy, LocalLimiter, LocalRates
from tests.ratelimit.conftest import REDIS_URL, delete_prefix
from tests.ratelimit.timeline import max_in_window

Limiter = AccountLimiter | LocalLimiter
MakeLimiter = Callable[..., Limiter]


@pytest.fixture(params=["redis", "local"])
def make_limiter(request: pytest.FixtureRequest, keys: KeySpace) -> Iterator[MakeLimiter]:
    """Builds limiters of one account as separate workers would: a Redis client each, or threads
    of one process sharing a LocalRates."""
    clients: list[redis.Redis[Any]] = []
    rates = LocalRates()

    def make(ceiling: float, policy: LimiterPolicy = LimiterPolicy()) -> Limiter:
        if request.param == "local":
            return LocalLimiter(rates, "acc", ceiling, policy=policy)
        client: redis.Redis[Any] = redis.Redis.from_url(REDIS_URL)
        clients.append(client)
        return AccountLimiter(client, "acc", ceiling, policy=policy, keys=keys)

    yield make
    for client in clients:
        client.close()


def test_given_rate_50_when_acquiring_50_then_it_takes_about_one_second(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(50)
    start = time.monotonic()
    for _ in range(51):
        assert limiter.acquire()
    elapsed = time.monotonic() - start
    # 50 intervals of 1 / (50 * (1 - margin)) s: 1.03 s; not faster, and not much slower.
    assert 1.0 <= elapsed < 1.25


def test_given_a_burst_when_acquiring_then_burst_plus_one_pass_at_once_and_the_rest_are_spaced(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(10, LimiterPolicy(burst=3))
    granted = [limiter.try_acquire() for _ in range(4)]
    assert granted == [0.0, 0.0, 0.0, 0.0]
    wait = limiter.try_acquire()
    # The next slot is one interval (1 / 9.7 s) away, and a refused try reserves nothing.
    assert 0.08 < wait <= 1 / 9.7 + 0.01
    assert 0.0 < limiter.try_acquire() <= wait


def test_given_burst_above_one_second_worth_then_it_is_capped_at_the_rate(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(5, LimiterPolicy(burst=100))
    granted = 0
    while limiter.try_acquire() == 0.0:
        granted += 1
    assert granted == 6  # burst capped to 5, plus the request the spacing allows


def test_given_no_slot_within_timeout_when_acquire_then_false_without_sleeping_the_timeout(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(1)
    assert limiter.acquire(timeout=0)
    start = time.monotonic()
    assert limiter.acquire(timeout=0.3) is False
    assert time.monotonic() - start < 0.1
    # And the refusal did not take the slot: the next one is still ~1 s after the first.
    assert 0.9 < limiter.try_acquire() <= 1.04


def test_given_no_slot_within_max_wait_when_reserve_many_then_it_says_when_without_sleeping(
    make_limiter: MakeLimiter,
) -> None:
    # Given an account at 2 requests/s whose first slot was just taken
    limiter = make_limiter(2)
    assert limiter.reserve_many(1, 0.1) == ([0.0], 0.0)
    # When the next slot (~0.5 s away) is asked for within 0.1 s
    start = time.monotonic()
    waits, wait = limiter.reserve_many(1, 0.1)
    # Then nothing is reserved, at once, and it says when the next slot comes; within that, it is given
    assert time.monotonic() - start < 0.05
    assert waits == [] and 0.45 < wait <= 1 / (2 * 0.97) + 0.01
    given, _ = limiter.reserve_many(1, wait + 0.01)
    assert len(given) == 1 and abs(given[0] - wait) < 0.05


def test_given_another_worker_penalises_then_this_worker_pauses_and_slows_down(
    make_limiter: MakeLimiter,
) -> None:
    policy = LimiterPolicy(pause_s=0.3)
    mine, theirs = make_limiter(40, policy), make_limiter(40, policy)
    assert mine.acquire()
    # When another worker gets "too frequent"...
    assert theirs.penalise() == pytest.approx(20.0)
    # ...this worker sees the halved rate, and sends nothing during the pause.
    assert mine.current_rate() == pytest.approx(20.0)
    # (what is left of the pause: its 0.3 s less the time since the penalty, longer on a loaded machine)
    assert 0.15 < mine.try_acquire() <= 0.3
    start = time.monotonic()
    stamps = []
    for _ in range(6):
        assert mine.acquire()
        stamps.append(time.monotonic() - start)
    assert stamps[0] >= 0.25  # the pause's rest: 0.3 s less what a loaded machine took meanwhile
    # Spaced at the new rate: 1 / (20 * 0.97) = 51.5 ms, never closer; a loaded machine wakes the client late,
    # so the upper bound only tells the halved rate (51.5 ms) from a quartered one (103 ms).
    assert 0.050 < (stamps[-1] - stamps[0]) / 5 < 0.08


def test_given_penalties_for_one_overload_then_the_rate_is_halved_once(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(100, LimiterPolicy(pause_s=0.5))
    assert [limiter.penalise() for _ in range(3)] == [50.0, 50.0, 50.0]


def test_given_repeated_overloads_then_the_rate_never_drops_below_the_floor(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(100, LimiterPolicy(pause_s=0, floor_fraction=0.1))
    rates = [limiter.penalise() for _ in range(10)]
    assert rates[:3] == [50.0, 25.0, 12.5]
    assert rates[-1] == pytest.approx(10.0)


def test_given_a_penalty_when_rewarded_then_the_rate_climbs_back_to_the_ceiling_and_no_further(
    make_limiter: MakeLimiter,
) -> None:
    policy = LimiterPolicy(pause_s=0.2, recovery_s=1.0)
    limiter, observer = make_limiter(100, policy), make_limiter(100, policy)
    limiter.penalise()
    # Successes answered during the pause were sent before the overload: they do not count.
    assert limiter.reward() == pytest.approx(50.0)
    time.sleep(0.21)
    rates = [limiter.reward() for _ in range(60)]
    assert rates[0] == pytest.approx(52.0)  # + ceiling / (rate * recovery_s)
    assert all(a < b for a, b in itertools.pairwise(rates[:6]))  # additive climb
    assert max(rates) == 100.0
    assert rates[-1] == 100.0
    assert observer.current_rate() == 100.0


def test_given_a_lowered_ceiling_then_the_stored_rate_is_capped_by_it(make_limiter: MakeLimiter) -> None:
    make_limiter(100).acquire()
    assert make_limiter(30).current_rate() == 30.0


def test_given_redis_keys_wiped_mid_run_then_the_limiter_recovers_and_keeps_limiting(
    redis_client: redis.Redis[Any], keys: KeySpace
) -> None:
    limiter = AccountLimiter(redis_client, "acc", 50, policy=LimiterPolicy(pause_s=5), keys=keys)
    limiter.penalise()  # state worth losing: rate 25, a 5 s pause
    delete_prefix(redis_client, keys.prefix)  # what FLUSHDB does to our keys
    stamps: list[float] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                if limiter.acquire(timeout=end - time.monotonic()):
                    stamps.append(time.monotonic())
        except BaseException as exc:  # the test asserts there is none
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.7)
    delete_prefix(redis_client, keys.prefix)  # and again while workers are acquiring
    thread.join()
    assert errors == []
    assert redis_client.exists(keys.rate_key("acc"))
    # Starts afresh at the ceiling, and still limits: at most one reserved slot survives a wipe.
    assert max_in_window(stamps) <= 50 + 1
    assert len(stamps) >= 0.9 * 50 * 1.5


def test_given_two_workers_when_querying_balance_then_one_query_per_interval(
    redis_client: redis.Redis[Any], keys: KeySpace
) -> None:
    other_client: redis.Redis[Any] = redis.Redis.from_url(REDIS_URL)
    try:
        mine = BalanceGate(redis_client, "acc", 0.2, slack_s=0.05, keys=keys)
        theirs = BalanceGate(other_client, "acc", 0.2, slack_s=0.05, keys=keys)
        assert [mine.may_query(), theirs.may_query(), mine.may_query()] == [True, False, False]
        mine.remember("1234.5")
        assert theirs.last() == "1234.5"
        time.sleep(0.2)
        assert theirs.may_query() is False  # the slack is part of the interval
        time.sleep(0.06)
        assert [theirs.may_query(), mine.may_query()] == [True, False]
    finally:
        other_client.close()


def test_given_a_fresh_account_then_no_balance_is_remembered(
    redis_client: redis.Redis[Any], keys: KeySpace
) -> None:
    assert BalanceGate(redis_client, "acc", 5, keys=keys).last() is None


@pytest.mark.parametrize(
    "bad",
    [{"burst": -1}, {"margin": 1.0}, {"decrease_factor": 1.0}, {"floor_fraction": 0}, {"recovery_s": 0}],
)
def test_given_a_nonsense_policy_then_it_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        LimiterPolicy(**bad)


def test_given_an_account_idle_past_its_ttl_then_it_starts_again_at_the_ceiling(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(100, LimiterPolicy(pause_s=0.05, idle_ttl_s=0.2))
    assert limiter.penalise() == 50.0
    time.sleep(0.1)
    assert limiter.current_rate() == 50.0  # reading does not keep it alive, and it is not expired yet
    time.sleep(0.15)
    assert limiter.current_rate() == 100.0


def test_given_threads_sharing_local_rates_then_no_1s_window_exceeds_the_rate() -> None:
    rates = LocalRates()
    stamps: list[float] = []
    end = time.monotonic() + 1.2

    def worker() -> None:
        limiter = LocalLimiter(rates, "acc", 100)
        while (left := end - time.monotonic()) > 0:
            if limiter.acquire(timeout=left):
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max_in_window(stamps) <= 100
    assert len(stamps) >= 0.9 * 100 * 1.2
