"""Request counters every worker on every host adds to, in Redis, and ``GET /metrics`` reads.

A process's own registry (prometheus-client's default) would count one process: a scrape of the web
app would see none of the workers' requests. So each round of requests adds its counts to a few hashes
(one pipeline): requests by account, vendor, outcome and error class; their durations as histogram
buckets; the limiter's waits. Fields are JSON lists (an account name may hold any character). A wiped
Redis starts the counters again from zero, which Prometheus reads as a counter reset, as it should.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from dispatcher.keys import DEFAULT_KEYS, KeySpace

# Seconds: a gateway answers in tens of milliseconds when well, in seconds when not.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Request:
    outcome: str  # the chunk's state after the answer: accepted, failed, unknown, queued (again)
    error_class: str  # "" when none
    seconds: float


def _field(*parts: str) -> str:
    return json.dumps(parts, ensure_ascii=False)


def _parts(raw: bytes | str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


@dataclass
class Counts:
    requests: Counter[tuple[str, str, str, str]] = field(
        default_factory=Counter
    )  # acct, vendor, outcome, class
    buckets: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # acct, vendor, bucket index
    duration_sum: dict[tuple[str, str], float] = field(default_factory=dict)
    waits: Counter[str] = field(default_factory=Counter)
    wait_seconds: dict[str, float] = field(default_factory=dict)


class RequestCounters:
    def __init__(self, redis: Redis[Any], keys: KeySpace = DEFAULT_KEYS) -> None:
        self.redis, self.keys = redis, keys

    def add(self, account: str, vendor: str, requests: Iterable[Request]) -> None:
        requests = list(requests)
        if not requests:
            return
        pipe = self.redis.pipeline(transaction=False)
        by_kind = Counter((r.outcome, r.error_class) for r in requests)
        for (outcome, error_class), n in by_kind.items():
            pipe.hincrby(self.keys.metrics_key("requests"), _field(account, vendor, outcome, error_class), n)
        by_bucket = Counter(bisect.bisect_left(LATENCY_BUCKETS, r.seconds) for r in requests)
        for index, n in by_bucket.items():
            pipe.hincrby(self.keys.metrics_key("latency"), _field(account, vendor, str(index)), n)
        total = sum(r.seconds for r in requests)
        pipe.hincrbyfloat(self.keys.metrics_key("latency"), _field(account, vendor, "sum"), total)
        pipe.execute()

    def waited(self, account: str, waits: Sequence[float]) -> None:
        if not waits:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(self.keys.metrics_key("limiter"), _field(account, "count"), len(waits))
        pipe.hincrbyfloat(self.keys.metrics_key("limiter"), _field(account, "sum"), float(sum(waits)))
        pipe.execute()

    def read(self) -> Counts:
        counts = Counts()
        pipe = self.redis.pipeline(transaction=False)
        for name in ("requests", "latency", "limiter"):
            pipe.hgetall(self.keys.metrics_key(name))
        requests, latency, limiter = pipe.execute()
        for raw, value in requests.items():
            if len(parts := _parts(raw)) == 4:
                counts.requests[(parts[0], parts[1], parts[2], parts[3])] += int(value)
        for raw, value in latency.items():
            parts = _parts(raw)
            if len(parts) == 3 and parts[2] == "sum":
                key = (parts[0], parts[1])
                counts.duration_sum[key] = counts.duration_sum.get(key, 0.0) + float(value)
            elif len(parts) == 3 and parts[2].isdigit():
                counts.buckets[(parts[0], parts[1], int(parts[2]))] += int(value)
        for raw, value in limiter.items():
            parts = _parts(raw)
            if len(parts) == 2 and parts[1] == "count":
                counts.waits[parts[0]] += int(value)
            elif len(parts) == 2 and parts[1] == "sum":
                counts.wait_seconds[parts[0]] = counts.wait_seconds.get(parts[0], 0.0) + float(value)
        return counts
