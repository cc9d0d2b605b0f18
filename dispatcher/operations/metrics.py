"""``GET /metrics``: Prometheus exposition, read at scrape time from what every process shares.

No process keeps a registry of its own that another could not see: request counters are Redis hashes
every worker adds to (:mod:`dispatcher.operations.counters`); figures of campaigns, recipients and
chunks are read from the store, only for open campaigns (scheduled, running, paused, sent) through the
``(campaign_id, state)`` indexes, plus the ``unknown`` chunks through the state index; liveness comes from
the heartbeats. A fresh registry is built for each scrape. Every name starts with ``dispatcher_``.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import case, func, select, type_coerce
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.config import Settings
from dispatcher.keys import DEFAULT_KEYS, KeySpace
from dispatcher.operations import heartbeat
from dispatcher.operations.counters import LATENCY_BUCKETS, Counts, RequestCounters
from dispatcher.operations.fingerprint import fingerprint, store_fingerprint
from dispatcher.store import Campaign, CampaignState, Chunk, ChunkState, Recipient, RecipientState, ReportRow
from dispatcher.store.types import UTCDateTime

OPEN = (CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.PAUSED, CampaignState.SENT)
REPORT_BUCKETS = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0, 72 * 3600.0)
logger = logging.getLogger(__name__)
RECENT_REPORTS = 10_000  # the report latency histogram covers the latest matched reports
FINAL_REPORT = (RecipientState.DELIVERED, RecipientState.UNDELIVERED, RecipientState.EXPIRED)

# Every metric this module exports, for the alert rules' test and the dashboard.
NAMES = (
    "dispatcher_requests_total",
    "dispatcher_rate_limited_total",
    "dispatcher_request_duration_seconds",
    "dispatcher_limiter_wait_seconds_total",
    "dispatcher_limiter_waits_total",
    "dispatcher_requests_in_flight",
    "dispatcher_recipients",
    "dispatcher_chunks",
    "dispatcher_unknown_chunks",
    "dispatcher_queue_depth",
    "dispatcher_queue_oldest_age_seconds",
    "dispatcher_broker_queue_length",
    "dispatcher_report_latency_seconds",
    "dispatcher_delivery_rate",
    "dispatcher_workers_alive",
    "dispatcher_beat_alive",
    "dispatcher_heartbeats_readable",
    "dispatcher_store_up",
)


@dataclass
class Sources:
    settings: Settings
    sessions: sessionmaker[Session]
    redis: Redis[Any] | None  # the limiter's Redis: counters and heartbeats
    queue: str  # the send queue
    broker: Redis[Any] | None = None  # a Redis broker, for the queue's length
    keys: KeySpace = DEFAULT_KEYS


def _histogram(buckets: tuple[float, ...], counts: list[int], total: float) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs from per-bucket counts (the last one: above every bound)."""
    out, running = [], 0
    for bound, n in zip((*buckets, float("inf")), counts, strict=True):
        running += n
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
    return out


class StoreCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        yield from self._requests()
        up = GaugeMetricFamily("dispatcher_store_up", "1 when the store answered this scrape")
        try:
            with self.sources.sessions() as session:
                figures = list(self._store(session))
        except SQLAlchemyError as exc:
            # The store's figures are missing, not the scrape: the heartbeats and counters still say
            # what they know, and this says why the rest is gone (an alert rule watches it).
            logger.warning("metrics: the store did not answer: %s", type(exc).__name__)
            figures = []
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
        yield up
        yield from figures
        yield from self._liveness()
        yield from self._broker()

    # ---- Redis counters --------------------------------------------------------------------------

    def _counts(self) -> Counts:
        if self.sources.redis is None:
            return Counts()
        try:
            return RequestCounters(self.sources.redis, self.sources.keys).read()
        except RedisError:
            return Counts()

    def _requests(self) -> Iterator[Metric]:
        counts = self._counts()
        labels = ["account", "vendor", "outcome", "error_class"]
        requests = CounterMetricFamily(
            "dispatcher_requests", "Requests sent to the gateways, by answer (all workers)", labels=labels
        )
        limited = CounterMetricFamily(
            "dispatcher_rate_limited", '"Too frequent" answers of the gateways', labels=["account", "vendor"]
        )
        too_frequent: dict[tuple[str, str], int] = {}
        for (account, vendor, outcome, error_class), n in sorted(counts.requests.items()):
            requests.add_metric([account, vendor, outcome, error_class], n)
            if error_class == "rate_limited":
                too_frequent[(account, vendor)] = too_frequent.get((account, vendor), 0) + n
        for (account, vendor), n in sorted(too_frequent.items()):
            limited.add_metric([account, vendor], n)
        yield requests
        yield limited
        duration = HistogramMetricFamily(
            "dispatcher_request_duration_seconds", "Time from sending a request to its answer",
            labels=["account", "vendor"],
        )  # fmt: skip
        for key, total in sorted(counts.duration_sum.items()):
            per_bucket = [counts.buckets.get((*key, i), 0) for i in range(len(LATENCY_BUCKETS) + 1)]
            duration.add_metric(list(key), _histogram(LATENCY_BUCKETS, per_bucket, total), total)
        yield duration
        wait = CounterMetricFamily(
            "dispatcher_limiter_wait_seconds",
            "Seconds requests waited for the account limiter",
            labels=["account"],
        )
        waits = CounterMetricFamily(
            "dispatcher_limiter_waits", "Requests given a limiter slot", labels=["account"]
        )
        for account in sorted(counts.waits):
            waits.add_metric([account], counts.waits[account])
            wait.add_metric([account], counts.wait_seconds.get(account, 0.0))
        yield wait
        yield waits

    # ---- the store -------------------------------------------------------------------------------

    def _store(self, session: Session) -> Iterator[Metric]:
        open_campaigns = dict(
            session.execute(select(Campaign.id, Campaign.account).where(Campaign.state.in_(OPEN)))
            .tuples()
            .all()
        )
        running = {
            cid
            for (cid,) in session.execute(select(Campaign.id).where(Campaign.state == CampaignState.RUNNING))
        }
        ids = list(open_campaigns)
        recipients: dict[tuple[str, str], int] = {}
        chunks: dict[tuple[str, str], int] = {}
        queued_running = 0
        if ids:
            for cid, state, n in session.execute(
                select(Recipient.campaign_id, Recipient.state, func.count())
                .where(Recipient.campaign_id.in_(ids))
                .group_by(Recipient.campaign_id, Recipient.state)
            ).tuples():
                key = (open_campaigns[cid], str(state))
                recipients[key] = recipients.get(key, 0) + int(n)
            for cid, state, n in session.execute(
                select(Chunk.campaign_id, Chunk.state, func.count())
                .where(Chunk.campaign_id.in_(ids))
                .group_by(Chunk.campaign_id, Chunk.state)
            ).tuples():
                key = (open_campaigns[cid], str(state))
                chunks[key] = chunks.get(key, 0) + int(n)
                if cid in running and state == ChunkState.QUEUED:
                    queued_running += int(n)
        yield _gauge(
            "dispatcher_recipients", "Recipients of open campaigns by state", ["account", "state"], recipients
        )
        yield _gauge(
            "dispatcher_chunks", "Requests (chunks) of open campaigns by state", ["account", "state"], chunks
        )
        in_flight: dict[tuple[str, ...], int] = {
            (a,): n for (a, s), n in chunks.items() if s == ChunkState.SENDING
        }
        yield _gauge(
            "dispatcher_requests_in_flight", "Requests claimed and not yet answered", ["account"], in_flight
        )
        rate = GaugeMetricFamily(
            "dispatcher_delivery_rate",
            "Delivered share of reported recipients of open campaigns",
            labels=["account"],
        )
        for account in sorted({a for a, _ in recipients}):
            reported = sum(recipients.get((account, s.value), 0) for s in FINAL_REPORT)
            if reported:
                rate.add_metric(
                    [account], recipients.get((account, RecipientState.DELIVERED.value), 0) / reported
                )
        yield rate
        unknown = dict(
            session.execute(
                select(Campaign.account, func.count())
                .select_from(Chunk)
                .join(Campaign, Campaign.id == Chunk.campaign_id)
                .where(Chunk.state == ChunkState.UNKNOWN)
                .group_by(Campaign.account)
            )
            .tuples()
            .all()
        )
        yield _gauge(
            "dispatcher_unknown_chunks", "Requests whose answer never came (all campaigns)", ["account"],
            {(a,): int(n) for a, n in unknown.items()},
        )  # fmt: skip
        yield from self._queue(session, running, queued_running)
        yield self._report_latency(session)

    def _queue(self, session: Session, running: set[int], depth: int) -> Iterator[Metric]:
        yield _gauge(
            "dispatcher_queue_depth", "Requests of running campaigns waiting to be sent", [], {(): depth}
        )
        oldest = None
        if running:
            now = datetime.now(UTC)
            # Due since it was queued (``updated_at``: the re-queue sweep stamps a column of its own),
            # or since its backoff ended (``not_before``), whichever is later.
            due_since = case((Chunk.not_before > Chunk.updated_at, Chunk.not_before), else_=Chunk.updated_at)
            oldest = session.execute(
                select(func.min(type_coerce(due_since, UTCDateTime))).where(
                    Chunk.campaign_id.in_(running),
                    Chunk.state == ChunkState.QUEUED,
                    (Chunk.not_before.is_(None)) | (Chunk.not_before <= now),
                )
            ).scalar_one_or_none()
        age = max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest is not None else 0.0
        yield _gauge(
            "dispatcher_queue_oldest_age_seconds", "Age of the oldest request due to be sent", [], {(): age}
        )

    def _report_latency(self, session: Session) -> Metric:
        recent = (
            select(ReportRow.recipient_id)
            .where(ReportRow.recipient_id.is_not(None))
            .order_by(ReportRow.id.desc())
            .limit(RECENT_REPORTS)
            .subquery()
        )
        rows = session.execute(
            select(Recipient.account, Recipient.submitted_at, Recipient.delivered_at)
            .join(recent, recent.c.recipient_id == Recipient.id)
            .where(Recipient.submitted_at.is_not(None), Recipient.delivered_at.is_not(None))
        ).tuples()
        per: dict[str, tuple[list[int], float]] = {}
        for account, submitted, delivered in rows:
            if submitted is None or delivered is None:
                continue
            seconds = max(0.0, (delivered - submitted).total_seconds())
            counts, total = per.setdefault(account or "", ([0] * (len(REPORT_BUCKETS) + 1), 0.0))
            counts[bisect.bisect_left(REPORT_BUCKETS, seconds)] += 1
            per[account or ""] = (counts, total + seconds)
        family = HistogramMetricFamily(
            "dispatcher_report_latency_seconds",
            f"From a request's acceptance to its delivery report (the latest {RECENT_REPORTS:,} reports)",
            labels=["account"],
        )
        for account, (counts, total) in sorted(per.items()):
            family.add_metric([account], _histogram(REPORT_BUCKETS, counts, total), total)
        return family

    # ---- heartbeats and the broker -----------------------------------------------------------------

    def _liveness(self) -> Iterator[Metric]:
        store = store_fingerprint(self.sources.settings.database_url)
        snapshot = None
        if self.sources.redis is not None:
            try:
                snapshot = heartbeat.read(self.sources.redis, self.sources.keys)
            except RedisError:
                snapshot = None
        yield _gauge(
            "dispatcher_heartbeats_readable",
            "1 when the heartbeats could be read",
            [],
            {(): int(snapshot is not None)},
        )
        broker = fingerprint(self.sources.settings.broker_url)
        workers = (
            sum(b.broker == broker for b in snapshot.alive(heartbeat.WORKER, store, self.sources.queue))
            if snapshot
            else 0
        )
        beat_queue = self.sources.queue + heartbeat.BEAT_QUEUE_SUFFIX
        beats = (
            sum(b.broker == broker for b in snapshot.alive(heartbeat.BEAT, store, beat_queue))
            if snapshot
            else 0
        )
        yield _gauge(
            "dispatcher_workers_alive",
            "Workers of this store and broker consuming the send queue",
            [],
            {(): workers},
        )
        yield _gauge(
            "dispatcher_beat_alive",
            "Beats of this store and broker scheduling the send queue's beat tasks (exactly one is right)",
            [],
            {(): beats},
        )

    def _broker(self) -> Iterator[Metric]:
        lengths: dict[tuple[str, ...], float] = {}
        if self.sources.broker is not None:
            for queue in (self.sources.queue, self.sources.queue + ".beat"):
                with contextlib.suppress(RedisError):
                    lengths[(queue,)] = float(self.sources.broker.llen(queue))
        yield _gauge(
            "dispatcher_broker_queue_length", "Tasks waiting in the broker's queue", ["queue"], lengths
        )


def _gauge(name: str, doc: str, labels: list[str], values: Mapping[Any, Any]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), float(value))
    return family


def exposition(sources: Sources) -> bytes:
    """The metrics, in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(sources))
    return generate_latest(registry)
