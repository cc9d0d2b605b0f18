"""Heartbeats: every ``dispatcher worker`` and the ``dispatcher beat`` say they are alive, in Redis.

Each process writes one JSON record (kind, host, pid, version, queues, the fingerprints of its store,
broker and limiter Redis, its interval) into one hash (``keys.heartbeats_key``) every ``heartbeat_seconds``,
stamped with the Redis server's clock, so machines whose clocks differ still agree on ages. A worker is
alive while its last heartbeat is at most 3 intervals old (15 s by default), the beat 6 (30 s): each
record carries its own interval, so the reader needs no setting. Records stay a day after the last
beat, for "last seen ...". Reading is one ``HGETALL``: cheap enough for a page that polls each second.

A process that stops cleanly writes a last record marked ``stopped`` (never alive, still "last seen"), so
a restarted beat is the only one alive at once rather than one of two for 30 s. The beat's record also
says when its scheduling loop last ticked (``ticked``): the record is written by a thread, which would
go on while the loop hangs; a beat whose loop has not ticked for as long as its record may be missed is
dead, however fresh the record.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from dispatcher.config import Settings
from dispatcher.keys import DEFAULT_KEYS, KeySpace
from dispatcher.operations.fingerprint import Fingerprints
from dispatcher.operations.identity import process_id

logger = logging.getLogger(__name__)

WORKER = "worker"
BEAT = "beat"
MISSES = {WORKER: 3, BEAT: 6}  # intervals without a heartbeat after which a process counts as gone
KEEP_SECONDS = 24 * 3600.0
NOT_READY_POLL = 0.2  # seconds between two looks at a process not ready yet
BEAT_QUEUE_SUFFIX = ".beat"  # the beat's tasks go to the send queue's name plus this (workers.app)  # a record older than this is removed by the next writer


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("sms-dispatcher")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Heartbeat:
    kind: str  # WORKER or BEAT
    id: str  # host:pid:random (operations.identity)
    host: str
    pid: int
    version: str
    queues: tuple[str, ...]
    store: str  # fingerprints (operations.fingerprint)
    broker: str
    limiter: str
    every: float  # seconds between two heartbeats
    at: float = 0.0  # the last one, Redis server time (epoch seconds)
    started: float = 0.0
    ticked: float = 0.0  # the beat: its loop's last tick, Redis server time; 0: not watched (a worker)
    stopped: bool = False  # it stopped cleanly: gone at once

    def age(self, now: float) -> float:
        return max(0.0, now - self.at)

    def alive(self, now: float) -> bool:
        limit = self.every * MISSES.get(self.kind, 3)
        hung = self.ticked > 0 and now - self.ticked > limit
        return not self.stopped and not hung and self.age(now) <= limit

    def seen_at(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def fingerprints(self) -> Fingerprints:
        return Fingerprints(self.store, self.broker, self.limiter)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Heartbeat | None:
        """A record, or None for one this version cannot read (written by another, or damaged)."""
        try:
            data = json.loads(text)
            data["queues"] = tuple(str(q) for q in data["queues"])
            # Fields with a default may be missing: written by an earlier version
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError, KeyError):
            return None


def redis_now(redis: Redis[Any]) -> float:
    seconds, micros = redis.time()
    return float(seconds) + float(micros) / 1e6


@dataclass(frozen=True)
class Liveness:
    """What a campaign's waiting reasons need to know about the processes of one store and queue."""

    workers_alive: bool
    workers_seen_at: datetime | None  # the last heartbeat of any worker of the store and queue
    beat_alive: bool
    beat_seen_at: datetime | None
    beat_tasks_consumed: bool = True  # a live worker of the store consumes the beat's queue
    readable: bool = True  # False: Redis did not answer, so nobody's heartbeat could be read


@dataclass(frozen=True)
class Snapshot:
    """Every heartbeat at one moment (``now``: Redis server time)."""

    now: float
    beats: tuple[Heartbeat, ...] = ()

    def of(self, kind: str, store: str | None = None, queue: str | None = None) -> list[Heartbeat]:
        return [
            b
            for b in self.beats
            if b.kind == kind and (store is None or b.store == store) and (queue is None or queue in b.queues)
        ]

    def alive(self, kind: str, store: str | None = None, queue: str | None = None) -> list[Heartbeat]:
        return [b for b in self.of(kind, store, queue) if b.alive(self.now)]

    def liveness(self, store: str, queue: str, broker: str | None = None) -> Liveness:
        """Who serves a campaign of ``store`` sent on ``queue`` through ``broker`` (fingerprints): a
        worker with another broker never receives its tasks, a beat with another queue schedules
        elsewhere; neither counts."""
        beat_queue = queue + BEAT_QUEUE_SUFFIX

        def same(b: Heartbeat) -> bool:
            return broker is None or b.broker == broker

        workers = [b for b in self.of(WORKER, store, queue) if same(b)]
        beats = [b for b in self.of(BEAT, store, beat_queue) if same(b)]
        return Liveness(
            workers_alive=any(b.alive(self.now) for b in workers),
            workers_seen_at=max((b.seen_at() for b in workers), default=None),
            beat_alive=any(b.alive(self.now) for b in beats),
            beat_seen_at=max((b.seen_at() for b in beats), default=None),
            beat_tasks_consumed=any(
                b.alive(self.now) and same(b) for b in self.of(WORKER, store, beat_queue)
            ),
        )


def read(redis: Redis[Any], keys: KeySpace = DEFAULT_KEYS) -> Snapshot:
    """Every heartbeat; raises ``RedisError`` when Redis does not answer."""
    now = redis_now(redis)
    raw = redis.hgetall(keys.heartbeats_key())
    records = (Heartbeat.from_json(value) for value in raw.values())
    return Snapshot(now, tuple(b for b in records if b is not None))


def write(
    redis: Redis[Any],
    record: Heartbeat,
    keys: KeySpace = DEFAULT_KEYS,
    *,
    ticked_ago: float | None = None,
    stopped: bool = False,
) -> Heartbeat:
    """Stamp ``record`` with the Redis clock (and its loop's last tick, ``ticked_ago`` seconds before)
    and store it; returns the stamped record."""
    now = redis_now(redis)
    stamped = Heartbeat(**{
        **asdict(record),
        "at": now,
        "started": record.started or now,
        "ticked": record.ticked if ticked_ago is None else now - max(0.0, ticked_ago),
        "stopped": stopped,
    })  # fmt: skip
    redis.hset(keys.heartbeats_key(), record.id, stamped.to_json())
    return stamped


def prune(redis: Redis[Any], keys: KeySpace = DEFAULT_KEYS) -> int:
    """Remove records not renewed for :data:`KEEP_SECONDS` (and unreadable ones)."""
    now = redis_now(redis)
    stale = [
        field_
        for field_, value in redis.hgetall(keys.heartbeats_key()).items()
        if (b := Heartbeat.from_json(value)) is None or b.age(now) > KEEP_SECONDS
    ]
    return int(redis.hdel(keys.heartbeats_key(), *stale)) if stale else 0


def record_for(kind: str, fingerprints: Fingerprints, queues: Iterable[str], every: float) -> Heartbeat:
    return Heartbeat(
        kind=kind,
        id=f"{kind}:{process_id()}:{secrets.token_hex(3)}",  # two workers in one process (tests) apart
        host=socket.gethostname(),
        pid=os.getpid(),
        version=version(),
        queues=tuple(sorted(queues)),
        store=fingerprints.store,
        broker=fingerprints.broker,
        limiter=fingerprints.limiter,
        every=every,
    )


@dataclass
class Heartbeater:
    """A daemon thread writing ``record`` every ``record.every`` seconds until :meth:`stop`. A Redis
    outage is logged once and retried: the process goes on working, and shows as gone meanwhile."""

    redis_url: str
    record: Heartbeat
    keys: KeySpace = DEFAULT_KEYS
    # False: the process cannot do its work (a worker without its broker connection): no heartbeat, so
    # it shows as gone rather than alive and idle.
    ready: Callable[[], bool] = field(default=lambda: True)
    # The beat: when its loop last ticked (``time.monotonic()``), stamped into each record.
    last_tick: Callable[[], float] | None = None
    # The store's fingerprint, asked again at each beat: one that could not be read at the start (the
    # store was slow) is the URL's until it can, not for the process's whole life.
    store_of: Callable[[], str] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.record.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ready(self) -> bool:
        try:
            return bool(self.ready())
        except Exception:  # a process half shut down: not ready
            return False

    def _run(self) -> None:
        redis: Redis[Any] = Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
        failing, beats = False, 0
        try:
            while True:
                wait = self.record.every
                try:
                    if self._ready():
                        if self.store_of is not None:
                            self.record = replace(self.record, store=self.store_of())
                        self.record = write(redis, self.record, self.keys, ticked_ago=self._ticked_ago())
                    else:
                        wait = min(wait, NOT_READY_POLL)  # say so as soon as it is ready
                    if beats % 100 == 0:
                        prune(redis, self.keys)
                    beats += 1
                    if failing:
                        logger.warning("heartbeat: Redis answers again")
                    failing = False
                except RedisError as exc:
                    if not failing:
                        logger.warning("heartbeat: cannot write to Redis (%s); retrying", type(exc).__name__)
                    failing = True
                if self._stop.wait(wait):
                    self._stopped(redis)
                    return
        finally:
            redis.close()

    def _ticked_ago(self) -> float | None:
        return None if self.last_tick is None else time.monotonic() - self.last_tick()

    def _stopped(self, redis: Redis[Any]) -> None:
        """The last record, marked stopped (by this thread: none of its writes can follow it)."""
        if not self.record.at:
            return  # never said it was alive
        try:
            write(redis, self.record, self.keys, stopped=True)
        except RedisError as exc:
            logger.warning("heartbeat: cannot say this process stopped (%s)", type(exc).__name__)


UNREADABLE = Liveness(False, None, False, None, beat_tasks_consumed=False, readable=False)


def liveness_for(redis: Redis[Any] | None, settings: Settings, queue: str) -> Liveness | None:
    """The liveness of the workers and beat serving ``settings``' store, broker and ``queue``; None
    without a Redis (one process, the demo); :data:`UNREADABLE` when Redis does not answer (then
    nothing can be sent either: the limiter lives there)."""
    if redis is None:
        return None
    mine = Fingerprints.of(settings)
    try:
        return read(redis).liveness(mine.store, queue, mine.broker)
    except RedisError:
        return UNREADABLE
