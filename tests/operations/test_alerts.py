"""docs/alerts.yml and docs/grafana-dashboard.json: they parse, and every metric they name is one that
``GET /metrics`` exports (read from an empty store: every family is declared even without samples)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis import Redis

from dispatcher.config import Settings
from dispatcher.keys import KeySpace
from dispatcher.operations.counters import Request, RequestCounters
from dispatcher.operations.metrics import NAMES, Sources, exposition
from dispatcher.store import make_engine, session_factory, upgrade
from tests.stack import REDIS_URL

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC = re.compile(r"\bdispatcher_[a-z_]+\b")
SUFFIXES = {"counter": ("",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], str]:
    """The sample names the exposition declares, and its text (an empty store; one request counted)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'store.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    keys = KeySpace(f"test-metrics-{uuid.uuid4().hex[:12]}:")
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    try:
        counters = RequestCounters(redis, keys)
        counters.add("acc", "yunxin", [Request("accepted", "", 0.03), Request("queued", "rate_limited", 0.2)])
        counters.waited("acc", [0.1, 0.0])
        settings = Settings(database_url=url, broker_url="memory://", redis_url=REDIS_URL)
        text = exposition(Sources(settings, session_factory(engine), redis, "q", None, keys)).decode()
    finally:
        redis.delete(*(keys.metrics_key(n) for n in ("requests", "latency", "limiter")))
        redis.close()
        engine.dispose()
    names = set()
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names |= {family + suffix for suffix in SUFFIXES[kind]}
    return names, text


def test_given_the_exposition_then_it_declares_every_listed_metric_and_counts_requests(
    exported: tuple[set[str], str],
) -> None:
    names, text = exported
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))  # counters declared with their _total
    assert set(NAMES) == families
    assert all(name.startswith("dispatcher_") for name in names)
    assert (
        'dispatcher_requests_total{account="acc",error_class="rate_limited",outcome="queued",vendor="yunxin"} 1.0'
        in text
    )
    assert 'dispatcher_rate_limited_total{account="acc",vendor="yunxin"} 1.0' in text
    assert 'dispatcher_request_duration_seconds_bucket{account="acc",le="0.05",vendor="yunxin"} 1.0' in text
    assert 'dispatcher_request_duration_seconds_count{account="acc",vendor="yunxin"} 2.0' in text
    assert 'dispatcher_limiter_waits_total{account="acc"} 2.0' in text


def test_given_the_alert_rules_then_they_parse_and_name_only_exported_metrics(
    exported: tuple[set[str], str],
) -> None:
    rules = yaml.safe_load((DOCS / "alerts.yml").read_text(encoding="utf-8"))
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "DispatcherNoWorker", "DispatcherNoBeat", "DispatcherQueueStuck", "DispatcherAccountErrors",
        "DispatcherDeliveryRateLow", "DispatcherUnknownRising",
    }  # fmt: skip
    for alert in alerts:
        expr = str(alert["expr"])
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), alert["alert"]
        named = set(METRIC.findall(expr))
        assert named and named <= exported[0], (alert["alert"], named - exported[0])
        assert alert["annotations"]["summary"]


def test_given_the_dashboard_then_it_parses_and_names_only_exported_metrics(
    exported: tuple[set[str], str],
) -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = {m for e in exprs for m in METRIC.findall(e)}
    assert len(exprs) >= 10 and named <= exported[0], named - exported[0]


def test_given_a_store_that_does_not_answer_then_the_scrape_still_answers_and_says_so(tmp_path: Path) -> None:
    # A store outage must not silence every alert: /metrics answered 500 and every series vanished
    url = f"sqlite:///{tmp_path / 'gone' / 'store.sqlite3'}"  # a directory that does not exist
    engine = make_engine(url)
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    try:
        settings = Settings(database_url=url, broker_url="memory://", redis_url=REDIS_URL)
        sources = Sources(settings, session_factory(engine), redis, "q", None, KeySpace("test-gone:"))
        text = exposition(sources).decode()
    finally:
        redis.close()
        engine.dispose()
    assert "dispatcher_store_up 0.0" in text
    assert "# TYPE dispatcher_workers_alive gauge" in text  # the heartbeats still speak


def test_given_beats_and_workers_of_other_queues_stores_or_brokers_then_the_metrics_do_not_count_them(
    tmp_path: Path,
) -> None:
    from dispatcher.operations import heartbeat
    from dispatcher.operations.fingerprint import Fingerprints

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    keys = KeySpace(f"test-metrics-{uuid.uuid4().hex[:12]}:")
    redis: Redis[Any] = Redis.from_url(REDIS_URL)
    settings = Settings(database_url=url, broker_url=REDIS_URL, redis_url=REDIS_URL)
    mine = Fingerprints.of(settings)

    def write(kind: str, queues: tuple[str, ...], **prints: str) -> None:
        parts = {"store": mine.store, "broker": mine.broker, "limiter": mine.limiter, **prints}
        record = heartbeat.Heartbeat(kind, uuid.uuid4().hex, "h", 1, "0", queues, every=5.0, **parts)
        heartbeat.write(redis, record, keys)

    def alive() -> tuple[str, str]:
        text = exposition(Sources(settings, session_factory(engine), redis, "q", None, keys)).decode()
        found = re.search(r"^dispatcher_beat_alive (\S+)$", text, re.M)
        workers = re.search(r"^dispatcher_workers_alive (\S+)$", text, re.M)
        assert found and workers, text
        return workers.group(1), found.group(1)

    try:
        write("beat", ("other.beat",))  # another deployment's queue
        write("beat", ("q.beat",), store="fedcba987654")  # another store
        write("beat", ("q.beat",), broker="0123456789ab")  # another broker
        write("worker", ("other", "other.beat"))
        write("worker", ("q", "q.beat"), store="fedcba987654")
        assert alive() == ("0.0", "0.0")
        write("beat", ("q.beat",))
        write("worker", ("q", "q.beat"))
        assert alive() == ("1.0", "1.0")
    finally:
        redis.delete(keys.heartbeats_key())
        redis.close()
        engine.dispose()
